//! Server-side printers: upstream's table columns and cells per built-in kind.

use ironkube_machinery::resources::ResourceInfo;
use serde_json::Value;

/// Columns and cells of one kind's table.
pub trait Printer: Sync {
    /// `columnDefinitions` (name, type, format, description, priority).
    fn columns(&self) -> Value;
    /// One row's cells for `obj`.
    fn cells(&self, obj: &Value) -> Vec<Value>;
}

/// The printer for a resource, if it has one (otherwise the default Name/Created At).
pub fn printer(info: &ResourceInfo) -> Option<&'static dyn Printer> {
    let _ = info;
    None
}
