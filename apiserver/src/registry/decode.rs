//! Decoding request objects: JSON or YAML bodies, apiVersion/kind checks, the round trip
//! through the k8s-openapi type (which drops unknown fields, as upstream's decoder does) and
//! `fieldValidation` (unknown and duplicate fields).

use std::collections::HashMap;
use std::sync::OnceLock;

use ironkube_machinery::ApiError;
use ironkube_machinery::resources::ResourceInfo;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::params::FieldValidation;

type RoundTrip = fn(Value) -> Result<Value, serde_json::Error>;

fn round_trip<T: DeserializeOwned + serde::Serialize>(v: Value) -> Result<Value, serde_json::Error> {
    let typed: T = serde_json::from_value(v)?;
    serde_json::to_value(typed)
}

macro_rules! typed_table {
    ($($ty:path),* $(,)?) => {{
        let mut m: HashMap<(&'static str, &'static str), RoundTrip> = HashMap::new();
        $(
            m.insert(
                (<$ty as k8s_openapi::Resource>::API_VERSION, <$ty as k8s_openapi::Resource>::KIND),
                round_trip::<$ty> as RoundTrip,
            );
        )*
        m
    }};
}

fn table() -> &'static HashMap<(&'static str, &'static str), RoundTrip> {
    static TABLE: OnceLock<HashMap<(&'static str, &'static str), RoundTrip>> = OnceLock::new();
    TABLE.get_or_init(|| {
        use k8s_openapi::api::*;
        typed_table!(
            admissionregistration::v1::MutatingWebhookConfiguration,
            admissionregistration::v1::ValidatingWebhookConfiguration,
            admissionregistration::v1::ValidatingAdmissionPolicy,
            admissionregistration::v1::ValidatingAdmissionPolicyBinding,
            apps::v1::ControllerRevision,
            apps::v1::DaemonSet,
            apps::v1::Deployment,
            apps::v1::ReplicaSet,
            apps::v1::StatefulSet,
            authentication::v1::SelfSubjectReview,
            authentication::v1::TokenRequest,
            authentication::v1::TokenReview,
            authorization::v1::LocalSubjectAccessReview,
            authorization::v1::SelfSubjectAccessReview,
            authorization::v1::SelfSubjectRulesReview,
            authorization::v1::SubjectAccessReview,
            autoscaling::v1::HorizontalPodAutoscaler,
            autoscaling::v1::Scale,
            autoscaling::v2::HorizontalPodAutoscaler,
            batch::v1::CronJob,
            batch::v1::Job,
            certificates::v1::CertificateSigningRequest,
            coordination::v1::Lease,
            core::v1::Binding,
            core::v1::ComponentStatus,
            core::v1::ConfigMap,
            core::v1::Endpoints,
            core::v1::Event,
            core::v1::LimitRange,
            core::v1::Namespace,
            core::v1::Node,
            core::v1::PersistentVolume,
            core::v1::PersistentVolumeClaim,
            core::v1::Pod,
            core::v1::PodTemplate,
            core::v1::ReplicationController,
            core::v1::ResourceQuota,
            core::v1::Secret,
            core::v1::Service,
            core::v1::ServiceAccount,
            discovery::v1::EndpointSlice,
            events::v1::Event,
            flowcontrol::v1::FlowSchema,
            flowcontrol::v1::PriorityLevelConfiguration,
            networking::v1::Ingress,
            networking::v1::IngressClass,
            networking::v1::IPAddress,
            networking::v1::NetworkPolicy,
            networking::v1::ServiceCIDR,
            node::v1::RuntimeClass,
            policy::v1::Eviction,
            policy::v1::PodDisruptionBudget,
            rbac::v1::ClusterRole,
            rbac::v1::ClusterRoleBinding,
            rbac::v1::Role,
            rbac::v1::RoleBinding,
            scheduling::v1::PriorityClass,
            storage::v1::CSIDriver,
            storage::v1::CSINode,
            storage::v1::CSIStorageCapacity,
            storage::v1::StorageClass,
            storage::v1::VolumeAttachment,
            k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
            k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService,
        )
    })
}

