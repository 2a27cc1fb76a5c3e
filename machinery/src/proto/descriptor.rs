//! The shapes of the generated message table (`schema.rs`) and lookups into it.

use super::schema::{KINDS, MESSAGES, META_KINDS};

/// One protobuf message of the Kubernetes API.
pub(super) struct Message {
    /// The OpenAPI definition name (`io.k8s.api.core.v1.Pod`), or the protobuf name for
    /// messages OpenAPI does not define (`k8s.io.api.core.v1.PodList`).
    pub name: &'static str,
    /// A message whose JSON form is not an object of its fields.
    pub special: Special,
    /// Sorted by tag.
    pub fields: &'static [Field],
}

pub(super) struct Field {
    /// The JSON name; empty for an inlined message.
    pub json: &'static str,
    pub tag: u32,
    pub ty: Ty,
    pub card: Card,
    pub presence: Presence,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Ty {
    String,
    Bytes,
    Bool,
    Int32,
    Int64,
    Double,
    /// An index into `MESSAGES`.
    Message(u16),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Card {
    One,
    Repeated,
    /// `map<string, ty>`, on the wire a repeated entry message {key = 1, value = 2}.
    Map,
}

/// How a singular field's Go type decides whether it is on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Presence {
    /// A Go value (string, int, bool, struct): always encoded, zero values included, so
    /// a zero value read from the wire means "not set".
    Always,
    /// A Go pointer, slice or map: encoded only when set, so a zero value is meaningful.
    WhenSet,
    /// A Go struct embedded with `json:",inline"`: a message on the wire whose fields sit
    /// in the enclosing JSON object.
    Inline,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Special {
    None,
    /// {type int64 = 1, intVal int32 = 2, strVal string = 3} <-> a JSON number or string.
    IntOrString,
    /// {string = 1} <-> a JSON string.
    Quantity,
    /// Timestamp {seconds = 1, nanos = 2} <-> RFC 3339 seconds; empty <-> null.
    Time,
    /// Timestamp <-> RFC 3339 with six fractional digits.
    MicroTime,
    /// {raw bytes = 1}: JSON text, or an enveloped protobuf object, <-> the JSON value.
    RawExtension,
    /// {raw bytes = 1}: JSON text <-> the JSON value (FieldsV1, apiextensions JSON).
    RawJson,
    /// {schema = 1, jSONSchemas repeated = 2} <-> an object or an array of objects.
    SchemaOrArray,
    /// {allows bool = 1, schema = 2} <-> a bool or an object.
    SchemaOrBool,
    /// {schema = 1, property repeated string = 2} <-> an object or an array of strings.
    SchemaOrStringArray,
    /// {items repeated string = 1} (a Go named slice) <-> an array of strings.
    StringList,
}

pub(super) fn message(id: u16) -> &'static Message {
    &MESSAGES[usize::from(id)]
}

impl Message {
    /// The field with `tag` (fields are sorted by tag).
    pub fn field(&self, tag: u32) -> Option<&'static Field> {
        let fields: &'static [Field] = self.fields;
        fields
            .binary_search_by_key(&tag, |f| f.tag)
            .ok()
            .map(|i| &fields[i])
    }
}

/// The message of a top-level kind. Kinds of meta.k8s.io/v1 (Status, DeleteOptions,
/// WatchEvent, ...) are found whatever group version they are sent with.
pub(super) fn kind(api_version: &str, kind: &str) -> Option<u16> {
    let find = |av: &str| {
        KINDS
            .binary_search_by(|(a, k, _)| (*a, *k).cmp(&(av, kind)))
            .ok()
            .map(|i| KINDS[i].2)
    };
    find(api_version).or_else(|| {
        META_KINDS
            .contains(&kind)
            .then(|| find("meta.k8s.io/v1"))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_sorted_and_unique() {
        assert!(
            KINDS
                .windows(2)
                .all(|w| (w[0].0, w[0].1) < (w[1].0, w[1].1))
        );
    }

    #[test]
    fn fields_are_sorted_by_tag_and_references_resolve() {
        for m in MESSAGES.iter() {
            assert!(
                m.fields.windows(2).all(|w| w[0].tag < w[1].tag),
                "{}",
                m.name
            );
            for f in m.fields {
                if let Ty::Message(id) = f.ty {
                    assert!(usize::from(id) < MESSAGES.len(), "{}.{}", m.name, f.json);
                }
                assert_eq!(
                    f.json.is_empty(),
                    f.presence == Presence::Inline,
                    "{}",
                    m.name
                );
            }
        }
    }

    #[test]
    fn kind_lookup() {
        let pod = kind("v1", "Pod").map(message).map(|m| m.name);
        assert_eq!(pod, Some("io.k8s.api.core.v1.Pod"));
        let list = kind("apps/v1", "DeploymentList")
            .map(message)
            .map(|m| m.name);
        assert_eq!(list, Some("k8s.io.api.apps.v1.DeploymentList"));
        let opts = kind("apps/v1", "DeleteOptions")
            .map(message)
            .map(|m| m.name);
        assert_eq!(
            opts,
            Some("io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions")
        );
        assert_eq!(kind("apps/v1", "Pod"), None);
        assert_eq!(kind("example.com/v1", "Widget"), None);
    }
}
