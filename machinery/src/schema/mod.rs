//! Schema facts of the built-in API types (Kubernetes v1.33) that the Rust types of
//! k8s-openapi do not carry: per field, the strategic-merge-patch strategy and merge key,
//! the server-side-apply list type, list-map keys and map type, the OpenAPI `default`, the
//! enum values and the type the field leads to; per type, `+structType`, unions and the
//! group-version-kinds it is served as.
//!
//! Types are named as Kubernetes publishes them in OpenAPI (`io.k8s.api.core.v1.PodSpec`),
//! fields by their JSON names; fields of inlined (embedded) structs appear in the type that
//! inlines them. The table (`generated.rs`) is written by `hack/gen-api-schema/gen.sh` from
//! the v1.33 Go types and their `// +marker` comments; `gen.sh --check` verifies it.
//!
//! The strategic merge patch and server-side apply engines walk an object with
//! [`kind_type`] for its root, [`type_of_field`] to descend and [`field_meta`] to decide how
//! each list and map merges.

#[rustfmt::skip]
mod generated;
pub mod go_json;

#[cfg(test)]
mod tests;

/// What a field holds, as the schema sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A string, number or boolean (also `[]byte`, which JSON carries as base64).
    Scalar,
    /// A struct with its own properties; `elem` names it.
    Struct,
    /// An array; `elem` names the struct its items lead to, if any.
    List,
    /// A JSON object with arbitrary keys; `elem` names the struct its values lead to, if any.
    Map,
    /// A type with its own JSON form (`Time`, `Quantity`, `IntOrString`, `RawExtension`,
    /// `FieldsV1`, ...): a single value to patch engines; `elem` names it.
    Opaque,
}

/// `x-kubernetes-list-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListType {
    Atomic,
    Set,
    Map,
}

impl ListType {
    pub fn as_str(self) -> &'static str {
        match self {
            ListType::Atomic => "atomic",
            ListType::Set => "set",
            ListType::Map => "map",
        }
    }
}

/// `x-kubernetes-map-type` (from `+mapType` on a map field or `+structType` on a struct).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapType {
    Atomic,
    Granular,
}

impl MapType {
    pub fn as_str(self) -> &'static str {
        match self {
            MapType::Atomic => "atomic",
            MapType::Granular => "granular",
        }
    }
}

/// `x-kubernetes-patch-strategy` (the Go `patchStrategy` tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchStrategy {
    Merge,
    RetainKeys,
    MergeRetainKeys,
    Replace,
}

impl PatchStrategy {
    pub fn as_str(self) -> &'static str {
        match self {
            PatchStrategy::Merge => "merge",
            PatchStrategy::RetainKeys => "retainKeys",
            PatchStrategy::MergeRetainKeys => "merge,retainKeys",
            PatchStrategy::Replace => "replace",
        }
    }

    /// Lists merge (by merge key, or as a set of primitives) instead of being replaced.
    pub fn merges(self) -> bool {
        matches!(self, PatchStrategy::Merge | PatchStrategy::MergeRetainKeys)
    }

    /// The struct honours the `$retainKeys` directive.
    pub fn retains_keys(self) -> bool {
        matches!(
            self,
            PatchStrategy::RetainKeys | PatchStrategy::MergeRetainKeys
        )
    }
}

/// One property of a type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldDef {
    /// JSON name.
    pub name: &'static str,
    pub shape: Shape,
    /// The struct (or opaque) type the field, its items or its values lead to.
    pub elem: Option<&'static str>,
    /// For lists and maps: the shape of one item or value.
    pub elem_shape: Option<Shape>,
    /// Listed in the type's OpenAPI `required`.
    pub required: bool,
    pub patch_strategy: Option<PatchStrategy>,
    pub merge_key: Option<&'static str>,
    pub list_type: Option<ListType>,
    pub list_map_keys: &'static [&'static str],
    /// The field's own `+mapType`/`+structType` marker (see [`field_meta`] for the
    /// effective one).
    pub map_type: Option<MapType>,
    /// Other `x-kubernetes-*` extensions: (name, JSON value).
    pub extensions: &'static [(&'static str, &'static str)],
    /// The OpenAPI `default`, as JSON text.
    pub default: Option<&'static str>,
    /// The JSON the field takes in its struct's Go zero value (`0`, `""`, `false`, `{}`,
    /// `null` for a zero `Time`), or None when `omitempty` (or a nil pointer, slice or map)
    /// leaves it out: what upstream serves for a field nobody set.
    pub zero: Option<&'static str>,
    /// The field's Go type as encoding/json's errors name it, with the kind of its innermost
    /// value: `map[string]string=string`, `[]v1.Container=struct`, `v1.Time=custom` (its
    /// own UnmarshalJSON), `[]uint8=bytes`; `""` when unknown.
    pub go_type: &'static str,
    /// The `default` of each nested level of `items`/`additionalProperties`, as JSON text.
    pub item_defaults: &'static [Option<&'static str>],
    /// The enum type ([`enum_def`]) of the field (`enum_level` 0) or of its n-th level of
    /// items/values.
    pub enum_type: Option<&'static str>,
    pub enum_level: u8,
}

