//! Golden tests: each `testdata/NAME.json` is an object written for these tests and
//! `testdata/NAME.pb` the bytes upstream's Go code (k8s.io/api and apimachinery v0.33)
//! encodes it to. Encoding the JSON must give exactly those bytes, and decoding them must
//! give the JSON back.

use serde_json::{Value, json};

use super::*;

macro_rules! golden {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let json = include_str!(concat!("testdata/", stringify!($name), ".json"));
                let pb = include_bytes!(concat!("testdata/", stringify!($name), ".pb"));
                check_golden(stringify!($name), json, pb);
            }
        )*
    };
}

mod golden {
    use super::check_golden;

    golden!(
        clusterrole,
        configmap,
        configmap_list,
        configmap_small,
        crd,
        csr,
        delete_options,
        deployment,
        endpointslice,
        event,
        events_event,
        hpa,
        ingress,
        job,
        lease,
        networkpolicy,
        node,
        persistent_volume,
        pod,
        secret,
        service,
        status,
        validating_webhook,
    );
}

fn check_golden(name: &str, json: &str, pb: &[u8]) {
    let obj: Value = serde_json::from_str(json).expect("test JSON parses");
    let encoded = encode(&obj).unwrap_or_else(|e| panic!("{name}: encode: {e}"));
    if encoded != pb {
        let at = encoded
            .iter()
            .zip(pb)
            .position(|(a, b)| a != b)
            .unwrap_or(encoded.len().min(pb.len()));
        panic!(
            "{name}: encoded bytes differ from upstream's at byte {at} (ours {} bytes, upstream {})\nours:     {:02x?}\nupstream: {:02x?}",
            encoded.len(),
            pb.len(),
            &encoded[at.saturating_sub(16)..encoded.len().min(at + 32)],
            &pb[at.saturating_sub(16)..pb.len().min(at + 32)],
        );
    }
    let decoded = decode(pb).unwrap_or_else(|e| panic!("{name}: decode: {e}"));
    assert_eq!(
        decoded,
        obj,
        "{name}: decoded JSON differs\n{}",
        serde_json::to_string_pretty(&decoded).unwrap_or_default()
    );
}

/// The small ConfigMap, derived by hand from the wire rules.
#[test]
fn configmap_bytes_by_hand() {
    let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "foo"}, "data": {"a": "b"}});
    #[rustfmt::skip]
    let expected: Vec<u8> = [
        &b"k8s\0"[..],
        // Unknown.typeMeta (1, length-delimited), 15 bytes: apiVersion (1) "v1", kind (2) "ConfigMap"
        &[0x0a, 0x0f, 0x0a, 0x02], b"v1", &[0x12, 0x09], b"ConfigMap",
        // Unknown.raw (2), 29 bytes: the ConfigMap
        &[0x12, 0x1d],
        // ConfigMap.metadata (1), 19 bytes: name (1) "foo", then the string fields Go always
        // writes (generateName 2, namespace 3, selfLink 4, uid 5, resourceVersion 6) empty,
        // generation (7, varint) 0, creationTimestamp (8) as an empty Time
        &[0x0a, 0x13, 0x0a, 0x03], b"foo",
        &[0x12, 0x00, 0x1a, 0x00, 0x22, 0x00, 0x2a, 0x00, 0x32, 0x00, 0x38, 0x00, 0x42, 0x00],
        // ConfigMap.data (2), one map entry of 6 bytes: key (1) "a", value (2) "b"
        &[0x12, 0x06, 0x0a, 0x01], b"a", &[0x12, 0x01], b"b",
        // Unknown.contentEncoding (3) and contentType (4), empty
        &[0x1a, 0x00, 0x22, 0x00],
    ]
    .concat();
    assert_eq!(encode(&obj).ok(), Some(expected.clone()));
    assert_eq!(decode(&expected).ok(), Some(obj));
}

