//! Patch engines. JSON patch and JSON merge patch come from the `json-patch` crate; the
//! strategic merge patch is ours.

pub mod strategic;