/// Parses a request body as JSON or YAML (by Content-Type) into a JSON object, reporting
/// duplicate fields.
pub fn parse_body(content_type: &str, body: &[u8], what: &str) -> Result<(Value, Vec<String>), ApiError> {
    let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match mime.as_str() {
        "application/yaml" | "application/apply-patch+yaml" => {
            let value: Value = serde_saphyr::from_slice(body).map_err(|e| {
                ApiError::bad_request(format!("{what}: yaml: {}", first_line(&e.to_string())))
            })?;
            Ok((value, Vec::new()))
        }
        "application/json" | "" | "application/json-patch+json" | "application/merge-patch+json"
        | "application/strategic-merge-patch+json" => {
            let value: Value = serde_json::from_slice(body).map_err(|e| {
                ApiError::bad_request(format!("{what}: {}", json_error_text(&e)))
            })?;
            let duplicates = duplicate_fields(body);
            Ok((value, duplicates))
        }
        "application/vnd.kubernetes.protobuf" => {
            let value = ironkube_machinery::proto::decode(body)
                .map_err(|e| ApiError::bad_request(format!("{what}: {e}")))?;
            Ok((value, Vec::new()))
        }
        _ => Err(ApiError::unsupported_media_type(ApiError::BODY_TYPES)),
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// Go's encoding/json style text for a syntax error.
pub fn json_error_text(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Eof => "unexpected end of JSON input".to_string(),
        Category::Syntax => format!("json parse error: {e}"),
        _ => e.to_string(),
    }
}

/// Finds object keys that appear twice in the same JSON object (`duplicate field "x"`).
pub fn duplicate_fields(body: &[u8]) -> Vec<String> {
    /// The duplicates found, and the path of the value being read (`spec.containers[0]`).
    struct Dups {
        found: Vec<String>,
        path: String,
    }
    impl<'de> serde::de::Visitor<'de> for &mut Dups {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("any JSON")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                let len = self.path.len();
                if !self.path.is_empty() {
                    self.path.push('.');
                }
                self.path.push_str(&key);
                if !seen.insert(key) {
                    self.found.push(format!("duplicate field {:?}", self.path));
                }
                map.next_value_seed(&mut *self)?;
                self.path.truncate(len);
            }
            Ok(())
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let mut i = 0;
            loop {
                let len = self.path.len();
                self.path.push_str(&format!("[{i}]"));
                let more = seq.next_element_seed(&mut *self)?.is_some();
                self.path.truncate(len);
                if !more {
                    return Ok(());
                }
                i += 1;
            }
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> { Ok(()) }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> { Ok(()) }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> { Ok(()) }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> { Ok(()) }
        fn visit_str<E>(self, _: &str) -> Result<(), E> { Ok(()) }
        fn visit_unit<E>(self) -> Result<(), E> { Ok(()) }
    }
    impl<'de> serde::de::DeserializeSeed<'de> for &mut Dups {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }
    let mut dups = Dups { found: Vec::new(), path: String::new() };
    let mut de = serde_json::Deserializer::from_slice(body);
    let _ = serde::de::DeserializeSeed::deserialize(&mut dups, &mut de);
    dups.found
}