/// Upstream's watch stream: ADDED then DELETED of the small ConfigMap.
#[test]
fn watch_frames_match_upstream() {
    let golden = include_bytes!("testdata/watch_configmap_small.bin");
    let obj: Value = serde_json::from_str(include_str!("testdata/configmap_small.json"))
        .expect("test JSON parses");
    let mut ours = encode_watch_event("ADDED", &obj).expect("encodes");
    ours.extend(encode_watch_event("DELETED", &obj).expect("encodes"));
    assert_eq!(ours, golden);

    // and the frames read back: length, bare WatchEvent, enveloped object inside
    let (len, rest) = golden.split_at(4);
    let len = u32::from_be_bytes(len.try_into().expect("4 bytes")) as usize;
    let mut r = wire::Reader::new(&rest[..len]);
    let mut event_type = String::new();
    let mut object = Value::Null;
    while let Ok(Some((tag, value))) = r.field() {
        match (tag, value) {
            (1, wire::Value::Bytes(b)) => event_type = String::from_utf8_lossy(b).into_owned(),
            (2, wire::Value::Bytes(b)) => {
                let mut raw = wire::Reader::new(b);
                if let Ok(Some((1, wire::Value::Bytes(inner)))) = raw.field() {
                    object = decode(inner).expect("embedded object decodes");
                }
            }
            _ => {}
        }
    }
    assert_eq!(event_type, "ADDED");
    assert_eq!(object, obj);
}

#[test]
fn unknown_json_members_are_dropped_and_unknown_tags_skipped() {
    let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "bogus": 1}, "extra": {"a": 1}});
    let pb = encode(&obj).expect("encodes");
    assert_eq!(
        decode(&pb).ok(),
        Some(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}))
    );

    // append field 99 (varint) and field 98 (bytes) to the ConfigMap message
    let mut raw = Vec::new();
    wire::put_bytes(&mut raw, 1, &[0x0a, 0x01, b'y']);
    wire::put_key(&mut raw, 99, wire::VARINT);
    wire::put_varint(&mut raw, 7);
    wire::put_bytes(&mut raw, 98, b"zzz");
    let pb = envelope("v1", "ConfigMap", &raw);
    assert_eq!(
        decode(&pb).ok(),
        Some(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "y"}}))
    );
}

#[test]
fn go_zero_values_are_dropped_but_set_pointers_kept() {
    // Deployment.spec: replicas (a pointer) 0 is kept; minReadySeconds (a value) 0 is not;
    // paused (a value) false is not.
    let mut spec = Vec::new();
    wire::put_key(&mut spec, 1, wire::VARINT);
    wire::put_varint(&mut spec, 0);
    wire::put_key(&mut spec, 5, wire::VARINT);
    wire::put_varint(&mut spec, 0);
    wire::put_key(&mut spec, 7, wire::VARINT);
    wire::put_varint(&mut spec, 0);
    let mut raw = Vec::new();
    wire::put_bytes(&mut raw, 2, &spec);
    let obj = decode(&envelope("apps/v1", "Deployment", &raw)).expect("decodes");
    assert_eq!(
        obj,
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": 0}})
    );
}

#[test]
fn packed_repeated_numbers_are_read() {
    // PodSecurityContext.supplementalGroups (4), sent packed
    let mut groups = Vec::new();
    for g in [1u64, 300, 70000] {
        wire::put_varint(&mut groups, g);
    }
    let mut psc = Vec::new();
    wire::put_bytes(&mut psc, 4, &groups);
    let mut spec = Vec::new();
    wire::put_bytes(&mut spec, 14, &psc);
    let mut raw = Vec::new();
    wire::put_bytes(&mut raw, 2, &spec);
    let obj = decode(&envelope("v1", "Pod", &raw)).expect("decodes");
    assert_eq!(
        obj["spec"]["securityContext"]["supplementalGroups"],
        json!([1, 300, 70000])
    );
}

#[test]
fn int_or_string_and_quantity_forms() {
    let obj = json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "p"},
        "spec": {"minAvailable": "50%", "maxUnavailable": 1}
    });
    assert_eq!(decode(&encode(&obj).expect("encodes")).ok(), Some(obj));

    // a number where a quantity goes is written as its decimal string
    let lr = json!({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "l"},
        "spec": {"limits": [{"type": "Container", "max": {"cpu": 2}}]}});
    let back = decode(&encode(&lr).expect("encodes")).expect("decodes");
    assert_eq!(back["spec"]["limits"][0]["max"]["cpu"], "2");
}

