//! go-cmp's default reporter: turns the comparison tree into text — differing records
//! as `-`/`+` lines, runs of equal records as two lines of context and a "... // N
//! identical fields" comment, values cut to a verbosity budget that grows until the two
//! sides print differently.

use super::compare::{Key, Node};
use super::text::{
    append_ellipsis, braces, line, record, wrap, Comment, Mode, Record, Stats, Text, ELLIPSIS,
    IDENTICAL, INSERTED, NIL, REMOVED, UNKNOWN,
};
use super::types::{go_type, GoKind};
use super::value::GoValue;

/// Equal records printed before and after a difference.
const CONTEXT_RECORDS: usize = 2;
/// The highest verbosity preset tried when both sides still print alike.
const MAX_VERBOSITY_PRESET: usize = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TypeMode {
    Emit,
    Elide,
    Auto,
}

#[derive(Debug, Clone, Copy)]
pub struct Opts {
    diff: Mode,
    type_mode: TypeMode,
    avoid_stringer: bool,
    verbosity_level: i64,
    limit_verbosity: bool,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            diff: UNKNOWN,
            type_mode: TypeMode::Emit,
            avoid_stringer: false,
            verbosity_level: 0,
            limit_verbosity: false,
        }
    }
}

impl Opts {
    fn with_diff(mut self, d: Mode) -> Self {
        self.diff = d;
        self
    }
    fn with_type(mut self, t: TypeMode) -> Self {
        self.type_mode = t;
        self
    }
    fn with_verbosity(mut self, level: i64) -> Self {
        self.verbosity_level = level;
        self.limit_verbosity = true;
        self
    }
    fn verbosity(&self) -> u32 {
        self.verbosity_level.clamp(0, 16) as u32
    }
    /// verbosityPreset: `i` steps more verbose; past the first, methods are not used.
    fn preset(mut self, i: usize) -> Self {
        self.verbosity_level = i64::from(self.verbosity()) + 2 * i as i64;
        if i > 0 {
            self.avoid_stringer = true;
        }
        self
    }
    /// The record budget of a list or struct at this verbosity.
    fn list_budget(&self, identical: bool) -> usize {
        let v = self.verbosity();
        if identical {
            ((1usize << v) >> 1) << 2
        } else {
            (1usize << v) << 1
        }
    }

    /// The record budget of one value's fields, elements or entries (unlimited when the
    /// verbosity is not limited); what they hold prints one level less verbose.
    fn take_value_budget(&mut self) -> usize {
        if !self.limit_verbosity {
            return usize::MAX;
        }
        let n = self.list_budget(true);
        self.verbosity_level -= 1;
        n
    }

    /// FormatDiff.
    pub fn format_diff(self, v: &Node<'_>, parent: Option<GoKind>) -> Option<Text> {
        let mut opts = self;
        if opts.diff == IDENTICAL {
            opts = opts.with_verbosity(1);
        } else if opts.verbosity() < 3 {
            opts = opts.with_verbosity(3);
        }
        let t = go_type(v.ty);
        if v.max_depth == 0 {
            return match opts.diff {
                UNKNOWN | IDENTICAL => {
                    if v.num_diff == 0 {
                        let outx = opts.format_value(v.ty, v.x, parent);
                        let outy = opts.format_value(v.ty, v.y, parent);
                        let lx = outx.as_ref().map_or(0, Text::len);
                        let ly = outy.as_ref().map_or(0, Text::len);
                        return if lx < ly { outx } else { outy };
                    }
                    let elide = opts.with_type(TypeMode::Elide);
                    let mut outx = elide.format_value(v.ty, v.x, parent);
                    let mut outy = elide.format_value(v.ty, v.y, parent);
                    let mut i = 0;
                    while i <= MAX_VERBOSITY_PRESET && same_text(&outx, &outy) {
                        let o2 = opts.preset(i).with_type(TypeMode::Elide);
                        outx = o2.format_value(v.ty, v.x, parent);
                        outy = o2.format_value(v.ty, v.y, parent);
                        i += 1;
                    }
                    let mut list = Vec::new();
                    if let Some(x) = outx {
                        list.push(Record {
                            diff: REMOVED,
                            ..record("", x)
                        });
                    }
                    if let Some(y) = outy {
                        list.push(Record {
                            diff: INSERTED,
                            ..record("", y)
                        });
                    }
                    Some(opts.with_type(TypeMode::Emit).format_type(v.ty, Text::List(list)))
                }
                REMOVED => opts.format_value(v.ty, v.x, parent),
                _ => opts.format_value(v.ty, v.y, parent),
            };
        }
        match t.kind {
            GoKind::Struct | GoKind::Slice | GoKind::Array | GoKind::Map => {
                let out = opts.format_diff_list(&v.records, t.kind, v.ty);
                Some(opts.format_type(v.ty, out))
            }
            GoKind::Ptr => {
                let inner = v.value.as_ref()?;
                let out = opts.format_diff(inner, Some(GoKind::Ptr))?;
                Some(wrap("&", out, ""))
            }
            _ => opts.format_value(v.ty, v.x, parent),
        }
    }

