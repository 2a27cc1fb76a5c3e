use super::*;

const CORE: &str = "io.k8s.api.core.v1";
const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1";

fn t(short: &str) -> String {
    match short.split_once(':') {
        Some(("meta", name)) => format!("{META}.{name}"),
        Some(("apps", name)) => format!("io.k8s.api.apps.v1.{name}"),
        _ => format!("{CORE}.{short}"),
    }
}

#[test]
fn tables_are_sorted_for_binary_search() {
    assert!(types().windows(2).all(|w| w[0].name < w[1].name));
    for ty in types() {
        assert!(
            ty.fields.windows(2).all(|w| w[0].name < w[1].name),
            "{}",
            ty.name
        );
    }
    assert!(
        kinds()
            .windows(2)
            .all(|w| (w[0].group, w[0].version, w[0].kind) < (w[1].group, w[1].version, w[1].kind))
    );
    assert!(generated::ENUMS.windows(2).all(|w| w[0].name < w[1].name));
    assert!(
        generated::LIST_DOCS
            .windows(2)
            .all(|w| w[0].type_name < w[1].type_name)
    );
    assert!(
        generated::PARAMS
            .windows(2)
            .all(|w| (w[0].options, w[0].name) < (w[1].options, w[1].name))
    );
}

#[test]
fn every_referenced_type_and_enum_is_in_the_table() {
    for ty in types() {
        for f in ty.fields {
            if let Some(elem) = f.elem {
                assert!(type_def(elem).is_some(), "{}.{} -> {elem}", ty.name, f.name);
            }
            if let Some(e) = f.enum_type {
                assert!(enum_def(e).is_some(), "{}.{} -> enum {e}", ty.name, f.name);
            }
        }
    }
    for k in kinds() {
        assert!(type_def(k.type_name).is_some(), "{k:?}");
    }
}

#[test]
fn merge_facts_of_well_known_fields() {
    // (type, field, patch strategy, merge key, list type, list-map keys)
    let cases: &[(
        &str,
        &str,
        Option<PatchStrategy>,
        Option<&str>,
        Option<ListType>,
        &[&str],
    )] = &[
        (
            "PodSpec",
            "containers",
            Some(PatchStrategy::Merge),
            Some("name"),
            Some(ListType::Map),
            &["name"],
        ),
        (
            "PodSpec",
            "initContainers",
            Some(PatchStrategy::Merge),
            Some("name"),
            Some(ListType::Map),
            &["name"],
        ),
        (
            "PodSpec",
            "volumes",
            Some(PatchStrategy::MergeRetainKeys),
            Some("name"),
            Some(ListType::Map),
            &["name"],
        ),
        (
            "PodSpec",
            "tolerations",
            None,
            None,
            Some(ListType::Atomic),
            &[],
        ),
        (
            "Container",
            "ports",
            Some(PatchStrategy::Merge),
            Some("containerPort"),
            Some(ListType::Map),
            &["containerPort", "protocol"],
        ),
        (
            "Container",
            "env",
            Some(PatchStrategy::Merge),
            Some("name"),
            Some(ListType::Map),
            &["name"],
        ),
        (
            "Container",
            "volumeMounts",
            Some(PatchStrategy::Merge),
            Some("mountPath"),
            Some(ListType::Map),
            &["mountPath"],
        ),
        ("Container", "args", None, None, Some(ListType::Atomic), &[]),
        (
            "meta:ObjectMeta",
            "finalizers",
            Some(PatchStrategy::Merge),
            None,
            Some(ListType::Set),
            &[],
        ),
        (
            "meta:ObjectMeta",
            "ownerReferences",
            Some(PatchStrategy::Merge),
            Some("uid"),
            Some(ListType::Map),
            &["uid"],
        ),
        (
            "ServiceSpec",
            "ports",
            Some(PatchStrategy::Merge),
            Some("port"),
            Some(ListType::Map),
            &["port", "protocol"],
        ),
        (
            "PodStatus",
            "conditions",
            Some(PatchStrategy::Merge),
            Some("type"),
            Some(ListType::Map),
            &["type"],
        ),
        (
            "apps:DeploymentSpec",
            "strategy",
            Some(PatchStrategy::RetainKeys),
            None,
            None,
            &[],
        ),
    ];
    for (ty, field, strategy, key, list_type, map_keys) in cases {
        let m = field_meta(&t(ty), field);
        assert_eq!(m.patch_strategy, *strategy, "{ty}.{field} patch strategy");
        assert_eq!(m.merge_key, *key, "{ty}.{field} merge key");
        assert_eq!(m.list_type, *list_type, "{ty}.{field} list type");
        assert_eq!(m.list_map_keys, *map_keys, "{ty}.{field} list-map keys");
    }
}