impl FieldDef {
    pub const EMPTY: FieldDef = FieldDef {
        name: "",
        shape: Shape::Scalar,
        elem: None,
        elem_shape: None,
        required: false,
        patch_strategy: None,
        merge_key: None,
        list_type: None,
        list_map_keys: &[],
        map_type: None,
        extensions: &[],
        default: None,
        zero: None,
        go_type: "",
        item_defaults: &[],
        enum_type: None,
        enum_level: 0,
    };
}

/// `x-kubernetes-unions`: a discriminator and the members it selects, as
/// (JSON name, Go field name) pairs — the value the discriminator takes is the Go name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnionDef {
    pub discriminator: Option<&'static str>,
    pub fields: &'static [(&'static str, &'static str)],
}

/// One type, by its OpenAPI name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeDef {
    pub name: &'static str,
    /// A type with its own JSON form (no properties): `Time`, `Quantity`, ...
    pub opaque: bool,
    /// The required properties, in declaration order (OpenAPI `required`).
    pub required: &'static [&'static str],
    /// `+structType=atomic|granular`.
    pub map_type: Option<MapType>,
    /// Other `x-kubernetes-*` extensions of the type: (name, JSON value).
    pub extensions: &'static [(&'static str, &'static str)],
    pub unions: &'static [UnionDef],
    /// Sorted by name.
    pub fields: &'static [FieldDef],
}

impl TypeDef {
    pub const EMPTY: TypeDef = TypeDef {
        name: "",
        opaque: false,
        required: &[],
        map_type: None,
        extensions: &[],
        unions: &[],
        fields: &[],
    };

    pub fn field(&self, name: &str) -> Option<&'static FieldDef> {
        let fields: &'static [FieldDef] = self.fields;
        fields
            .binary_search_by(|f| f.name.cmp(name))
            .ok()
            .map(|i| &fields[i])
    }
}

/// A string enum (`+enum`): its values, sorted, each with the description line upstream
/// publishes after "Possible enum values:".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnumDef {
    pub name: &'static str,
    pub values: &'static [(&'static str, &'static str)],
}

/// A group-version-kind and the type it is served as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindDef {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub type_name: &'static str,
    /// The Go zero value of the kind as JSON (`{"metadata":{"creationTimestamp":null},
    /// "spec":{...},"status":{}}`): non-pointer structs and fields without `omitempty`
    /// are present. Server-side apply compares a created object against it.
    pub zero: &'static str,
}

/// A query parameter of an API operation, described by the field of an options struct
/// (`ListOptions`, `PatchOptions`, `PodLogOptions`, ...) it decodes into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamDef {
    /// The Go options struct: `ListOptions`, `PodExecOptions`, ...
    pub options: &'static str,
    pub name: &'static str,
    /// `string`, `integer` or `boolean`.
    pub openapi_type: &'static str,
    pub description: &'static str,
}

/// The documentation of a list kind (`PodList`): the type and its `items` and `metadata`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListDocDef {
    pub type_name: &'static str,
    pub description: &'static str,
    pub items: &'static str,
    pub metadata: &'static str,
}

/// How a field merges: what the patch engines need.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FieldMeta {
    pub patch_strategy: Option<PatchStrategy>,
    pub merge_key: Option<&'static str>,
    pub list_type: Option<ListType>,
    pub list_map_keys: &'static [&'static str],
    /// The field's `+mapType`, or for a struct field its type's `+structType`.
    pub map_type: Option<MapType>,
}

/// Every type, sorted by name.
pub fn types() -> &'static [TypeDef] {
    generated::TYPES
}

/// Every group-version-kind, sorted by group, version and kind.
pub fn kinds() -> &'static [KindDef] {
    generated::KINDS
}

pub fn type_def(type_name: &str) -> Option<&'static TypeDef> {
    let types = generated::TYPES;
    types
        .binary_search_by(|t| t.name.cmp(type_name))
        .ok()
        .map(|i| &types[i])
}

