//! managedFields on the API server's write paths: the schema-aware field manager of
//! `ironkube_machinery::fieldmanager`, fed with what one endpoint knows (its kind and
//! version, which fields it resets, its subresource).
//!
//! As upstream, ownership is computed on the object the client sent (decoded and
//! defaulted) against the live one, before admission and the strategy's own changes.

use ironkube_machinery::fieldmanager::{self, ApplyError, Context, Managed, PathElement, Set, Ty};
use ironkube_machinery::resources::ResourceInfo;
use ironkube_machinery::ApiError;
use ironkube_machinery::error::Cause;
use serde_json::{Value, json};

/// What the field manager needs to know about one endpoint.
pub struct Endpoint<'a> {
    pub info: &'a ResourceInfo,
    /// `""`, `status`, `scale`, ...
    pub subresource: &'a str,
    /// Whether the resource has a status subresource (then the main resource resets status).
    pub has_status: bool,
}

impl Endpoint<'_> {
    fn ty(&self) -> Ty {
        Ty::of_kind(self.info.group, self.info.version, self.info.kind)
    }

    /// The fields this endpoint resets: nobody owns them through it.
    fn reset(&self) -> Set {
        let mut s = Set::new();
        let f = |n: &str| PathElement::Field(n.to_string());
        match self.subresource {
            "" if self.has_status => s.insert(&[f("status")]),
            "status" => s.insert(&[f("spec")]),
            _ => {}
        }
        s
    }

    /// The kind's Go zero value: what a created object is compared against.
    pub fn zero(&self) -> Value {
        ironkube_machinery::schema::kind_zero(self.info.group, self.info.version, self.info.kind)
            .and_then(|z| serde_json::from_str(z).ok())
            .unwrap_or_else(|| json!({}))
    }
}

fn without_managed(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    }
    o
}

fn set_managed(obj: &mut Value, managed: &Managed) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        match managed.encode() {
            Some(mf) => meta.insert("managedFields".into(), mf),
            None => meta.remove("managedFields"),
        };
    }
}

/// Records an Update (or a create, with `live` None) by `manager` in `new`'s managedFields.
/// Both objects are in the served shape; `new` may carry managedFields of its own.
pub fn record_update(ep: &Endpoint<'_>, new: &mut Value, live: Option<&Value>, manager: &str, now: &str) {
    let live_mf = live.and_then(|l| l["metadata"].get("managedFields"));
    let managed = Managed::for_update(live_mf, new["metadata"].get("managedFields"), !ep.subresource.is_empty());
    // An existing object that nobody tracks stays untracked (upstream's skip of non-applied objects).
    if managed.is_empty() && live.is_some_and(|l| l["metadata"]["uid"].as_str().is_some_and(|u| !u.is_empty())) {
        if let Some(m) = new.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("managedFields");
        }
        return;
    }
    let reset = ep.reset();
    let ctx = Context { ty: ep.ty(), api_version: &ep.info.api_version(), subresource: ep.subresource, reset: &reset, now };
    let live = live.map_or_else(|| ep.zero(), without_managed);
    let managed = fieldmanager::update(&live, &without_managed(new), managed, manager, &ctx);
    set_managed(new, &managed);
}

/// Applies `config` for `manager` to `live` (served shape; the zero object when the object
/// does not exist yet) and returns the object to write, managedFields included.
pub fn apply(ep: &Endpoint<'_>, live: Option<&Value>, config: &Value, manager: &str, force: bool, now: &str) -> Result<Value, ApiError> {
    let managed = match live {
        Some(l) => Managed::decode(l["metadata"].get("managedFields"))
            .map_err(|e| ApiError::internal(format!("failed to decode managed fields: {e}")))?,
        None => Managed::default(),
    };
    let zero = ep.zero();
    let live = live.map_or_else(|| zero.clone(), without_managed);
    let reset = ep.reset();
    let api_version = ep.info.api_version();
    let ctx = Context { ty: ep.ty(), api_version: &api_version, subresource: ep.subresource, reset: &reset, now };
    match fieldmanager::apply(&live, config, managed, manager, force, &zero, &ctx) {
        Ok((obj, managed)) => {
            let mut out = obj.unwrap_or(live);
            set_managed(&mut out, &managed);
            Ok(out)
        }
        Err(ApplyError::Conflicts(conflicts)) => {
            let causes = conflicts
                .iter()
                .map(|c| Cause {
                    reason: "FieldManagerConflict".into(),
                    message: format!("conflict with {}", c.manager),
                    field: fieldmanager::path_string(&c.path),
                })
                .collect();
            Err(ApiError::apply_conflict(ApplyError::conflict_message(&conflicts), causes))
        }
        Err(ApplyError::Invalid(why)) => {
            let name = config["metadata"]["name"].as_str().unwrap_or("");
            let ns = config["metadata"]["namespace"].as_str().unwrap_or("");
            let group_version = if ep.info.group.is_empty() { format!("/{}", ep.info.version) } else { format!("{}/{}", ep.info.group, ep.info.version) };
            // Upstream returns a plain error here: a 500 without a reason.
            Err(ApiError::new(
                500,
                ironkube_machinery::Reason::Unknown,
                format!("failed to create typed patch object ({ns}/{name}; {group_version}, Kind={}): {why}", ep.info.kind),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configmaps() -> &'static ResourceInfo {
        ironkube_machinery::resources::lookup("", "v1", "configmaps").expect("configmaps")
    }

    #[test]
    fn create_then_update_moves_ownership() {
        let ep = Endpoint { info: configmaps(), subresource: "", has_status: false };
        let mut obj = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "labels": {"x": "1"}}, "data": {"k": "v"}});
        record_update(&ep, &mut obj, None, "kubectl-create", "t0");
        let mf = &obj["metadata"]["managedFields"][0];
        assert_eq!(mf["manager"], "kubectl-create");
        assert_eq!(mf["fieldsV1"], json!({"f:data": {".": {}, "f:k": {}}, "f:metadata": {"f:labels": {".": {}, "f:x": {}}}}));
        let mut old = obj.clone();
        old["metadata"]["uid"] = json!("u");
        let mut new = old.clone();
        new["data"]["k"] = json!("w");
        record_update(&ep, &mut new, Some(&old), "kubectl-edit", "t1");
        let entries = new["metadata"]["managedFields"].as_array().expect("entries");
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0]["fieldsV1"], json!({"f:data": {}, "f:metadata": {"f:labels": {".": {}, "f:x": {}}}}));
        assert_eq!(entries[1]["fieldsV1"], json!({"f:data": {"f:k": {}}}));
    }
}
