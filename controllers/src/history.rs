//! ControllerRevisions as upstream's `pkg/controller/history` keeps them for the
//! controllers that record their template's history (DaemonSet, StatefulSet): the revision
//! data is a strategic merge patch that puts a template back (`$patch: replace`), its name
//! is `<parent>-<hash>`, revisions are ordered by their `revision` number and compared by
//! their data.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::{Value, json};

use crate::deployment::template_hash::safe_encode;

/// The label holding a revision's hash (upstream's `ControllerRevisionHashLabel`).
pub const HASH_LABEL: &str = "controller.kubernetes.io/hash";

/// `v` with every object's keys sorted, as Go encodes maps.
pub fn sorted_keys(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let sorted: BTreeMap<&String, Value> = m.iter().map(|(k, v)| (k, sorted_keys(v))).collect();
            Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted_keys).collect()),
        other => other.clone(),
    }
}

fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), without_nulls(v))).collect()),
        Value::Array(a) => Value::Array(a.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// Whether a stored revision holds `patch` (upstream compares the bytes; a stored copy
/// may have lost its nulls and its key order).
pub fn same_data(revision: &ControllerRevision, patch: &Value) -> bool {
    revision.data.as_ref().is_some_and(|d| sorted_keys(&without_nulls(&d.0)) == sorted_keys(&without_nulls(patch)))
}

/// The patch that restores `template` (upstream's `getPatch`): `spec.template` replaced
/// as a whole, keys sorted, with the template's zero `creationTimestamp` written as Go
/// writes it (null: a struct is never omitted as empty).
pub fn template_patch(template: &PodTemplateSpec) -> Result<Value, serde_json::Error> {
    let mut t = serde_json::to_value(template)?;
    if let Some(m) = t.as_object_mut() {
        m.insert("$patch".into(), json!("replace"));
        let meta = m.entry("metadata").or_insert_with(|| json!({}));
        if let Some(meta) = meta.as_object_mut() {
            meta.entry("creationTimestamp").or_insert(Value::Null);
        }
    }
    Ok(sorted_keys(&json!({"spec": {"template": t}})))
}

pub use ironkube_machinery::go_json::encode as go_json;

/// FNV-1 (not 1a), 32 bits, as Go's `fnv.New32`.
pub fn fnv32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, b| h.wrapping_mul(0x0100_0193) ^ u32::from(*b))
}

/// Upstream's `HashControllerRevision`: FNV-1 over the data's bytes, then the collision
/// count in decimal, spelt in `rand.SafeEncodeString`'s alphabet.
pub fn hash(data: &[u8], collision_count: Option<i32>) -> String {
    let mut bytes = data.to_vec();
    if let Some(count) = collision_count {
        bytes.extend_from_slice(count.to_string().as_bytes());
    }
    safe_encode(&fnv32(&bytes).to_string())
}

/// Upstream's `ControllerRevisionName`: `<prefix>-<hash>`, the prefix cut to 223 bytes.
pub fn revision_name(prefix: &str, hash: &str) -> String {
    let mut cut = prefix.len().min(223);
    while !prefix.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}-{hash}", &prefix[..cut])
}

/// Sorts by revision number, then creation time, then name (upstream's `byRevision`).
pub fn sort(revisions: &mut [std::sync::Arc<ControllerRevision>]) {
    revisions.sort_by(|a, b| {
        let created = |r: &ControllerRevision| r.metadata.creation_timestamp.as_ref().map(|t| t.0);
        a.revision.cmp(&b.revision).then_with(|| created(a).cmp(&created(b))).then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });
}

/// The number after the highest of sorted `revisions` (1 for none).
pub fn next_revision(revisions: &[std::sync::Arc<ControllerRevision>]) -> i64 {
    revisions.last().map_or(1, |r| r.revision + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
    use std::sync::Arc;

    fn revision(name: &str, number: i64, data: Value) -> Arc<ControllerRevision> {
        Arc::new(ControllerRevision {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta { name: Some(name.into()), ..Default::default() },
            data: Some(RawExtension(data)),
            revision: number,
        })
    }

    #[test]
    fn hashes_are_fnv1_with_the_collision_count_in_decimal() {
        // Reference values of Go's fnv.New32.
        assert_eq!(fnv32(b""), 0x811c_9dc5);
        assert_eq!(fnv32(b"a"), 0x050c_5d7e);
        assert_eq!(fnv32(b"foobar"), 0x31f0_b262);
        assert_eq!(hash(b"foo", Some(1)), safe_encode(&fnv32(b"foo1").to_string()));
        assert_ne!(hash(b"foo", None), hash(b"foo", Some(0)));
    }

    #[test]
    fn names_sorting_and_numbering() {
        assert_eq!(revision_name("web", "abc"), "web-abc");
        assert_eq!(revision_name(&"x".repeat(300), "h").len(), 225);
        let mut list = vec![revision("b", 2, json!({})), revision("c", 1, json!({})), revision("a", 2, json!({}))];
        sort(&mut list);
        let names: Vec<&str> = list.iter().filter_map(|r| r.metadata.name.as_deref()).collect();
        assert_eq!(names, ["c", "a", "b"]);
        assert_eq!(next_revision(&list), 3);
        assert_eq!(next_revision(&[]), 1);
    }

    #[test]
    fn patches_replace_the_template_and_compare_by_content() {
        let template: PodTemplateSpec = serde_json::from_value(json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "a<b"}]}})).expect("template");
        let patch = template_patch(&template).expect("patch");
        let text = go_json(&patch);
        assert!(text.starts_with(r#"{"spec":{"template":{"$patch":"replace","metadata":{"creationTimestamp":null,"labels":{"app":"web"}},"spec":{"containers":[{"image":"a\u003cb","name":"c"}]}}}}"#), "{text}");
        // A stored copy without the null and with other key order is the same data.
        let stored = revision("r", 1, json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "a<b"}]}, "metadata": {"labels": {"app": "web"}}, "$patch": "replace"}}}));
        assert!(same_data(&stored, &patch));
        let other = revision("r", 1, json!({"spec": {"template": {"$patch": "replace"}}}));
        assert!(!same_data(&other, &patch));
    }
}