    /// formatDiffList: the records of a struct, slice or map.
    fn format_diff_list(mut self, recs: &[(Key<'_>, Node<'_>)], kind: GoKind, ty: usize) -> Text {
        let name = match kind {
            GoKind::Struct => {
                self = self.with_type(TypeMode::Auto);
                "field"
            }
            GoKind::Map => {
                self = self.with_type(TypeMode::Elide);
                "entry"
            }
            _ => {
                self = self.with_type(TypeMode::Elide);
                "element"
            }
        };
        let key_ty = go_type(ty).key;
        let format_key = |k: &Key<'_>| match k {
            Key::None => String::new(),
            Key::Field(f) => (*f).to_string(),
            Key::Map(v) => format_map_key(key_ty, v),
        };
        let parent = Some(kind);
        let max_len = if self.limit_verbosity {
            let n = self.list_budget(self.diff == IDENTICAL);
            self.verbosity_level -= 1;
            Some(n)
        } else {
            None
        };

        if self.diff != UNKNOWN {
            let mut list = Vec::new();
            let mut deferred = false;
            for (k, r) in recs {
                if Some(list.len()) == max_len {
                    deferred = true;
                    break;
                }
                if kind == GoKind::Struct {
                    let zero = |v: Option<&GoValue>| v.is_none_or(GoValue::is_zero);
                    let is_zero = match self.diff {
                        IDENTICAL => zero(r.x) || zero(r.y),
                        REMOVED => zero(r.x),
                        _ => zero(r.y),
                    };
                    if is_zero {
                        continue;
                    }
                }
                if let Some(out) = self.format_diff(r, parent) {
                    list.push(record(format_key(k), out));
                }
            }
            if deferred {
                append_ellipsis(&mut list, Stats::default());
            }
            return braces(list);
        }

