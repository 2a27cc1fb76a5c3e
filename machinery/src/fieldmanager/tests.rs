use serde_json::{Value, json};

use super::*;

fn zero(group: &str, version: &str, kind: &str) -> Value {
    serde_json::from_str(crate::schema::kind_zero(group, version, kind).expect("kind in the table")).expect("zero JSON")
}

fn ctx<'a>(ty: Ty, api_version: &'a str, reset: &'a Set, now: &'a str) -> Context<'a> {
    Context { ty, api_version, subresource: "", reset, now }
}

fn cm(data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}, "data": data})
}

#[test]
fn create_records_what_the_client_set() {
    let reset = Set::new();
    let c = ctx(Ty::of_kind("", "v1", "ConfigMap"), "v1", &reset, "2026-12-02T10:00:00Z");
    let obj = cm(json!({"a": "1"}));
    let m = update(&zero("", "v1", "ConfigMap"), &obj, Managed::default(), "kubectl-create", &c);
    assert_eq!(m.encode(), Some(json!([{
        "manager": "kubectl-create", "operation": "Update", "apiVersion": "v1", "time": "2026-12-02T10:00:00Z",
        "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {".": {}, "f:a": {}}}
    }])));
}

#[test]
fn apply_conflicts_force_and_pruning() {
    let reset = Set::new();
    let ty = Ty::of_kind("", "v1", "ConfigMap");
    let z = zero("", "v1", "ConfigMap");
    let c = ctx(ty, "v1", &reset, "2026-12-02T10:00:00Z");
    // A creates by apply with a and b.
    let (obj, m) = apply(&z, &cm(json!({"a": "1", "b": "2"})), Managed::default(), "A", false, &z, &c).expect("applies");
    let live = obj.expect("created");
    assert_eq!(live["data"], json!({"a": "1", "b": "2"}));
    // B applies a different value of a: conflict.
    let err = apply(&live, &cm(json!({"a": "9"})), m.clone(), "B", false, &z, &c).expect_err("conflict");
    let ApplyError::Conflicts(conflicts) = err else { panic!("not a conflict") };
    assert_eq!(ApplyError::conflict_message(&conflicts), r#"Apply failed with 1 conflict: conflict with "A": .data.a"#);
    // The same value is shared ownership, no conflict.
    let (same, m2) = apply(&live, &cm(json!({"a": "1"})), m.clone(), "B", false, &z, &c).expect("no conflict");
    assert!(same.is_none(), "nothing changed");
    assert_eq!(m2.entries.len(), 2);
    // Forced: B takes a.
    let (forced, m3) = apply(&live, &cm(json!({"a": "9"})), m, "B", true, &z, &c).expect("forced");
    let forced = forced.expect("changed");
    assert_eq!(forced["data"]["a"], "9");
    let a_owner: Vec<&str> = m3.entries.iter().filter(|e| e.set.has(&[PathElement::Field("data".into()), PathElement::Field("a".into())])).map(|e| e.manager.as_str()).collect();
    assert_eq!(a_owner, ["B"]);
    // A drops b from its configuration: b goes; a stays (B owns it).
    let (pruned, _) = apply(&forced, &cm(json!({})), m3, "A", false, &z, &c).expect("applies");
    assert_eq!(pruned.expect("changed")["data"], json!({"a": "9"}));
}

#[test]
fn update_moves_ownership_of_changed_fields() {
    let reset = Set::new();
    let ty = Ty::of_kind("", "v1", "ConfigMap");
    let z = zero("", "v1", "ConfigMap");
    let c = ctx(ty, "v1", &reset, "2026-12-02T10:00:00Z");
    let (obj, m) = apply(&z, &cm(json!({"a": "1", "b": "2"})), Managed::default(), "A", false, &z, &c).expect("applies");
    let live = obj.expect("created");
    let mut edited = live.clone();
    edited["data"]["a"] = json!("3");
    edited["data"].as_object_mut().expect("data").remove("b");
    let m = update(&live, &edited, m, "kubectl-edit", &c);
    // A lost a (changed) and b (removed): it owns nothing and is gone.
    let enc = m.encode().expect("entries");
    assert_eq!(enc.as_array().map(Vec::len), Some(1));
    assert_eq!(enc[0]["manager"], "kubectl-edit");
    assert_eq!(enc[0]["fieldsV1"], json!({"f:data": {"f:a": {}}}));
}

#[test]
fn reset_fields_are_not_owned() {
    let mut reset = Set::new();
    reset.insert(&[PathElement::Field("status".into())]);
    let ty = Ty::of_kind("apps", "v1", "Deployment");
    let c = ctx(ty, "apps/v1", &reset, "2026-12-02T10:00:00Z");
    let z = zero("apps", "v1", "Deployment");
    let cfg = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"replicas": 1}, "status": {"replicas": 5}});
    let (_, m) = apply(&z, &cfg, Managed::default(), "m", false, &z, &c).expect("applies");
    assert_eq!(m.entries[0].set.to_fields_v1(), json!({"f:spec": {"f:replicas": {}}}));
}
