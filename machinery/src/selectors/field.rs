//! Field selectors: upstream's `fields.ParseSelector` syntax and error messages, the
//! canonical rendering of `Selector.String()`, and matching against an object's
//! selectable fields.
//!
//! A selector is a comma-separated list of `field=value`, `field==value` or
//! `field!=value` terms. In a value, `\`, `,` and `=` must be escaped with a backslash;
//! the field name takes no escapes and ends at the first operator. Terms are kept in the
//! sorted order of their source text; no whitespace is trimmed.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::BuildHasher;
use std::str::FromStr;

use super::quote::go_quote;

/// How a term relates a field to its value; `==` parses as [`Operator::Equals`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    Equals,
    NotEquals,
}

impl Operator {
    /// Upstream's `selection.Operator` spelling: `=` or `!=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Equals => "=",
            Operator::NotEquals => "!=",
        }
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a field selector could not be parsed, or names a field the resource lacks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A term without `=`, `==` or `!=`.
    #[error("invalid selector: '{selector}'; can't understand '{term}'")]
    Malformed { selector: String, term: String },
    /// A backslash before anything but `\`, `,` or `=`, or at the end of a value.
    #[error("invalid field selector: invalid escape sequence: {0}")]
    InvalidEscape(String),
    /// An unescaped `=` (or `,`) inside a value. Upstream prints the character's code point
    /// (`61` for `=`), not the character.
    #[error("invalid field selector: unescaped character in value: {}", u32::from(*.0))]
    UnescapedCharacter(char),
    /// A field the resource does not offer for selection (a resource's own field-label
    /// conversion).
    #[error("field label not supported: {0}")]
    UnsupportedField(String),
    /// A field outside `metadata.name` and `metadata.namespace`, for resources that have no
    /// field-label conversion of their own.
    #[error(
        "{} is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
        go_quote(.0)
    )]
    UnknownField(String),
}

/// The selectable fields of an object, looked up by name.
pub trait Fields {
    /// The field's value, if the object has that field.
    fn field(&self, name: &str) -> Option<&str>;
}

impl Fields for BTreeMap<String, String> {
    fn field(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl<S: BuildHasher> Fields for HashMap<String, String, S> {
    fn field(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl Fields for [(&str, &str)] {
    fn field(&self, name: &str) -> Option<&str> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }
}

/// One term: `field=value` or `field!=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub field: String,
    pub operator: Operator,
    /// The unescaped value.
    pub value: String,
}

impl Requirement {
    /// Whether a field value satisfies this term; an absent field compares as `""`, as
    /// upstream's `fields.Set.Get` returns.
    pub fn matches_value(&self, actual: Option<&str>) -> bool {
        let equal = actual.unwrap_or("") == self.value;
        match self.operator {
            Operator::Equals => equal,
            Operator::NotEquals => !equal,
        }
    }
}

/// Upstream's term `String()`: the field, `=` or `!=`, and the escaped value.
impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}{}",
            self.field,
            self.operator,
            escape_value(&self.value)
        )
    }
}

/// A field selector: the AND of its terms. The default selector is empty and matches
/// everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

impl Selector {
    /// The selector that matches every object.
    pub fn everything() -> Self {
        Selector::default()
    }

    /// The one-term selector `field=value` (upstream's `OneTermEqualSelector`).
    pub fn equal(field: impl Into<String>, value: impl Into<String>) -> Self {
        Selector {
            requirements: vec![Requirement {
                field: field.into(),
                operator: Operator::Equals,
                value: value.into(),
            }],
        }
    }

    /// Parses a selector string as upstream's `fields.ParseSelector` does. Empty terms are
    /// skipped, and so are terms whose field and value are both empty (`=`, `==`, `!=`).
    pub fn parse(input: &str) -> Result<Self, Error> {
        let mut terms = split_terms(input);
        terms.sort_unstable();
        let mut requirements = Vec::new();
        for term in terms.into_iter().filter(|t| !t.is_empty()) {
            let Some((field, operator, raw_value)) = split_term(term) else {
                return Err(Error::Malformed {
                    selector: input.to_string(),
                    term: term.to_string(),
                });
            };
            let value = unescape_value(raw_value)?;
            if field.is_empty() && value.is_empty() {
                continue;
            }
            requirements.push(Requirement {
                field: field.to_string(),
                operator,
                value: value.into_owned(),
            });
        }
        Ok(Selector { requirements })
    }