        let mut num_diffs = 0;
        let mut list: Vec<Record> = Vec::new();
        let groups = coalesce(name, recs);
        let mut max_group = Stats::named(name);
        let mut rest = recs;
        let last = groups.len().saturating_sub(1);
        for (gi, ds) in groups.iter().enumerate() {
            if max_len.is_some_and(|m| num_diffs >= m) {
                max_group = max_group.append(ds);
                continue;
            }
            if ds.num_diff() == 0 {
                let num_equal = ds.ignored + ds.identical;
                let mut lo = 0;
                let mut hi = 0;
                while lo < CONTEXT_RECORDS && lo + hi < num_equal && gi != 0 {
                    lo += 1;
                }
                while hi < CONTEXT_RECORDS && lo + hi < num_equal && gi != last {
                    hi += 1;
                }
                if num_equal - (lo + hi) == 1 && ds.ignored == 0 {
                    hi += 1;
                }
                let ident = self.with_diff(IDENTICAL);
                for (k, r) in &rest[..lo] {
                    if let Some(out) = ident.format_diff(r, parent) {
                        list.push(record(format_key(k), out));
                    }
                }
                if num_equal > lo + hi {
                    let mut s = *ds;
                    s.identical -= lo + hi;
                    append_ellipsis(&mut list, s);
                }
                for (k, r) in &rest[num_equal - hi..num_equal] {
                    if let Some(out) = ident.format_diff(r, parent) {
                        list.push(record(format_key(k), out));
                    }
                }
                rest = &rest[num_equal..];
                continue;
            }
            for (k, r) in &rest[..ds.num_diff()] {
                if r.num_children == r.max_depth {
                    let mut outx = self.with_diff(REMOVED).format_diff(r, parent);
                    let mut outy = self.with_diff(INSERTED).format_diff(r, parent);
                    let mut i = 0;
                    while i <= MAX_VERBOSITY_PRESET && same_text(&outx, &outy) {
                        let o2 = self.preset(i);
                        outx = o2.with_diff(REMOVED).format_diff(r, parent);
                        outy = o2.with_diff(INSERTED).format_diff(r, parent);
                        i += 1;
                    }
                    if let Some(x) = outx {
                        list.push(Record {
                            diff: REMOVED,
                            ..record(format_key(k), x)
                        });
                    }
                    if let Some(y) = outy {
                        list.push(Record {
                            diff: INSERTED,
                            ..record(format_key(k), y)
                        });
                    }
                } else if let Some(out) = self.format_diff(r, parent) {
                    list.push(record(format_key(k), out));
                }
            }
            rest = &rest[ds.num_diff()..];
            num_diffs += ds.num_diff();
        }
        if !max_group.is_zero() {
            append_ellipsis(&mut list, max_group);
        }
        braces(list)
    }

    /// FormatType: wraps `s` in the type's name when the mode asks for it.
    fn format_type(&self, ty: usize, s: Text) -> Text {
        let t = go_type(ty);
        match self.type_mode {
            TypeMode::Elide => return s,
            TypeMode::Auto => {
                match t.kind {
                    GoKind::Struct | GoKind::Slice | GoKind::Array | GoKind::Map => {
                        if s.is_line(NIL) {
                            return s;
                        }
                    }
                    _ => return s,
                }
                if self.diff == IDENTICAL {
                    return s;
                }
            }
            TypeMode::Emit => {}
        }
        let name = if !t.named && t.kind == GoKind::Ptr {
            format!("({})", t.name)
        } else {
            t.name.to_string()
        };
        wrap(name, wrap_parens(s), "")
    }

    /// FormatValue: one side's value on its own.
    fn format_value(mut self, ty: usize, v: Option<&GoValue>, parent: Option<GoKind>) -> Option<Text> {
        let v = v?;
        let t = go_type(ty);
        if !self.avoid_stringer && !t.string_method.is_empty() {
            let nil = matches!(v, GoValue::Ptr(None));
            if !nil && let Some(s) = method_string(v) {
                return Some(self.format_string(t.string_method, &s));
            }
        }
        let mut skip_type = false;
        let out = match (t.kind, v) {
            (_, GoValue::Bool(b)) => line(b.to_string()),
            (GoKind::Uint8, GoValue::Uint(u))
                if matches!(parent, Some(GoKind::Slice | GoKind::Array)) =>
            {
                line(format!("0x{u:02x}"))
            }
            (_, GoValue::Int(i)) => line(i.to_string()),
            (_, GoValue::Uint(u)) => line(u.to_string()),
            (_, GoValue::Float(f)) => line(f.to_string()),
            (_, GoValue::Str(s)) => self.format_string("", s),
            (_, GoValue::Quantity(q)) => self.format_quantity(q),
            (_, GoValue::Opaque(j)) => line(j.to_string()),
            (_, GoValue::Struct(fields)) => {
                let max_len = self.take_value_budget();
                let mut list = Vec::new();
                for (f, fv) in t.fields.iter().zip(fields) {
                    if fv.is_zero() {
                        continue;
                    }
                    if list.len() == max_len {
                        append_ellipsis(&mut list, Stats::default());
                        break;
                    }
                    if let Some(s) = self.with_type(TypeMode::Auto).format_value(f.ty, Some(fv), Some(GoKind::Struct)) {
                        list.push(record(f.name, s));
                    }
                }
                braces(list)
            }
            (_, GoValue::List(None)) => line(NIL),
            (_, GoValue::List(Some(items))) => {
                let max_len = self.take_value_budget();
                let mut list = Vec::new();
                for item in items {
                    if list.len() == max_len {
                        append_ellipsis(&mut list, Stats::default());
                        break;
                    }
                    if let Some(s) = self.with_type(TypeMode::Elide).format_value(t.elem, Some(item), Some(t.kind)) {
                        list.push(record("", s));
                    }
                }
                braces(list)
            }
            (_, GoValue::Map(None)) => line(NIL),
            (_, GoValue::Map(Some(entries))) => {
                let max_len = self.take_value_budget();
                let mut list = Vec::new();
                for (k, val) in entries {
                    if list.len() == max_len {
                        append_ellipsis(&mut list, Stats::default());
                        break;
                    }
                    let sk = format_map_key(t.key, k);
                    if let Some(sv) = self.with_type(TypeMode::Elide).format_value(t.elem, Some(val), Some(GoKind::Map)) {
                        list.push(record(sk, sv));
                    }
                }
                braces(list)
            }
            (_, GoValue::Ptr(None)) => line(NIL),
            (_, GoValue::Ptr(Some(inner))) => {
                if !t.named {
                    skip_type = true;
                }
                let out = self.format_value(t.elem, Some(inner), Some(GoKind::Ptr))?;
                wrap("&", out, "")
            }
        };
        Some(if skip_type { out } else { self.format_type(ty, out) })
    }

    /// A Quantity printed field by field, as go-cmp prints a struct it may not call
    /// `String` on (the method has a pointer receiver): `{i: {value: 100, scale: -3}, s:
    /// "100m", Format: "DecimalSI"}`, each nested struct within the verbosity budget.
    fn format_quantity(&self, q: &super::value::QuantityValue) -> Text {
        // The budget of a struct at `opts`, and the options its fields are printed with.
        let budget = |opts: Opts| -> (usize, Opts) {
            let mut inner = opts.with_type(TypeMode::Auto);
            (inner.take_value_budget(), inner)
        };
        // A struct of already formatted (non-zero) fields.
        let fields = |max: usize, items: Vec<(&str, Text)>| {
            let mut list = Vec::new();
            for (name, t) in items {
                if list.len() == max {
                    append_ellipsis(&mut list, Stats::default());
                    break;
                }
                list.push(record(name, t));
            }
            braces(list)
        };
        let typed = |opts: Opts, name: &str, t: Text| {
            if opts.diff == IDENTICAL {
                t
            } else {
                wrap(name, t, "")
            }
        };
        let (max, inner) = budget(*self);
        let mut items = Vec::new();
        if let Some((value, scale)) = q.scaled {
            let (imax, _) = budget(inner);
            let mut ints = Vec::new();
            if value != 0 {
                ints.push(("value", line(value.to_string())));
            }
            if scale != 0 {
                ints.push(("scale", line(scale.to_string())));
            }
            items.push(("i", typed(inner, "resource.int64Amount", fields(imax, ints))));
        }
        if let Some(d) = &q.decimal {
            let (dmax, _) = budget(inner);
            let dec = vec![("Dec", line(format!("s{}", quote(d))))];
            items.push(("d", typed(inner, "resource.infDecAmount", fields(dmax, dec))));
        }
        if !q.cached.is_empty() {
            items.push(("s", inner.format_string("", &q.cached)));
        }
        if !q.format.is_empty() {
            items.push(("Format", inner.format_string("", q.format)));
        }
        fields(max, items)
    }

    /// formatString: quoted, cut to the verbosity budget; removed or inserted text of four
    /// or more lines as a triple-quoted block.
    fn format_string(&self, prefix: &str, s: &str) -> Text {
        let (max_len, max_lines) = if self.limit_verbosity {
            let v = self.verbosity();
            ((1usize << v) << 5, (1usize << v) << 2)
        } else {
            (s.len(), s.matches('\n').count() + 1)
        };
        let lines: Vec<&str> = s.strip_suffix('\n').unwrap_or(s).split('\n').collect();
        let mut triple = lines.len() >= 4 && (self.diff == REMOVED || self.diff == INSERTED);
        let mut cleaned = Vec::new();
        for l in &lines {
            if !triple {
                break;
            }
            let l = l.strip_suffix('\r').unwrap_or(l);
            let l = l.strip_prefix('\r').unwrap_or(l);
            triple = !l.strip_prefix(prefix).unwrap_or(l).starts_with("\"\"\"")
                && !l.starts_with("...")
                && l.chars().all(|c| is_print(c) || c == '\t')
                && l.len() <= max_len;
            cleaned.push(l);
        }
        if triple {
            let rec = |v: Text, comment: Option<Comment>| Record {
                diff: self.diff,
                key: String::new(),
                value: v,
                elide_comma: true,
                comment,
            };
            let mut list = vec![rec(line(format!("{prefix}\"\"\"")), None)];
            for (i, l) in cleaned.iter().enumerate() {
                let elided = cleaned.len() - i;
                if i + 1 == max_lines && elided > 1 {
                    list.push(rec(
                        line(ELLIPSIS),
                        Some(Comment::Text(format!("{elided} elided lines"))),
                    ));
                    break;
                }
                list.push(rec(line(*l), None));
            }
            list.push(rec(line(format!("{prefix}\"\"\"")), None));
            return wrap("(", Text::List(list), ")");
        }
        if s.len() > max_len + ELLIPSIS.len() {
            let mut cut = max_len;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            return line(format!("{prefix}{}{ELLIPSIS}", quote_or_raw(&s[..cut])));
        }
        line(format!("{prefix}{}", quote_or_raw(s)))
    }
}