#[test]
fn map_types_follow_markers_and_struct_types() {
    assert_eq!(field_meta(&t("meta:ObjectMeta"), "labels").map_type, None);
    // +structType=atomic on LabelSelector reaches every field of that type.
    assert_eq!(
        field_meta(&t("apps:DeploymentSpec"), "selector").map_type,
        Some(MapType::Atomic)
    );
    assert_eq!(
        type_def(&t("meta:LabelSelector")).and_then(|d| d.map_type),
        Some(MapType::Atomic)
    );
    // +mapType=atomic on a map field.
    assert_eq!(
        field_meta(&t("NodeSelectorTerm"), "matchExpressions").list_type,
        Some(ListType::Atomic)
    );
    assert_eq!(
        field_meta(&t("ConfigMapKeySelector"), "name").map_type,
        None
    );
    assert_eq!(
        type_def(&t("ConfigMapKeySelector")).and_then(|d| d.map_type),
        Some(MapType::Atomic)
    );
}

#[test]
fn nested_types_and_kinds() {
    assert_eq!(kind_type("", "v1", "Pod"), Some("io.k8s.api.core.v1.Pod"));
    assert_eq!(
        kind_type("apps", "v1", "Deployment"),
        Some("io.k8s.api.apps.v1.Deployment")
    );
    assert_eq!(
        kind_type("apps", "v1", "DeploymentList"),
        Some("io.k8s.api.apps.v1.DeploymentList")
    );
    assert_eq!(kind_type("apps", "v1", "Nope"), None);
    assert_eq!(
        type_of_field(&t("Pod"), "spec"),
        Some("io.k8s.api.core.v1.PodSpec")
    );
    assert_eq!(
        type_of_field(&t("Pod"), "metadata"),
        Some("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")
    );
    assert_eq!(
        type_of_field(&t("PodSpec"), "containers"),
        Some("io.k8s.api.core.v1.Container")
    );
    assert_eq!(
        type_of_field(&t("Container"), "resources"),
        Some("io.k8s.api.core.v1.ResourceRequirements")
    );
    assert_eq!(
        type_of_field(&t("ResourceRequirements"), "limits"),
        Some("io.k8s.apimachinery.pkg.api.resource.Quantity")
    );
    assert_eq!(type_of_field(&t("Container"), "args"), None);
    let limits = field_def(&t("ResourceRequirements"), "limits").expect("limits");
    assert_eq!(
        (limits.shape, limits.elem_shape),
        (Shape::Map, Some(Shape::Opaque))
    );
    let ts = field_def(&t("meta:ObjectMeta"), "creationTimestamp").expect("creationTimestamp");
    assert_eq!(ts.shape, Shape::Opaque);
    // apiVersion and kind come from the inlined TypeMeta.
    assert!(field_def(&t("Pod"), "apiVersion").is_some());
    assert_eq!(
        field_meta("io.k8s.api.core.v1.Nope", "x"),
        FieldMeta::default()
    );
}

#[test]
fn defaults_and_enums() {
    let port = field_def(&t("ContainerPort"), "protocol").expect("protocol");
    assert_eq!(port.default, Some("\"TCP\""));
    let policy = enum_def(port.enum_type.expect("enum")).expect("Protocol");
    let values: Vec<&str> = policy.values.iter().map(|v| v.0).collect();
    assert_eq!(values, ["SCTP", "TCP", "UDP"]);
    // Non-pointer structs and strings without omitempty default to their zero values.
    assert_eq!(
        field_def(&t("Container"), "name").and_then(|f| f.default),
        Some("\"\"")
    );
    assert_eq!(
        field_def(&t("Pod"), "metadata").and_then(|f| f.default),
        Some("{}")
    );
    assert_eq!(
        field_def(&t("Container"), "args").map(|f| f.item_defaults),
        Some(&[Some("\"\"")][..])
    );
    assert_eq!(
        field_def(&t("Container"), "ports").map(|f| f.item_defaults),
        Some(&[Some("{}")][..])
    );
}

#[test]
fn unions() {
    let subject = type_def("io.k8s.api.flowcontrol.v1.Subject").expect("Subject");
    assert_eq!(subject.unions.len(), 1);
    assert_eq!(subject.unions[0].discriminator, Some("kind"));
    assert!(
        subject.unions[0]
            .fields
            .contains(&("serviceAccount", "ServiceAccount"))
    );
}

#[test]
fn option_parameters() {
    let limit = param_def("ListOptions", "limit").expect("limit");
    assert_eq!(limit.openapi_type, "integer");
    assert!(!limit.description.is_empty());
    assert_eq!(
        param_def("PatchOptions", "force").map(|p| p.openapi_type),
        Some("boolean")
    );
    assert_eq!(
        param_def("PodPortForwardOptions", "ports").map(|p| p.openapi_type),
        Some("integer")
    );
    assert!(param_def("ListOptions", "nope").is_none());
}