/// Decodes an object for `info`: checks apiVersion/kind (defaulting them from the endpoint),
/// drops unknown fields through the typed round trip and applies `fieldValidation`.
/// Returns the object and the warnings to send.
pub fn decode_object(
    info: &ResourceInfo,
    mut obj: Value,
    duplicates: Vec<String>,
    validation: FieldValidation,
) -> Result<(Value, Vec<String>), ApiError> {
    let api_version = info.api_version();
    let cannot_handle = |why: &str| {
        ApiError::bad_request(format!(
            "{} in version {:?} cannot be handled as a {}: {why}",
            info.kind, info.version, info.kind
        ))
    };
    let Some(map) = obj.as_object_mut() else {
        return Err(cannot_handle("the object is not a JSON object"));
    };
    match map.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("apiVersion".into(), Value::String(api_version.clone()));
        }
        Some(v) if v == api_version => {}
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({api_version})"
            )));
        }
    }
    match map.get("kind").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("kind".into(), Value::String(info.kind.to_string()));
        }
        Some(k) if k == info.kind => {}
        Some(k) => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                info.kind
            )));
        }
    }
    let Some(convert) = table().get(&(api_version.as_str(), info.kind)).copied() else {
        return Ok((obj, Vec::new()));
    };
    // Values of the wrong JSON type: Go's decoder names the struct field and Go type.
    if let Some(why) = ironkube_machinery::schema::kind_type(info.group, info.version, info.kind)
        .and_then(|t| ironkube_machinery::schema::go_json::type_error(&obj, t))
    {
        return Err(cannot_handle(&why));
    }
    let typed = convert(obj.clone()).map_err(|e| cannot_handle(&go_style(&e.to_string())))?;
    let mut unknown = Vec::new();
    unknown_fields(&obj, &typed, "", &mut unknown);
    let mut problems: Vec<String> = unknown.iter().map(|p| format!("unknown field {p:?}")).collect();
    problems.extend(duplicates);
    let mut warnings = Vec::new();
    match validation {
        FieldValidation::Strict if !problems.is_empty() => {
            return Err(cannot_handle(&format!("strict decoding error: {}", problems.join(", "))));
        }
        FieldValidation::Warn => warnings = problems,
        _ => {}
    }
    // Keep the client's JSON minus unknown fields: the typed form may add empty defaults
    // upstream would not serialize.
    let mut cleaned = obj;
    for path in &unknown {
        remove_path(&mut cleaned, path);
    }
    drop_omitted_empties(&mut cleaned);
    Ok((cleaned, warnings))
}

/// Drops empty maps and lists that Go's encoding would omit (`omitempty` fields, e.g.
/// `metadata.labels: {}` after the last label is removed). The protobuf round trip follows
/// Go's field rules exactly, so an empty value it does not keep is one Go omits.
fn drop_omitted_empties(obj: &mut Value) {
    let api_version = obj["apiVersion"].as_str().unwrap_or("").to_string();
    let kind = obj["kind"].as_str().unwrap_or("").to_string();
    if !ironkube_machinery::proto::supports(&api_version, &kind) {
        return;
    }
    let Ok(bytes) = ironkube_machinery::proto::encode(obj) else { return };
    let Ok(go_form) = ironkube_machinery::proto::decode(&bytes) else { return };
    prune_empties(obj, &go_form);
}

fn is_empty_container(v: &Value) -> bool {
    v.as_object().is_some_and(|m| m.is_empty()) || v.as_array().is_some_and(Vec::is_empty)
}

fn prune_empties(v: &mut Value, go_form: &Value) {
    match (v, go_form) {
        (Value::Object(map), Value::Object(go)) => {
            map.retain(|k, val| !(is_empty_container(val) && !go.contains_key(k)));
            for (k, val) in map.iter_mut() {
                if let Some(g) = go.get(k) {
                    prune_empties(val, g);
                }
            }
        }
        (Value::Array(items), Value::Array(go)) if items.len() == go.len() => {
            for (val, g) in items.iter_mut().zip(go) {
                prune_empties(val, g);
            }
        }
        _ => {}
    }
}

fn go_style(serde_msg: &str) -> String {
    serde_msg.to_string()
}