fn same_text(a: &Option<Text>, b: &Option<Text>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.equal(b),
        _ => false,
    }
}

/// What a value's `String`/`Error` method returns, for the types ironkube models.
fn method_string(v: &GoValue) -> Option<String> {
    match v {
        GoValue::Str(s) => Some(s.clone()),
        GoValue::Quantity(q) => Some(q.string()),
        GoValue::Ptr(Some(inner)) => match inner.as_ref() {
            GoValue::Quantity(q) => Some(q.string()),
            _ => None,
        },
        _ => None,
    }
}

/// wrapParens: parentheses unless the node already has them or braces.
fn wrap_parens(s: Text) -> Text {
    if let Text::Wrap(w) = &s {
        let parens = w.prefix.starts_with('(') && w.suffix.ends_with(')');
        let braces = w.prefix.starts_with('{') && w.suffix.ends_with('}');
        if parens || braces {
            return s;
        }
    }
    wrap("(", s, ")")
}

/// formatMapKey: a key on one line, without its type.
fn format_map_key(key_ty: usize, k: &GoValue) -> String {
    let opts = Opts {
        diff: IDENTICAL,
        type_mode: TypeMode::Elide,
        avoid_stringer: false,
        verbosity_level: MAX_VERBOSITY_PRESET as i64,
        limit_verbosity: true,
    };
    opts.format_value(key_ty, Some(k), Some(GoKind::Map))
        .map(|t| t.flat().trim().to_string())
        .unwrap_or_default()
}

