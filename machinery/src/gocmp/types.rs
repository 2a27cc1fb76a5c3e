//! The shape of a Go type as go-cmp sees it through `reflect` (the table in `generated.rs`).

/// `reflect.Kind`, folded to what go-cmp treats differently.
// The generator emits only the kinds the tabled types have; the rest stay for when it
// tables more.
#[allow(dead_code)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoKind {
    Bool,
    /// Every signed integer width.
    Int,
    /// `uint8`: printed in hex inside slices and arrays.
    Uint8,
    /// The other unsigned widths.
    Uint,
    Float,
    String,
    Struct,
    Slice,
    Array,
    Map,
    Ptr,
    Interface,
}

/// One struct field, in declaration order.
#[derive(Debug)]
pub struct GoField {
    /// The Go field name (go-cmp's record key).
    pub name: &'static str,
    /// Index of the field's type in `TYPES`.
    pub ty: usize,
    /// The field's name in the v1 JSON form.
    pub json: &'static str,
    /// The v1 JSON form inlines the field's own fields (an embedded struct).
    pub inline: bool,
}

/// One Go type.
#[derive(Debug)]
pub struct GoType {
    /// `reflect.Type.String()`: "core.PodSpec", "[]core.Container", "*int64".
    pub name: &'static str,
    /// A defined (named) type rather than a type literal.
    pub named: bool,
    pub kind: GoKind,
    /// Element type of slices, arrays, pointers and maps.
    pub elem: usize,
    /// Key type of maps.
    pub key: usize,
    /// go-cmp compares values of this type with their `Equal` method (a leaf).
    pub equal_method: bool,
    /// The type reads its own JSON form (a `json.Unmarshaler`): its name, or "".
    pub codec: &'static str,
    /// go-cmp prints the value through a method: "s" (`String`), "e" (`Error`), or "".
    pub string_method: &'static str,
    pub fields: &'static [GoField],
}

/// The type at `index` in the generated table.
pub fn go_type(index: usize) -> &'static GoType {
    &super::generated::TYPES[index]
}