/// Paths present (and non-null) in `input` but absent from `typed`.
fn unknown_fields(input: &Value, typed: &Value, path: &str, out: &mut Vec<String>) {
    match (input, typed) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                if v.is_null() {
                    continue;
                }
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                match b.get(k) {
                    None => out.push(p),
                    Some(tv) => unknown_fields(v, tv, &p, out),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, (v, tv)) in a.iter().zip(b.iter()).enumerate() {
                unknown_fields(v, tv, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Removes the field at `a.b[0].c` from `obj`.
fn remove_path(obj: &mut Value, path: &str) {
    let mut segments: Vec<Seg> = Vec::new();
    for part in path.split('.') {
        let mut rest = part;
        if let Some(i) = rest.find('[') {
            segments.push(Seg::Key(rest[..i].to_string()));
            rest = &rest[i..];
            while let Some(end) = rest.find(']') {
                if let Ok(n) = rest[1..end].parse() {
                    segments.push(Seg::Index(n));
                }
                rest = &rest[end + 1..];
            }
        } else {
            segments.push(Seg::Key(rest.to_string()));
        }
    }
    let Some((last, parents)) = segments.split_last() else { return };
    let mut cur = obj;
    for seg in parents {
        let next = match seg {
            Seg::Key(k) => cur.get_mut(k.as_str()),
            Seg::Index(i) => cur.get_mut(*i),
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    if let (Seg::Key(k), Some(map)) = (last, cur.as_object_mut()) {
        map.remove(k);
    }
}

enum Seg {
    Key(String),
    Index(usize),
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironkube_machinery::resources;
    use serde_json::json;

    fn pods() -> &'static ResourceInfo {
        resources::lookup("", "v1", "pods").expect("pods are in the table")
    }

    #[test]
    fn unknown_fields_are_found_with_paths() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"},
            "spec": {"containers": [{"name": "c", "image": "i", "imagePullPolcy": "x"}], "foo": 1}});
        let err = decode_object(pods(), pod.clone(), vec![], FieldValidation::Strict).expect_err("strict rejects");
        assert_eq!(
            err.message,
            "Pod in version \"v1\" cannot be handled as a Pod: strict decoding error: unknown field \"spec.containers[0].imagePullPolcy\", unknown field \"spec.foo\""
        );
        let (obj, warnings) = decode_object(pods(), pod, vec![], FieldValidation::Warn).expect("warn accepts");
        assert_eq!(warnings.len(), 2);
        assert!(obj["spec"].get("foo").is_none());
        assert!(obj["spec"]["containers"][0].get("imagePullPolcy").is_none());
    }

    #[test]
    fn kind_and_version_default_and_must_match() {
        let (obj, _) = decode_object(pods(), json!({"metadata": {"name": "a"}}), vec![], FieldValidation::Strict)
            .expect("defaults kind");
        assert_eq!(obj["kind"], "Pod");
        let err = decode_object(pods(), json!({"apiVersion": "apps/v1", "kind": "Pod"}), vec![], FieldValidation::Strict)
            .expect_err("wrong version");
        assert_eq!(err.code, 400);
    }

    #[test]
    fn empty_omitempty_maps_are_dropped_but_empty_structs_stay() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "labels": {}},
            "spec": {"containers": [{"name": "c", "image": "i", "env": []}], "volumes": [{"name": "v", "emptyDir": {}}]}});
        let (obj, _) = decode_object(pods(), pod, vec![], FieldValidation::Strict).expect("decodes");
        assert!(obj["metadata"].get("labels").is_none(), "{obj}");
        assert!(obj["spec"]["containers"][0].get("env").is_none(), "{obj}");
        assert_eq!(obj["spec"]["volumes"][0]["emptyDir"], json!({}));
    }

    #[test]
    fn duplicates_are_reported() {
        let d = duplicate_fields(br#"{"a":1,"b":{"c":1,"c":2},"a":3}"#);
        // Paths from the root, as upstream's strict decoding reports them ("spec.replicas").
        assert_eq!(d, vec!["duplicate field \"b.c\"".to_string(), "duplicate field \"a\"".to_string()]);
    }
}
