//! Admission: the plugins every write passes after decoding and defaulting and before the
//! strategy prepares and validates it, in upstream's order (a plugin may change the object).
//!
//! - [`NamespaceLifecycle`]: no creates in a namespace that doesn't exist or is terminating;
//!   the system namespaces can't be deleted.
//! - [`LimitRanger`]: a new pod's containers get their LimitRanges' default requests and
//!   limits, and must fit their min/max/ratio.
//! - [`ServiceAccount`]: every pod runs as a ServiceAccount that exists (`default` unless it
//!   names one) and, unless it or its account opts out, mounts a `kube-api-access-*`
//!   projected volume with a bound token, the cluster CA and its namespace.
//! - [`Priority`]: a pod's priority comes from its PriorityClass (or the global default);
//!   one PriorityClass at most is the global default.
//! - [`DefaultTolerationSeconds`]: pods tolerate not-ready and unreachable nodes for 300 s.
//! - [`StorageObjectInUseProtection`]: new PersistentVolumeClaims and PersistentVolumes carry
//!   the protection finalizers the pvc-protection and pv-protection controllers remove.
//! - [`RuntimeClass`]: a pod's RuntimeClass exists and gives it its overhead and scheduling.
//! - [`ResourceQuota`]: no create past a quota's hard limits; admitted objects are charged.
//!
//! [`Chain::upstream`] puts them in the order of kube-apiserver's default plugins.

mod default_toleration_seconds;
mod limit_ranger;
mod namespace_lifecycle;
mod priority;
mod resource_quota;
mod runtime_class;
mod service_account;
mod storage_object_in_use_protection;

use std::sync::Arc;

pub use default_toleration_seconds::DefaultTolerationSeconds;
pub use limit_ranger::LimitRanger;
pub use namespace_lifecycle::{IMMORTAL_NAMESPACES, NamespaceLifecycle};
pub use priority::Priority;
pub use resource_quota::ResourceQuota;
pub use runtime_class::RuntimeClass;
pub use service_account::ServiceAccount;
pub use storage_object_in_use_protection::{PV_PROTECTION_FINALIZER, PVC_PROTECTION_FINALIZER, StorageObjectInUseProtection};

use futures::FutureExt;
use futures::future::BoxFuture;
use ironkube_machinery::ApiError;
use ironkube_machinery::resources::ResourceInfo;
use serde_json::Value;

use crate::registry::store::{Admission, Store};

/// 403 for `obj`, named by its name or (not generated yet) its generateName.
pub(crate) fn forbidden(info: &ResourceInfo, obj: &Value, why: &str) -> ApiError {
    let meta = &obj["metadata"];
    let name = [&meta["name"], &meta["generateName"]]
        .into_iter()
        .filter_map(Value::as_str)
        .find(|s| !s.is_empty())
        .unwrap_or("Unknown");
    ApiError::forbidden(&ironkube_machinery::GroupResource::new(info.group, info.plural), name, why)
}

/// The stores the plugins read.
pub struct Stores {
    pub namespaces: Arc<Store>,
    pub limit_ranges: Arc<Store>,
    pub service_accounts: Arc<Store>,
    pub priority_classes: Arc<Store>,
    pub runtime_classes: Arc<Store>,
    pub quotas: Arc<Store>,
}

/// Plugins run one after the other; the first refusal wins.
pub struct Chain(pub Vec<Box<dyn Admission>>);

impl Chain {
    /// The plugins ironkube has, in the order of upstream's default plugin list
    /// (NamespaceLifecycle, LimitRanger, ServiceAccount, ..., Priority, DefaultTolerationSeconds, ...,
    /// StorageObjectInUseProtection, ..., RuntimeClass, ..., ResourceQuota last).
    pub fn upstream(stores: Stores) -> Chain {
        let Stores { namespaces, limit_ranges, service_accounts, priority_classes, runtime_classes, quotas } = stores;
        Chain(vec![
            Box::new(NamespaceLifecycle::new(namespaces)),
            Box::new(LimitRanger::new(limit_ranges)),
            Box::new(ServiceAccount::new(service_accounts)),
            Box::new(Priority::new(priority_classes)),
            Box::new(DefaultTolerationSeconds),
            Box::new(StorageObjectInUseProtection),
            Box::new(RuntimeClass::new(runtime_classes)),
            Box::new(ResourceQuota::new(quotas)),
        ])
    }
}

impl Admission for Chain {
    fn admit_create<'a>(&'a self, info: &'static ResourceInfo, namespace: Option<&'a str>, obj: &'a mut Value) -> BoxFuture<'a, Result<(), ApiError>> {
        async move {
            for plugin in &self.0 {
                plugin.admit_create(info, namespace, obj).await?;
            }
            Ok(())
        }
        .boxed()
    }

    fn admit_update(&self, info: &'static ResourceInfo, new: &mut Value, old: &Value) -> Result<(), ApiError> {
        self.0.iter().try_for_each(|p| p.admit_update(info, new, old))
    }

    fn admit_delete(&self, info: &'static ResourceInfo, namespace: Option<&str>, name: &str) -> Result<(), ApiError> {
        self.0.iter().try_for_each(|p| p.admit_delete(info, namespace, name))
    }
}