#[test]
fn times_keep_seconds_and_micro_times_microseconds() {
    let obj = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "t", "creationTimestamp": "2025-01-02T03:04:05.999+02:00"}});
    let back = decode(&encode(&obj).expect("encodes")).expect("decodes");
    assert_eq!(
        back["metadata"]["creationTimestamp"],
        "2025-01-02T01:04:05Z"
    );

    let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"},
        "spec": {"renewTime": "2025-01-02T03:04:05.1234567Z"}});
    let back = decode(&encode(&lease).expect("encodes")).expect("decodes");
    assert_eq!(back["spec"]["renewTime"], "2025-01-02T03:04:05.123456Z");
}

#[test]
fn errors_name_what_failed() {
    let missing = encode(&json!({"kind": "Pod"}));
    assert!(matches!(missing, Err(ProtoError::MissingTypeMeta)));

    let custom = encode(&json!({"apiVersion": "example.com/v1", "kind": "Widget"}));
    assert!(matches!(custom, Err(ProtoError::UnsupportedKind { .. })));
    assert!(!supports("example.com/v1", "Widget"));
    assert!(
        supports("v1", "Pod")
            && supports("apps/v1", "DeploymentList")
            && supports("batch/v1", "DeleteOptions")
    );

    let bad =
        encode(&json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [{"name": 5}]}}));
    match bad {
        Err(e @ ProtoError::InvalidJson { .. }) => {
            assert_eq!(
                e.to_string(),
                "cannot encode .spec.containers.name as protobuf: expected a string"
            )
        }
        other => panic!("unexpected {other:?}"),
    }

    assert!(matches!(
        decode(b"{\"kind\":\"Pod\"}"),
        Err(ProtoError::MissingMagic)
    ));
    let truncated = &include_bytes!("testdata/pod.pb")[..100];
    assert!(decode(truncated).is_err());
}

#[test]
fn every_kind_encodes_an_empty_object_and_reads_it_back() {
    for (api_version, kind, _) in schema::KINDS.iter() {
        let obj = json!({"apiVersion": api_version, "kind": kind});
        let pb = encode(&obj).unwrap_or_else(|e| panic!("{api_version} {kind}: {e}"));
        let back = decode(&pb).unwrap_or_else(|e| panic!("{api_version} {kind}: {e}"));
        assert_eq!(back, obj, "{api_version} {kind}");
    }
}

fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let mut type_meta = Vec::new();
    wire::put_bytes(&mut type_meta, 1, api_version.as_bytes());
    wire::put_bytes(&mut type_meta, 2, kind.as_bytes());
    let mut out = MAGIC.to_vec();
    wire::put_bytes(&mut out, 1, &type_meta);
    wire::put_bytes(&mut out, 2, raw);
    out
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    let mut schema = json!({"type": "string"});
    for _ in 0..200 {
        schema = json!({"not": schema});
    }
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "spec": {"versions": [{"name": "v1", "schema": {"openAPIV3Schema": schema}}]}});
    let pb = encode(&crd).expect("encodes");
    match decode(&pb) {
        Err(ProtoError::Malformed(reason)) => assert_eq!(reason, "messages nested too deeply"),
        other => panic!("unexpected {other:?}"),
    }
}

/// Decoding arbitrary damage to valid input returns errors or odd JSON, never panics.
#[test]
fn damaged_input_never_panics() {
    for pb in [
        &include_bytes!("testdata/pod.pb")[..],
        &include_bytes!("testdata/crd.pb")[..],
        &include_bytes!("testdata/node.pb")[..],
    ] {
        for cut in 0..pb.len() {
            let _ = decode(&pb[..cut]);
        }
        let mut damaged = pb.to_vec();
        for i in 4..damaged.len() {
            for flip in [0x80, 0xff] {
                damaged[i] ^= flip;
                let _ = decode(&damaged);
                damaged[i] ^= flip;
            }
        }
    }
}