/// Go's unicode.IsPrint, near enough: graphic characters and the ASCII space.
fn is_print(c: char) -> bool {
    c == ' ' || !(c.is_control() || c.is_whitespace() || c == '\u{ad}' || c == '\u{feff}')
}

/// strconv.Quote.
fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\u{7}' => q.push_str("\\a"),
            '\u{8}' => q.push_str("\\b"),
            '\u{c}' => q.push_str("\\f"),
            '\n' => q.push_str("\\n"),
            '\r' => q.push_str("\\r"),
            '\t' => q.push_str("\\t"),
            '\u{b}' => q.push_str("\\v"),
            c if is_print(c) => q.push(c),
            c if (c as u32) < 0x80 => q.push_str(&format!("\\x{:02x}", c as u32)),
            c if (c as u32) < 0x10000 => q.push_str(&format!("\\u{:04x}", c as u32)),
            c => q.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    q.push('"');
    q
}

/// go-cmp's formatString: a quoted string, or a raw one when quoting would escape.
fn quote_or_raw(s: &str) -> String {
    let q = quote(s);
    if q.len() == s.len() + 2 {
        return q;
    }
    let raw_invalid = |c: char| c == '`' || c == '\n' || !(is_print(c) || c == '\t');
    if !s.chars().any(raw_invalid) {
        return format!("`{s}`");
    }
    q
}

/// coalesceAdjacentRecords: runs of equal and of differing records.
fn coalesce(name: &'static str, recs: &[(Key<'_>, Node<'_>)]) -> Vec<Stats> {
    let mut groups: Vec<Stats> = Vec::new();
    let mut prev = 0;
    for (_, r) in recs {
        let case = if r.num_diff == 0 { 1 } else { 2 };
        if prev != case {
            groups.push(Stats::named(name));
            prev = case;
        }
        let Some(g) = groups.last_mut() else { continue };
        if r.num_diff == 0 {
            g.identical += 1;
        } else if r.y.is_none() {
            g.removed += 1;
        } else if r.x.is_none() {
            g.inserted += 1;
        } else {
            g.modified += 1;
        }
    }
    groups
}