pub fn field_def(type_name: &str, field: &str) -> Option<&'static FieldDef> {
    type_def(type_name)?.field(field)
}

/// The merge facts of `type_name.field`; all `None` for unknown types and fields.
pub fn field_meta(type_name: &str, field: &str) -> FieldMeta {
    let Some(f) = field_def(type_name, field) else {
        return FieldMeta::default();
    };
    let map_type = f.map_type.or_else(|| match f.shape {
        Shape::Struct => f.elem.and_then(type_def).and_then(|t| t.map_type),
        _ => None,
    });
    FieldMeta {
        patch_strategy: f.patch_strategy,
        merge_key: f.merge_key,
        list_type: f.list_type,
        list_map_keys: f.list_map_keys,
        map_type,
    }
}

/// The type a field leads to: the struct of a struct field, of a list's items or of a
/// map's values (also opaque types such as `io.k8s.apimachinery.pkg.apis.meta.v1.Time`).
pub fn type_of_field(type_name: &str, field: &str) -> Option<&'static str> {
    field_def(type_name, field)?.elem
}

/// The root type of a group-version-kind (`""`, `"v1"`, `"Pod"` -> `io.k8s.api.core.v1.Pod`).
pub fn kind_type(group: &str, version: &str, kind: &str) -> Option<&'static str> {
    let kinds = generated::KINDS;
    kinds
        .binary_search_by(|k| (k.group, k.version, k.kind).cmp(&(group, version, kind)))
        .ok()
        .map(|i| kinds[i].type_name)
}

/// The Go zero value of a group-version-kind, as JSON text ([`KindDef::zero`]).
pub fn kind_zero(group: &str, version: &str, kind: &str) -> Option<&'static str> {
    let kinds = generated::KINDS;
    kinds
        .binary_search_by(|k| (k.group, k.version, k.kind).cmp(&(group, version, kind)))
        .ok()
        .map(|i| kinds[i].zero)
}

/// The group-version-kinds served as `type_name`, in table order.
pub fn kinds_of_type(type_name: &str) -> impl Iterator<Item = &'static KindDef> + use<'_> {
    generated::KINDS
        .iter()
        .filter(move |k| k.type_name == type_name)
}

/// The query parameter `name` of the options struct `options` (`"ListOptions"`, `"limit"`).
pub fn param_def(options: &str, name: &str) -> Option<&'static ParamDef> {
    let params = generated::PARAMS;
    params
        .binary_search_by(|p| (p.options, p.name).cmp(&(options, name)))
        .ok()
        .map(|i| &params[i])
}

pub fn list_doc(type_name: &str) -> Option<&'static ListDocDef> {
    let docs = generated::LIST_DOCS;
    docs.binary_search_by(|d| d.type_name.cmp(type_name))
        .ok()
        .map(|i| &docs[i])
}

pub fn enum_def(name: &str) -> Option<&'static EnumDef> {
    let enums = generated::ENUMS;
    enums
        .binary_search_by(|e| e.name.cmp(name))
        .ok()
        .map(|i| &enums[i])
}

/// Adds the fields Go's encoder writes for a zero value (`status: {}`, `replicas: 0`,
/// `resources: {}`, ...) wherever `obj`, an object of type `type_name`, leaves them out,
/// through nested structs, list items and map values: upstream's objects are Go structs,
/// so these fields are always there when it serves them.
pub fn fill_go_zero(obj: &mut serde_json::Value, type_name: &str) {
    let Some(def) = type_def(type_name) else { return };
    if def.opaque {
        return;
    }
    let Some(m) = obj.as_object_mut() else { return };
    for f in def.fields {
        if let Some(z) = f.zero
            && !m.contains_key(f.name)
            && let Ok(v) = serde_json::from_str(z)
        {
            m.insert(f.name.to_string(), v);
        }
        let Some(elem) = f.elem else { continue };
        let Some(v) = m.get_mut(f.name) else { continue };
        match (f.shape, f.elem_shape, v) {
            (Shape::Struct, _, v @ serde_json::Value::Object(_)) => fill_go_zero(v, elem),
            (Shape::List, Some(Shape::Struct), serde_json::Value::Array(items)) => {
                for item in items {
                    fill_go_zero(item, elem);
                }
            }
            (Shape::Map, Some(Shape::Struct), serde_json::Value::Object(values)) => {
                for item in values.values_mut() {
                    fill_go_zero(item, elem);
                }
            }
            _ => {}
        }
    }
}
