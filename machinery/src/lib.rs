//! Shared Kubernetes API machinery: no HTTP, no etcd.
//!
//! The built-in resource table, object metadata helpers, label and field selectors,
//! field errors and `ApiError` <-> `metav1.Status`, and the patch engines.

pub mod disruption_budget;
pub mod error;
pub mod field;
pub mod fieldmanager;
pub mod go_duration;
pub mod go_json;
pub mod gocmp;
pub mod meta;
pub mod net;
pub mod node_status;
pub mod patch;
pub mod proto;
pub mod quota;
pub mod resources;
pub mod schema;
pub mod scheduling;
pub mod selectors;
pub mod validation;

pub use error::{ApiError, GroupResource, Reason};
pub use field::{FieldError, Path};