    /// The terms, in the order they render.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether the selector restricts nothing.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether the object's selectable fields satisfy every term.
    pub fn matches<F: Fields + ?Sized>(&self, fields: &F) -> bool {
        self.requirements
            .iter()
            .all(|r| r.matches_value(fields.field(&r.field)))
    }

    /// Like [`Selector::matches`], looking each field up with a function.
    pub fn matches_with(&self, lookup: impl Fn(&str) -> Option<String>) -> bool {
        self.requirements
            .iter()
            .all(|r| r.matches_value(lookup(&r.field).as_deref()))
    }

    /// The value the first `field=value` term on `field` demands (upstream's
    /// `RequiresExactMatch`), used to narrow a list to one key such as `metadata.name`.
    pub fn exact_match(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.operator == Operator::Equals && r.field == field)
            .map(|r| r.value.as_str())
    }

    /// Rejects the first term naming a field outside `supported`, with the message of a
    /// resource's own field-label conversion: `field label not supported: <name>`.
    pub fn check_supported(&self, supported: &[&str]) -> Result<(), Error> {
        match self
            .requirements
            .iter()
            .find(|r| !supported.contains(&r.field.as_str()))
        {
            Some(r) => Err(Error::UnsupportedField(r.field.clone())),
            None => Ok(()),
        }
    }

    /// Rejects the first term naming a field other than `metadata.name` or
    /// `metadata.namespace`, with the message upstream gives for resources without a
    /// field-label conversion of their own.
    pub fn check_default_supported(&self) -> Result<(), Error> {
        match self
            .requirements
            .iter()
            .find(|r| !matches!(r.field.as_str(), "metadata.name" | "metadata.namespace"))
        {
            Some(r) => Err(Error::UnknownField(r.field.clone())),
            None => Ok(()),
        }
    }

    /// Rewrites every term's field and value (upstream's `Transform`, through which the API
    /// server applies a resource's field-label conversion); a term rewritten to an empty
    /// field and an empty value is dropped. Stops at the first error.
    pub fn transform<E>(
        &self,
        mut rewrite: impl FnMut(&str, &str) -> Result<(String, String), E>,
    ) -> Result<Selector, E> {
        let mut requirements = Vec::with_capacity(self.requirements.len());
        for r in &self.requirements {
            let (field, value) = rewrite(&r.field, &r.value)?;
            if field.is_empty() && value.is_empty() {
                continue;
            }
            requirements.push(Requirement {
                field,
                operator: r.operator,
                value,
            });
        }
        Ok(Selector { requirements })
    }
}

impl FromStr for Selector {
    type Err = Error;

    fn from_str(input: &str) -> Result<Self, Error> {
        Selector::parse(input)
    }
}

/// The canonical form, upstream's `String()`: terms joined by `,`, values escaped.
impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, requirement) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{requirement}")?;
        }
        Ok(())
    }
}

/// Escapes `\`, `,` and `=` with a backslash so any string can be a selector value.
pub fn escape_value(value: &str) -> Cow<'_, str> {
    if !value.contains(['\\', ',', '=']) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 4);
    for c in value.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    Cow::Owned(out)
}

/// Undoes [`escape_value`]; any other escape, a trailing backslash, or an unescaped `,`
/// or `=` is an error.
pub fn unescape_value(value: &str) -> Result<Cow<'_, str>, Error> {
    if !value.contains(['\\', ',', '=']) {
        return Ok(Cow::Borrowed(value));
    }
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(escaped @ ('\\' | ',' | '=')) => out.push(escaped),
                Some(other) => return Err(Error::InvalidEscape(format!("\\{other}"))),
                None => return Err(Error::InvalidEscape("\\".to_string())),
            },
            ',' | '=' => return Err(Error::UnescapedCharacter(c)),
            c => out.push(c),
        }
    }
    Ok(Cow::Owned(out))
}

/// Splits at commas not escaped by a backslash; the escapes stay in the terms.
fn split_terms(input: &str) -> Vec<&str> {
    if input.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in input.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' {
            terms.push(&input[start..i]);
            start = i + 1;
        }
    }
    terms.push(&input[start..]);
    terms
}

/// Splits a term at its first operator, trying `!=`, then `==`, then `=` at each position.
fn split_term(term: &str) -> Option<(&str, Operator, &str)> {
    term.char_indices().find_map(|(i, _)| {
        let rest = &term[i..];
        if let Some(value) = rest.strip_prefix("!=") {
            Some((&term[..i], Operator::NotEquals, value))
        } else if let Some(value) = rest.strip_prefix("==") {
            Some((&term[..i], Operator::Equals, value))
        } else {
            rest.strip_prefix('=')
                .map(|value| (&term[..i], Operator::Equals, value))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A term as `(field, operator, value)`.
    type Term<'a> = (&'a str, Operator, &'a str);

    fn terms(selector: &Selector) -> Vec<Term<'_>> {
        selector
            .requirements()
            .iter()
            .map(|r| (r.field.as_str(), r.operator, r.value.as_str()))
            .collect()
    }

    #[test]
    fn valid_selectors() {
        use Operator::{Equals as Eq, NotEquals as Ne};
        let cases: &[(&str, &str, &[Term])] = &[
            ("", "", &[]),
            (",", "", &[]),
            ("=", "", &[]),
            ("==,!=", "", &[]),
            ("a=b", "a=b", &[("a", Eq, "b")]),
            ("a==b", "a=b", &[("a", Eq, "b")]),
            ("a!=b", "a!=b", &[("a", Ne, "b")]),
            ("a=", "a=", &[("a", Eq, "")]),
            ("=x", "=x", &[("", Eq, "x")]),
            ("b=1,a=2", "a=2,b=1", &[("a", Eq, "2"), ("b", Eq, "1")]),
            ("a=b,,c=d", "a=b,c=d", &[("a", Eq, "b"), ("c", Eq, "d")]),
            (" a = b ", " a = b ", &[(" a ", Eq, " b ")]),
            (r"a=\,b", r"a=\,b", &[("a", Eq, ",b")]),
            (r"a=\=\\", r"a=\=\\", &[("a", Eq, r"=\")]),
            (
                r"a=x\,y,b=z",
                r"a=x\,y,b=z",
                &[("a", Eq, "x,y"), ("b", Eq, "z")],
            ),
            (r"a\b=c", r"a\b=c", &[(r"a\b", Eq, "c")]),
            ("a!b=c", "a!b=c", &[("a!b", Eq, "c")]),
            ("é=ü", "é=ü", &[("é", Eq, "ü")]),
            (
                "metadata.name=x,spec.nodeName!=",
                "metadata.name=x,spec.nodeName!=",
                &[("metadata.name", Eq, "x"), ("spec.nodeName", Ne, "")],
            ),
        ];
        for (input, rendered, want) in cases {
            let selector =
                Selector::parse(input).unwrap_or_else(|e| panic!("{input:?} failed: {e}"));
            assert_eq!(terms(&selector), *want, "terms of {input:?}");
            assert_eq!(selector.to_string(), *rendered, "rendering of {input:?}");
            assert_eq!(
                selector.is_empty(),
                want.is_empty(),
                "emptiness of {input:?}"
            );
            let again = Selector::parse(rendered).expect("the rendering parses");
            assert_eq!(again, selector, "round trip of {input:?}");
        }
    }

    #[test]
    fn double_equals_can_reorder_on_a_second_parse() {
        // Terms sort by their source text, and `==` renders as `=`.
        let first = Selector::parse("a==b,a=>").expect("parses");
        assert_eq!(first.to_string(), "a=b,a=>");
        let second = Selector::parse(&first.to_string()).expect("parses");
        assert_eq!(second.to_string(), "a=>,a=b");
    }

    #[test]
    fn invalid_selectors() {
        let cases = [
            ("foo", "invalid selector: 'foo'; can't understand 'foo'"),
            (
                "a=b,foo",
                "invalid selector: 'a=b,foo'; can't understand 'foo'",
            ),
            ("a!b", "invalid selector: 'a!b'; can't understand 'a!b'"),
            (
                r"a=b\",
                r"invalid field selector: invalid escape sequence: \",
            ),
            (
                r"a=\n",
                r"invalid field selector: invalid escape sequence: \n",
            ),
            (
                r"a=\é",
                r"invalid field selector: invalid escape sequence: \é",
            ),
            (
                "a=b=c",
                "invalid field selector: unescaped character in value: 61",
            ),
            (
                "a==b=c",
                "invalid field selector: unescaped character in value: 61",
            ),
            (
                "a!==b",
                "invalid field selector: unescaped character in value: 61",
            ),
            (
                r"a\=b=c",
                "invalid field selector: unescaped character in value: 61",
            ),
            // Terms are checked in sorted order, not in the order written.
            (
                r"x,foo=\q",
                r"invalid field selector: invalid escape sequence: \q",
            ),
        ];
        for (input, want) in cases {
            let err = Selector::parse(input).expect_err(input);
            assert_eq!(err.to_string(), want, "error for {input:?}");
        }
    }

    #[test]
    fn matching() {
        let fields = set(&[("a", "b"), ("metadata.name", "x"), ("empty", "")]);
        let cases = [
            ("", true),
            ("a=b", true),
            ("a==b", true),
            ("a=c", false),
            ("a!=b", false),
            ("a!=c", true),
            ("empty=", true),
            ("missing=", true),
            ("missing!=", false),
            ("missing=x", false),
            ("missing!=x", true),
            ("a=b,metadata.name=x", true),
            ("a=b,metadata.name!=x", false),
        ];
        for (input, want) in cases {
            let selector = Selector::parse(input).expect("parses");
            assert_eq!(selector.matches(&fields), want, "{input:?}");
            let hashed: HashMap<String, String> = fields.clone().into_iter().collect();
            assert_eq!(
                selector.matches(&hashed),
                want,
                "{input:?} against a HashMap"
            );
            let pairs: Vec<(&str, &str)> = fields
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            assert_eq!(
                selector.matches(pairs.as_slice()),
                want,
                "{input:?} against pairs"
            );
            assert_eq!(
                selector.matches_with(|name| fields.get(name).cloned()),
                want,
                "{input:?} through a lookup"
            );
        }
    }

    #[test]
    fn exact_match() {
        let selector = Selector::parse("a!=x,a=y,b==z,c!=w").expect("parses");
        let cases = [("a", Some("y")), ("b", Some("z")), ("c", None), ("d", None)];
        for (field, want) in cases {
            assert_eq!(selector.exact_match(field), want, "{field}");
        }
        assert_eq!(
            Selector::equal("metadata.name", "x").exact_match("metadata.name"),
            Some("x")
        );
    }

    #[test]
    fn supported_fields() {
        let selector = Selector::parse("metadata.name=x,spec.nodeName=n").expect("parses");
        assert_eq!(
            selector.check_supported(&["metadata.name", "spec.nodeName"]),
            Ok(())
        );
        assert_eq!(
            selector
                .check_supported(&["metadata.name"])
                .map_err(|e| e.to_string()),
            Err("field label not supported: spec.nodeName".to_string())
        );
        assert_eq!(
            selector
                .check_default_supported()
                .map_err(|e| e.to_string()),
            Err(
                "\"spec.nodeName\" is not a known field selector: only \"metadata.name\", \
                 \"metadata.namespace\""
                    .to_string()
            )
        );
        let metadata = Selector::parse("metadata.namespace!=a,metadata.name=b").expect("parses");
        assert_eq!(metadata.check_default_supported(), Ok(()));
        assert_eq!(Selector::everything().check_supported(&[]), Ok(()));
    }

    #[test]
    fn transform() {
        let selector = Selector::parse("spec.host=n,drop=me,keep!=v").expect("parses");
        let renamed = selector
            .transform(|field, value| -> Result<_, String> {
                Ok(match field {
                    "spec.host" => ("spec.nodeName".to_string(), value.to_string()),
                    "drop" => (String::new(), String::new()),
                    _ => (field.to_string(), value.to_string()),
                })
            })
            .expect("transforms");
        assert_eq!(renamed.to_string(), "keep!=v,spec.nodeName=n");
        let failed = selector.transform(|field, _| Err::<(String, String), _>(field.to_string()));
        assert_eq!(failed, Err("drop".to_string()));
    }

    #[test]
    fn escaping() {
        let cases = [
            ("", ""),
            ("plain", "plain"),
            (",", r"\,"),
            ("=", r"\="),
            (r"\", r"\\"),
            (r"a,b=c\d", r"a\,b\=c\\d"),
            ("é!", "é!"),
        ];
        for (raw, escaped) in cases {
            assert_eq!(escape_value(raw), escaped, "escaping {raw:?}");
            assert_eq!(
                unescape_value(escaped).as_deref(),
                Ok(raw),
                "unescaping {escaped:?}"
            );
        }
        assert_eq!(
            unescape_value("a,b").map_err(|e| e.to_string()),
            Err("invalid field selector: unescaped character in value: 44".to_string())
        );
    }

    /// A small deterministic generator (xorshift), for property tests without a dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }
    }

    const FIELDS: &[&str] = &["a", "b", "metadata.name", "spec.nodeName", "status.phase"];
    const PIECES: &[&str] = &["", "x", "y", ",", "=", "\\", "!", " ", "é", "=="];

    #[test]
    fn generated_selectors_parse_render_and_match_consistently() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for _ in 0..2000 {
            let mut written = Vec::new();
            let mut want = Vec::new();
            for _ in 0..rng.below(5) {
                let field = rng.pick(FIELDS);
                let value: String = (0..rng.below(4)).map(|_| rng.pick(PIECES)).collect();
                let (symbol, operator) = [
                    ("=", Operator::Equals),
                    ("==", Operator::Equals),
                    ("!=", Operator::NotEquals),
                ][rng.below(3)];
                written.push(format!("{field}{symbol}{}", escape_value(&value)));
                want.push((field.to_string(), operator, value));
            }
            let input = written.join(",");
            let selector =
                Selector::parse(&input).unwrap_or_else(|e| panic!("{input:?} failed: {e}"));

            let mut got: Vec<(String, Operator, String)> = selector
                .requirements()
                .iter()
                .map(|r| (r.field.clone(), r.operator, r.value.clone()))
                .collect();
            let by_text = |a: &(String, Operator, String), b: &(String, Operator, String)| {
                (&a.0, a.1.as_str(), &a.2).cmp(&(&b.0, b.1.as_str(), &b.2))
            };
            got.sort_by(by_text);
            want.sort_by(by_text);
            assert_eq!(got, want, "terms of {input:?}");

            // The rendering means the same, and is a fixed point from the second parse on.
            let second = Selector::parse(&selector.to_string()).expect("the rendering parses");
            let third = Selector::parse(&second.to_string()).expect("the rendering parses");
            assert_eq!(second, third, "rendering of {input:?}");

            for _ in 0..5 {
                let fields: BTreeMap<String, String> = (0..rng.below(4))
                    .map(|_| {
                        let value: String = (0..rng.below(3)).map(|_| rng.pick(PIECES)).collect();
                        (rng.pick(FIELDS).to_string(), value)
                    })
                    .collect();
                let expected = want.iter().all(|(field, operator, value)| {
                    let actual = fields.get(field).map_or("", String::as_str);
                    (actual == value) == (*operator == Operator::Equals)
                });
                assert_eq!(
                    selector.matches(&fields),
                    expected,
                    "{input:?} against {fields:?}"
                );
                assert_eq!(
                    second.matches(&fields),
                    expected,
                    "{input:?} rendered, against {fields:?}"
                );
            }
        }
    }
}
