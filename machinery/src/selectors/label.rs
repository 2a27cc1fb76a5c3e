//! Label selectors: upstream's `labels.Parse` grammar and error messages, the canonical
//! rendering of `Selector.String()`, matching, and conversion from `metav1.LabelSelector`.
//!
//! Grammar (whitespace between tokens is ignored):
//!
//! ```text
//! selector    := "" | requirement ("," requirement)*
//! requirement := ["!"] KEY [ ("in" | "notin") "(" VALUE ("," VALUE)* ")"
//!                          | ("=" | "==" | "!=" | ">" | "<") VALUE ]
//! ```
//!
//! Parsed requirements are kept sorted by key, and the values of each requirement are
//! sorted and de-duplicated, so two selectors meaning the same thing render the same.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::hash::BuildHasher;
use std::str::FromStr;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::Value;

use super::quote::go_quote;

/// Longest label value and longest name part of a label key.
const MAX_NAME_LENGTH: usize = 63;
/// Longest DNS-1123 subdomain (the optional prefix of a label key).
const MAX_SUBDOMAIN_LENGTH: usize = 253;

const QUALIFIED_NAME_FORMAT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_MESSAGE: &str = "must consist of alphanumeric characters, '-', '_' or '.', \
     and must start and end with an alphanumeric character";
const LABEL_VALUE_FORMAT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_MESSAGE: &str = "a valid label must be an empty string or consist of \
     alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const SUBDOMAIN_FORMAT: &str = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const SUBDOMAIN_MESSAGE: &str = "a lowercase RFC 1123 subdomain must consist of lower case \
     alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";

/// The binary operators, as upstream lists them when it meets something else.
const BINARY_OPERATORS: &str = "in, notin, =, ==, !=, gt, lt";

/// How a requirement relates a label to its values (upstream's `selection.Operator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    In,
    NotIn,
    Equals,
    DoubleEquals,
    NotEquals,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

impl Operator {
    /// Upstream's spelling of the operator (`in`, `notin`, `=`, `==`, `!=`, `exists`, `!`,
    /// `gt`, `lt`).
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::In => "in",
            Operator::NotIn => "notin",
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::Exists => "exists",
            Operator::DoesNotExist => "!",
            Operator::GreaterThan => "gt",
            Operator::LessThan => "lt",
        }
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a label selector could not be parsed or built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A token out of place between requirements.
    #[error("found '{found}', expected: {expected}")]
    Unexpected {
        found: String,
        expected: &'static str,
    },
    /// A requirement of a parsed selector is malformed or invalid.
    #[error("unable to parse requirement: {0}")]
    Requirement(#[source] RequirementError),
    /// A `matchExpressions` operator other than In, NotIn, Exists and DoesNotExist.
    #[error("{} is not a valid label selector operator", go_quote(.0))]
    UnknownOperator(String),
    /// A requirement built from a `metav1.LabelSelector` is invalid.
    #[error(transparent)]
    Invalid(#[from] InvalidRequirement),
}

/// Why one requirement of a selector string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequirementError {
    #[error("found '{found}', expected: {expected}")]
    Unexpected {
        found: String,
        expected: &'static str,
    },
    /// Upstream's message lacks the comma the others have.
    #[error("found '{found}' expected: '('")]
    ExpectedOpenParen { found: String },
    #[error(transparent)]
    Invalid(#[from] InvalidRequirement),
}

/// One `Invalid value` field error: `values[0][app]: Invalid value: "-x": <detail>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidValue {
    /// The field path; `<nil>` for a key rejected while parsing, as upstream prints it.
    pub field: String,
    /// The bad value as Go prints it (`"x"`, `[]string{"a", "b"}`, `[]string(nil)`).
    pub value: String,
    pub detail: String,
}

impl fmt::Display for InvalidValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: Invalid value: {}: {}",
            self.field, self.value, self.detail
        )
    }
}

/// The validation failures of one requirement, rendered as upstream's aggregate error:
/// one failure alone, several as `[a, b]`; repeated messages appear once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render_aggregate(.errors))]
pub struct InvalidRequirement {
    pub errors: Vec<InvalidValue>,
}

impl InvalidRequirement {
    fn new(errors: Vec<InvalidValue>) -> Self {
        let mut seen = BTreeSet::new();
        let errors = errors
            .into_iter()
            .filter(|e| seen.insert(e.to_string()))
            .collect();
        InvalidRequirement { errors }
    }
}

fn render_aggregate(errors: &[InvalidValue]) -> String {
    match errors {
        [one] => one.to_string(),
        many => {
            let parts: Vec<String> = many.iter().map(ToString::to_string).collect();
            format!("[{}]", parts.join(", "))
        }
    }
}

/// A set of labels a selector can be matched against.
pub trait Labels {
    /// The value of `key`, if the label is set.
    fn label(&self, key: &str) -> Option<&str>;
}

impl Labels for BTreeMap<String, String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl<S: BuildHasher> Labels for HashMap<String, String, S> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

/// A JSON `metadata.labels` object; a non-string value counts as unset.
impl Labels for serde_json::Map<String, Value> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }
}

/// One condition on one label key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

impl Requirement {
    /// Checks and builds a requirement as upstream's `NewRequirement` does: the key must be
    /// a qualified name, every value a label value, `in`/`notin` need at least one value,
    /// the equality operators and `gt`/`lt` exactly one (an integer for `gt`/`lt`), and
    /// `exists`/`!` none. Values are kept in the order given.
    pub fn new(
        key: impl Into<String>,
        operator: Operator,
        values: Vec<String>,
    ) -> Result<Self, InvalidRequirement> {
        let key = key.into();
        let mut errors = Vec::new();
        if let Err(detail) = validate_key(&key) {
            errors.push(InvalidValue {
                field: "key".to_string(),
                value: go_quote(&key),
                detail,
            });
        }
        let whole_set = |detail: &str| InvalidValue {
            field: "values".to_string(),
            value: go_string_slice(&values),
            detail: detail.to_string(),
        };
        match operator {
            Operator::In | Operator::NotIn if values.is_empty() => errors.push(whole_set(
                "for 'in', 'notin' operators, values set can't be empty",
            )),
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals
                if values.len() != 1 =>
            {
                errors.push(whole_set(
                    "exact-match compatibility requires one single value",
                ))
            }
            Operator::Exists | Operator::DoesNotExist if !values.is_empty() => errors.push(
                whole_set("values set must be empty for exists and does not exist"),
            ),
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    errors.push(whole_set(
                        "for 'Gt', 'Lt' operators, exactly one value is required",
                    ));
                }
                for (i, value) in values.iter().enumerate() {
                    if value.parse::<i64>().is_err() {
                        errors.push(InvalidValue {
                            field: format!("values[{i}]"),
                            value: go_quote(value),
                            detail: "for 'Gt', 'Lt' operators, the value must be an integer"
                                .to_string(),
                        });
                    }
                }
            }
            _ => {}
        }
        for (i, value) in values.iter().enumerate() {
            if let Err(detail) = validate_value(value) {
                errors.push(InvalidValue {
                    field: format!("values[{i}][{key}]"),
                    value: go_quote(value),
                    detail,
                });
            }
        }
        if errors.is_empty() {
            Ok(Requirement {
                key,
                operator,
                values,
            })
        } else {
            Err(InvalidRequirement::new(errors))
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The values in the order the requirement was built with (sorted and de-duplicated
    /// for a parsed selector).
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Whether the labels satisfy this requirement. A missing key satisfies only `notin`,
    /// `!=` and `!`; `gt`/`lt` fail on a value that is not an integer.
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        let value = labels.label(&self.key);
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => {
                value.is_some_and(|v| self.has_value(v))
            }
            Operator::NotIn | Operator::NotEquals => value.is_none_or(|v| !self.has_value(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let (Some(actual), [bound]) = (value, self.values.as_slice()) else {
                    return false;
                };
                let (Ok(actual), Ok(bound)) = (actual.parse::<i64>(), bound.parse::<i64>()) else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    actual > bound
                } else {
                    actual < bound
                }
            }
        }
    }

    fn has_value(&self, value: &str) -> bool {
        self.values.iter().any(|v| v == value)
    }
}

/// Upstream's `Requirement.String()`: `key=v`, `key!=v`, `key in (a,b)`, `!key`, `key>3`.
impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let (before, after) = match self.operator {
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
            Operator::Equals => ("=", ""),
            Operator::DoubleEquals => ("==", ""),
            Operator::NotEquals => ("!=", ""),
            Operator::GreaterThan => (">", ""),
            Operator::LessThan => ("<", ""),
            Operator::In => (" in (", ")"),
            Operator::NotIn => (" notin (", ")"),
        };
        f.write_str(before)?;
        let mut values: Vec<&str> = self.values.iter().map(String::as_str).collect();
        values.sort_unstable();
        f.write_str(&values.join(","))?;
        f.write_str(after)
    }
}

/// A label selector: the AND of its requirements, kept sorted by key.
///
/// The default selector is empty and matches everything; [`Selector::nothing`] (what a
/// missing `metav1.LabelSelector` converts to) matches nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    requirements: Vec<Requirement>,
    matches_nothing: bool,
}

impl Selector {
    /// The selector that matches every object.
    pub fn everything() -> Self {
        Selector::default()
    }

    /// The selector that matches no object; it renders as the empty string.
    pub fn nothing() -> Self {
        Selector {
            requirements: Vec::new(),
            matches_nothing: true,
        }
    }

    /// Parses a selector string as upstream's `labels.Parse` does.
    pub fn parse(input: &str) -> Result<Self, Error> {
        let mut requirements = Parser::new(input).parse()?;
        // Stable, so requirements on one key keep their written order (upstream's sort is
        // stable only up to 12 requirements).
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Selector {
            requirements,
            matches_nothing: false,
        })
    }

    /// A selector requiring every label of `set` (upstream's `SelectorFromSet`); like
    /// upstream, the keys and values are not validated.
    pub fn from_set(set: &BTreeMap<String, String>) -> Self {
        let requirements = set
            .iter()
            .map(|(key, value)| Requirement {
                key: key.clone(),
                operator: Operator::Equals,
                values: vec![value.clone()],
            })
            .collect();
        Selector {
            requirements,
            matches_nothing: false,
        }
    }

    /// Upstream's `LabelSelectorAsSelector`: no selector matches nothing, an empty one
    /// matches everything.
    pub fn from_label_selector(selector: Option<&LabelSelector>) -> Result<Self, Error> {
        let Some(selector) = selector else {
            return Ok(Selector::nothing());
        };
        let mut requirements = Vec::new();
        for (key, value) in selector.match_labels.iter().flatten() {
            requirements.push(Requirement::new(
                key.clone(),
                Operator::Equals,
                vec![value.clone()],
            )?);
        }
        for expression in selector.match_expressions.iter().flatten() {
            let operator = match expression.operator.as_str() {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => return Err(Error::UnknownOperator(other.to_string())),
            };
            let values = expression.values.clone().unwrap_or_default();
            requirements.push(Requirement::new(expression.key.clone(), operator, values)?);
        }
        let mut selector = Selector::everything();
        selector.extend(requirements);
        Ok(selector)
    }

    /// Adds requirements, keeping them sorted by key (upstream's `Add`). Adding to the
    /// selector that matches nothing leaves it unchanged.
    pub fn extend(&mut self, requirements: impl IntoIterator<Item = Requirement>) {
        if self.matches_nothing {
            return;
        }
        self.requirements.extend(requirements);
        self.requirements.sort_by(|a, b| a.key.cmp(&b.key));
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether the selector restricts nothing (the selector matching nothing is not empty).
    pub fn is_empty(&self) -> bool {
        !self.matches_nothing && self.requirements.is_empty()
    }

    /// Whether this is the selector that matches nothing.
    pub fn matches_nothing(&self) -> bool {
        self.matches_nothing
    }

    /// Whether the labels satisfy every requirement.
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        !self.matches_nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Matches a JSON `metadata.labels` value; a missing or non-object value has no labels.
    pub fn matches_json(&self, labels: Option<&Value>) -> bool {
        match labels.and_then(Value::as_object) {
            Some(map) => self.matches(map),
            None => self.matches(&serde_json::Map::new()),
        }
    }

    /// The single value the selector demands for `key` (`key=v`, `key==v` or `key in (v)`),
    /// judged by the first requirement on that key, as upstream's `RequiresExactMatch`.
    pub fn requires_exact_match(&self, key: &str) -> Option<&str> {
        let requirement = self.requirements.iter().find(|r| r.key == key)?;
        match (requirement.operator, requirement.values.as_slice()) {
            (Operator::Equals | Operator::DoubleEquals | Operator::In, [value]) => Some(value),
            _ => None,
        }
    }
}

impl FromStr for Selector {
    type Err = Error;

    fn from_str(input: &str) -> Result<Self, Error> {
        Selector::parse(input)
    }
}

impl TryFrom<&LabelSelector> for Selector {
    type Error = Error;

    fn try_from(selector: &LabelSelector) -> Result<Self, Error> {
        Selector::from_label_selector(Some(selector))
    }
}

/// The canonical form, upstream's `String()`: requirements joined by `,` without spaces.
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

/// Upstream's `IsQualifiedName`, its messages joined by `; `.
fn validate_key(key: &str) -> Result<(), String> {
    let mut errors = Vec::new();
    let parts: Vec<&str> = key.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errors.push("prefix part must be non-empty".to_string());
            } else {
                for message in validate_subdomain(prefix) {
                    errors.push(format!("prefix part {message}"));
                }
            }
            *name
        }
        _ => {
            return Err(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' \
                 (e.g. 'example.com/MyName')",
                regex_error(
                    QUALIFIED_NAME_MESSAGE,
                    QUALIFIED_NAME_FORMAT,
                    &["MyName", "my.name", "123-abc"]
                )
            ));
        }
    };
    if name.is_empty() {
        errors.push("name part must be non-empty".to_string());
    } else if name.len() > MAX_NAME_LENGTH {
        errors.push(format!("name part {}", max_length_error(MAX_NAME_LENGTH)));
    }
    if !is_qualified_name(name) {
        errors.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_MESSAGE,
                QUALIFIED_NAME_FORMAT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// Upstream's `IsValidLabelValue`, its messages joined by `; `.
fn validate_value(value: &str) -> Result<(), String> {
    let mut errors = Vec::new();
    if value.len() > MAX_NAME_LENGTH {
        errors.push(max_length_error(MAX_NAME_LENGTH));
    }
    if !value.is_empty() && !is_qualified_name(value) {
        errors.push(regex_error(
            LABEL_VALUE_MESSAGE,
            LABEL_VALUE_FORMAT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// Upstream's `IsDNS1123Subdomain`.
fn validate_subdomain(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > MAX_SUBDOMAIN_LENGTH {
        errors.push(max_length_error(MAX_SUBDOMAIN_LENGTH));
    }
    let is_label = |label: &str| {
        let alphanumeric = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        let bytes = label.as_bytes();
        bytes.first().is_some_and(alphanumeric)
            && bytes.last().is_some_and(alphanumeric)
            && bytes.iter().all(|b| alphanumeric(b) || *b == b'-')
    };
    if !value.split('.').all(is_label) {
        errors.push(regex_error(
            SUBDOMAIN_MESSAGE,
            SUBDOMAIN_FORMAT,
            &["example.com"],
        ));
    }
    errors
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, anchored at both ends.
fn is_qualified_name(value: &str) -> bool {
    let bytes = value.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    first.is_ascii_alphanumeric()
        && last.is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn max_length_error(length: usize) -> String {
    format!("must be no more than {length} characters")
}

/// Upstream's `RegexError`, double spaces included.
fn regex_error(message: &str, format: &str, examples: &[&str]) -> String {
    let examples: Vec<String> = examples.iter().map(|e| format!("'{e}', ")).collect();
    format!(
        "{message} (e.g. {}regex used for validation is '{format}')",
        examples.join(" or ")
    )
}

/// A `[]string` as Go's `%#v` prints it; an empty list prints as the nil slice that
/// `LabelSelectorAsSelector` passes.
fn go_string_slice(values: &[String]) -> String {
    if values.is_empty() {
        return "[]string(nil)".to_string();
    }
    let quoted: Vec<String> = values.iter().map(|v| go_quote(v)).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

/// Where the parser is: `in` and `notin` are operators only right after a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

/// Splits the input into tokens. Like upstream's lexer, which reads a NUL byte as the end
/// of the input, a NUL ends the token before it and is then skipped, and a NUL where a
/// token would start ends the input.
fn tokenize(input: &str) -> Vec<(Token, &str)> {
    let bytes = input.as_bytes();
    let mut pos = 0;
    let mut tokens = Vec::new();
    // After a token, a NUL right behind it is swallowed.
    let skip_nul = |pos: usize| {
        if bytes.get(pos) == Some(&0) {
            pos + 1
        } else {
            pos
        }
    };
    loop {
        while bytes.get(pos).is_some_and(|&b| is_whitespace(b)) {
            pos += 1;
        }
        let Some(&first) = bytes.get(pos).filter(|&&b| b != 0) else {
            tokens.push((Token::EndOfString, ""));
            return tokens;
        };
        let start = pos;
        let token = if is_special(first) {
            let two = bytes.get(pos + 1) == Some(&b'=') && matches!(first, b'=' | b'!');
            pos += if two { 2 } else { 1 };
            match (first, two) {
                (b'=', true) => Token::DoubleEquals,
                (b'!', true) => Token::NotEquals,
                (b'=', false) => Token::Equals,
                (b'!', false) => Token::DoesNotExist,
                (b'(', _) => Token::OpenPar,
                (b')', _) => Token::ClosedPar,
                (b',', _) => Token::Comma,
                (b'>', _) => Token::GreaterThan,
                _ => Token::LessThan,
            }
        } else {
            while bytes
                .get(pos)
                .is_some_and(|&b| b != 0 && !is_special(b) && !is_whitespace(b))
            {
                pos += 1;
            }
            match &input[start..pos] {
                "in" => Token::In,
                "notin" => Token::NotIn,
                _ => Token::Identifier,
            }
        };
        tokens.push((token, &input[start..pos]));
        pos = skip_nul(pos);
    }
}

/// A recursive-descent parser over the token list, one token of look-ahead.
struct Parser<'a> {
    tokens: Vec<(Token, &'a str)>,
    position: usize,
}

impl<'a> Parser<'a> {
    fn new(input: &'a str) -> Self {
        Parser {
            tokens: tokenize(input),
            position: 0,
        }
    }

    fn lookahead(&self, context: Context) -> (Token, &'a str) {
        let last = self.tokens.len() - 1;
        let (token, literal) = self.tokens[self.position.min(last)];
        match (context, token) {
            (Context::Values, Token::In | Token::NotIn) => (Token::Identifier, literal),
            _ => (token, literal),
        }
    }

    fn consume(&mut self, context: Context) -> (Token, &'a str) {
        let item = self.lookahead(context);
        self.position += 1;
        item
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, Error> {
        let mut requirements = Vec::new();
        loop {
            let (token, literal) = self.lookahead(Context::Values);
            match token {
                Token::Identifier | Token::DoesNotExist => {
                    requirements.push(self.parse_requirement().map_err(Error::Requirement)?);
                    let (token, literal) = self.consume(Context::Values);
                    match token {
                        Token::EndOfString => return Ok(requirements),
                        Token::Comma => {
                            let (next, literal) = self.lookahead(Context::Values);
                            if !matches!(next, Token::Identifier | Token::DoesNotExist) {
                                return Err(Error::Unexpected {
                                    found: literal.to_string(),
                                    expected: "identifier after ','",
                                });
                            }
                        }
                        _ => {
                            return Err(Error::Unexpected {
                                found: literal.to_string(),
                                expected: "',' or 'end of string'",
                            });
                        }
                    }
                }
                Token::EndOfString => return Ok(requirements),
                _ => {
                    return Err(Error::Unexpected {
                        found: literal.to_string(),
                        expected: "!, identifier, or 'end of string'",
                    });
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, RequirementError> {
        let (key, inferred) = self.parse_key_and_infer_operator()?;
        if let Some(operator) = inferred {
            return Ok(Requirement::new(key, operator, Vec::new())?);
        }
        let operator = self.parse_operator()?;
        let values = match operator {
            Operator::In | Operator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        let values = values.into_iter().map(str::to_string).collect();
        Ok(Requirement::new(key, operator, values)?)
    }

    /// Reads `[!]key`; a key followed by `,` or the end means `exists` (or `!`).
    fn parse_key_and_infer_operator(
        &mut self,
    ) -> Result<(&'a str, Option<Operator>), RequirementError> {
        let mut operator = None;
        let (mut token, mut literal) = self.consume(Context::Values);
        if token == Token::DoesNotExist {
            operator = Some(Operator::DoesNotExist);
            (token, literal) = self.consume(Context::Values);
        }
        if token != Token::Identifier {
            return Err(RequirementError::Unexpected {
                found: literal.to_string(),
                expected: "identifier",
            });
        }
        if let Err(detail) = validate_key(literal) {
            // Upstream validates the key here with a nil field path, which prints as `<nil>`.
            return Err(InvalidRequirement::new(vec![InvalidValue {
                field: "<nil>".to_string(),
                value: go_quote(literal),
                detail,
            }])
            .into());
        }
        let (next, _) = self.lookahead(Context::Values);
        if operator.is_none() && matches!(next, Token::EndOfString | Token::Comma) {
            operator = Some(Operator::Exists);
        }
        Ok((literal, operator))
    }

    fn parse_operator(&mut self) -> Result<Operator, RequirementError> {
        let (token, literal) = self.consume(Context::KeyAndOperator);
        Ok(match token {
            Token::In => Operator::In,
            Token::NotIn => Operator::NotIn,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::NotEquals => Operator::NotEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            _ => {
                return Err(RequirementError::Unexpected {
                    found: literal.to_string(),
                    expected: BINARY_OPERATORS,
                });
            }
        })
    }

    /// Reads `(a,b,...)`; empty members (`()`, `(a,)`, `(,a)`, `(a,,b)`) stand for `""`.
    fn parse_values(&mut self) -> Result<BTreeSet<&'a str>, RequirementError> {
        let (token, literal) = self.consume(Context::Values);
        if token != Token::OpenPar {
            return Err(RequirementError::ExpectedOpenParen {
                found: literal.to_string(),
            });
        }
        let (token, literal) = self.lookahead(Context::Values);
        match token {
            Token::Identifier | Token::Comma => {
                let values = self.parse_identifiers_list()?;
                // The list ends only on a `)`, which is still to be consumed.
                let (token, _) = self.consume(Context::Values);
                if token != Token::ClosedPar {
                    return Err(RequirementError::Unexpected {
                        found: literal.to_string(),
                        expected: "')'",
                    });
                }
                Ok(values)
            }
            Token::ClosedPar => {
                self.consume(Context::Values);
                Ok(BTreeSet::from([""]))
            }
            _ => Err(RequirementError::Unexpected {
                found: literal.to_string(),
                expected: "',', ')' or identifier",
            }),
        }
    }

    fn parse_identifiers_list(&mut self) -> Result<BTreeSet<&'a str>, RequirementError> {
        let mut values = BTreeSet::new();
        loop {
            let (token, literal) = self.consume(Context::Values);
            match token {
                Token::Identifier => {
                    values.insert(literal);
                    let (next, literal) = self.lookahead(Context::Values);
                    match next {
                        Token::Comma => {}
                        Token::ClosedPar => return Ok(values),
                        _ => {
                            return Err(RequirementError::Unexpected {
                                found: literal.to_string(),
                                expected: "',' or ')'",
                            });
                        }
                    }
                }
                Token::Comma => {
                    if values.is_empty() {
                        values.insert("");
                    }
                    match self.lookahead(Context::Values).0 {
                        Token::ClosedPar => {
                            values.insert("");
                            return Ok(values);
                        }
                        Token::Comma => {
                            self.consume(Context::Values);
                            values.insert("");
                        }
                        _ => {}
                    }
                }
                _ => {
                    return Err(RequirementError::Unexpected {
                        found: literal.to_string(),
                        expected: "',', or identifier",
                    });
                }
            }
        }
    }

    /// Reads the value after `=`, `==`, `!=`, `>` or `<`; none (`a=`, `a=,b`) means `""`.
    fn parse_exact_value(&mut self) -> Result<BTreeSet<&'a str>, RequirementError> {
        if matches!(
            self.lookahead(Context::Values).0,
            Token::EndOfString | Token::Comma
        ) {
            return Ok(BTreeSet::from([""]));
        }
        match self.consume(Context::Values) {
            (Token::Identifier, literal) => Ok(BTreeSet::from([literal])),
            (_, literal) => Err(RequirementError::Unexpected {
                found: literal.to_string(),
                expected: "identifier",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
    use serde_json::json;

    const VALUE_RULE: &str = "a valid label must be an empty string or consist of alphanumeric \
        characters, '-', '_' or '.', and must start and end with an alphanumeric character \
        (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is \
        '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
    const NAME_RULE: &str = "must consist of alphanumeric characters, '-', '_' or '.', and \
        must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or \
        '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
    const SUBDOMAIN_RULE: &str = "a lowercase RFC 1123 subdomain must consist of lower case \
        alphanumeric characters, '-' or '.', and must start and end with an alphanumeric \
        character (e.g. 'example.com', regex used for validation is \
        '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
    const INTEGER_RULE: &str = "for 'Gt', 'Lt' operators, the value must be an integer";

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn parse_err(input: &str) -> String {
        match Selector::parse(input) {
            Ok(s) => panic!("{input:?} parsed as {s}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn valid_selectors_render_canonically() {
        let cases = [
            ("", ""),
            ("   ", ""),
            ("x=a,y=b,z=c", "x=a,y=b,z=c"),
            ("z=c,x=a", "x=a,z=c"),
            ("x!=a,y=b", "x!=a,y=b"),
            ("x==a", "x==a"),
            ("x=", "x="),
            ("x= ", "x="),
            ("x=,z= ", "x=,z="),
            ("x= ,z= ", "x=,z="),
            ("!x", "!x"),
            ("! x", "!x"),
            ("x", "x"),
            ("a,b", "a,b"),
            ("b,!a", "!a,b"),
            ("x>1", "x>1"),
            ("x>1,z<5", "x>1,z<5"),
            ("x>007", "x>007"),
            ("x in (a)", "x in (a)"),
            (" x  in ( b , a , a ) ", "x in (a,b)"),
            ("x\tnotin\n(b,a)", "x notin (a,b)"),
            ("x in ()", "x in ()"),
            ("x in (,a)", "x in (,a)"),
            ("x in (a,)", "x in (,a)"),
            ("x in (a,,b)", "x in (,a,b)"),
            ("x in (,)", "x in ()"),
            ("in in (in,notin)", "in in (in,notin)"),
            ("notin=in", "notin=in"),
            ("in", "in"),
            ("example.com/app==web", "example.com/app==web"),
            ("a=b,a=c", "a=b,a=c"),
            ("x=a,x!=b", "x=a,x!=b"),
            ("k=v1.2_3-4", "k=v1.2_3-4"),
            ("a\0", "a"),
            ("a=b\0", "a=b"),
            ("a,\0b", "a,b"),
            ("a=\0b", "a=b"),
            ("x in (a,,,)", "x in (,a)"),
        ];
        for (input, want) in cases {
            let selector =
                Selector::parse(input).unwrap_or_else(|e| panic!("{input:?} failed to parse: {e}"));
            assert_eq!(selector.to_string(), want, "rendering of {input:?}");
            let again = Selector::parse(want).expect("canonical form parses");
            assert_eq!(again, selector, "round trip of {input:?}");
        }
    }

    #[test]
    fn invalid_selectors_fail_with_upstream_messages() {
        let long = "a".repeat(64);
        let cases: Vec<(String, String)> = vec![
            (
                "app=-x".into(),
                format!(
                    "unable to parse requirement: values[0][app]: Invalid value: \"-x\": {VALUE_RULE}"
                ),
            ),
            (
                "x=a||y=b".into(),
                format!(
                    "unable to parse requirement: values[0][x]: Invalid value: \"a||y\": {VALUE_RULE}"
                ),
            ),
            (
                "x==a==b".into(),
                "found '==', expected: ',' or 'end of string'".into(),
            ),
            (
                "!x=a".into(),
                "found '=', expected: ',' or 'end of string'".into(),
            ),
            (
                "a=b c".into(),
                "found 'c', expected: ',' or 'end of string'".into(),
            ),
            (
                "x<a".into(),
                format!("unable to parse requirement: values[0]: Invalid value: \"a\": {INTEGER_RULE}"),
            ),
            (
                "x>".into(),
                format!("unable to parse requirement: values[0]: Invalid value: \"\": {INTEGER_RULE}"),
            ),
            (
                "x>99999999999999999999".into(),
                format!(
                    "unable to parse requirement: values[0]: Invalid value: \
                     \"99999999999999999999\": {INTEGER_RULE}"
                ),
            ),
            (
                "x>-1".into(),
                format!(
                    "unable to parse requirement: values[0][x]: Invalid value: \"-1\": {VALUE_RULE}"
                ),
            ),
            (
                "x>a_".into(),
                format!(
                    "unable to parse requirement: [values[0]: Invalid value: \"a_\": {INTEGER_RULE}, \
                     values[0][x]: Invalid value: \"a_\": {VALUE_RULE}]"
                ),
            ),
            (
                "-x=a".into(),
                format!("unable to parse requirement: <nil>: Invalid value: \"-x\": name part {NAME_RULE}"),
            ),
            (
                "a/b/c".into(),
                format!(
                    "unable to parse requirement: <nil>: Invalid value: \"a/b/c\": a qualified name \
                     {NAME_RULE} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
                ),
            ),
            (
                "/a".into(),
                "unable to parse requirement: <nil>: Invalid value: \"/a\": prefix part must be non-empty"
                    .into(),
            ),
            (
                "Example.com/a".into(),
                format!(
                    "unable to parse requirement: <nil>: Invalid value: \"Example.com/a\": \
                     prefix part {SUBDOMAIN_RULE}"
                ),
            ),
            (
                "a/".into(),
                format!(
                    "unable to parse requirement: <nil>: Invalid value: \"a/\": \
                     name part must be non-empty; name part {NAME_RULE}"
                ),
            ),
            (
                format!("{long}=x"),
                format!(
                    "unable to parse requirement: <nil>: Invalid value: \"{long}\": \
                     name part must be no more than 63 characters"
                ),
            ),
            (
                format!("x={long}"),
                format!(
                    "unable to parse requirement: values[0][x]: Invalid value: \"{long}\": \
                     must be no more than 63 characters"
                ),
            ),
            (
                format!("x=-{long}"),
                format!(
                    "unable to parse requirement: values[0][x]: Invalid value: \"-{long}\": \
                     must be no more than 63 characters; {VALUE_RULE}"
                ),
            ),
            (
                "x in (a".into(),
                "unable to parse requirement: found '', expected: ',' or ')'".into(),
            ),
            (
                "x in (a b)".into(),
                "unable to parse requirement: found 'b', expected: ',' or ')'".into(),
            ),
            (
                "x in a".into(),
                "unable to parse requirement: found 'a' expected: '('".into(),
            ),
            (
                "x in (=)".into(),
                "unable to parse requirement: found '=', expected: ',', ')' or identifier".into(),
            ),
            (
                "x in (a,=)".into(),
                "unable to parse requirement: found '=', expected: ',', or identifier".into(),
            ),
            (
                "x=(".into(),
                "unable to parse requirement: found '(', expected: identifier".into(),
            ),
            (
                "x y".into(),
                "unable to parse requirement: found 'y', expected: in, notin, =, ==, !=, gt, lt"
                    .into(),
            ),
            (
                "x(".into(),
                "unable to parse requirement: found '(', expected: in, notin, =, ==, !=, gt, lt"
                    .into(),
            ),
            (
                "!".into(),
                "unable to parse requirement: found '', expected: identifier".into(),
            ),
            (
                "!!x".into(),
                "unable to parse requirement: found '!', expected: identifier".into(),
            ),
            (
                ",x".into(),
                "found ',', expected: !, identifier, or 'end of string'".into(),
            ),
            (
                "!=a".into(),
                "found '!=', expected: !, identifier, or 'end of string'".into(),
            ),
            (
                "x,".into(),
                "found '', expected: identifier after ','".into(),
            ),
            (
                "x,,y".into(),
                "found ',', expected: identifier after ','".into(),
            ),
            // A NUL ends the token before it; where a token would start, it ends the input.
            (
                "a\0b".into(),
                "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"
                    .into(),
            ),
            (
                "a, \0b".into(),
                "found '', expected: identifier after ','".into(),
            ),
            // Upstream accepts `(a,,b)` and `(a,,,)` but not `(a,,)`.
            (
                "x in (a,,)".into(),
                "unable to parse requirement: found ')', expected: ',', or identifier".into(),
            ),
            (
                "x in (,,)".into(),
                "unable to parse requirement: found ')', expected: ',', or identifier".into(),
            ),
            (
                "a=\"".into(),
                format!(
                    "unable to parse requirement: values[0][a]: Invalid value: \"\\\"\": {VALUE_RULE}"
                ),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(parse_err(&input), want, "error for {input:?}");
        }
    }

    #[test]
    fn parsed_values_are_sorted_and_deduplicated() {
        let selector = Selector::parse("x in (c,a,c,b)").expect("parses");
        let [requirement] = selector.requirements() else {
            panic!("one requirement expected");
        };
        assert_eq!(requirement.key(), "x");
        assert_eq!(requirement.operator(), Operator::In);
        assert_eq!(requirement.values(), ["a", "b", "c"]);
    }

    #[test]
    fn matching() {
        let set = labels(&[("a", "1"), ("b", "x"), ("e", "")]);
        let cases = [
            ("", true),
            ("a", true),
            ("!a", false),
            ("c", false),
            ("!c", true),
            ("a=1", true),
            ("a==1", true),
            ("a=2", false),
            ("a!=1", false),
            ("a!=2", true),
            ("c!=1", true),
            ("c=", false),
            ("e=", true),
            ("e in ()", true),
            ("a in ()", false),
            ("a in (1,2)", true),
            ("a in (2,3)", false),
            ("c in (1)", false),
            ("a notin (1)", false),
            ("a notin (2)", true),
            ("c notin (1)", true),
            ("a>0", true),
            ("a>1", false),
            ("a<2", true),
            ("a<1", false),
            ("b>0", false),
            ("b<0", false),
            ("c>0", false),
            ("c<0", false),
            ("a=1,b=x", true),
            ("a=1,b=y", false),
            ("a,!c,b in (x,y),e notin (z)", true),
        ];
        for (input, want) in cases {
            let selector = Selector::parse(input).expect("parses");
            assert_eq!(selector.matches(&set), want, "{input:?} against {set:?}");
            let hashed: HashMap<String, String> = set.clone().into_iter().collect();
            assert_eq!(
                selector.matches(&hashed),
                want,
                "{input:?} against a HashMap"
            );
            let json = serde_json::to_value(&set).expect("serializes");
            assert_eq!(
                selector.matches_json(Some(&json)),
                want,
                "{input:?} against JSON"
            );
        }
    }

    #[test]
    fn matching_json_without_labels() {
        let exists = Selector::parse("a").expect("parses");
        let absent = Selector::parse("!a").expect("parses");
        for labels in [None, Some(&Value::Null), Some(&json!({"a": 1}))] {
            assert!(!exists.matches_json(labels), "{labels:?}");
            assert!(absent.matches_json(labels), "{labels:?}");
        }
        assert!(Selector::everything().matches_json(None));
        assert!(!Selector::nothing().matches_json(Some(&json!({"a": "1"}))));
    }

    #[test]
    fn requires_exact_match() {
        let selector = Selector::parse("a=1,b in (x),c in (x,y),d!=1,e==2,a=3").expect("parses");
        let cases = [
            ("a", Some("1")),
            ("b", Some("x")),
            ("c", None),
            ("d", None),
            ("e", Some("2")),
            ("z", None),
        ];
        for (key, want) in cases {
            assert_eq!(selector.requires_exact_match(key), want, "key {key}");
        }
    }

    #[test]
    fn empty_everything_and_nothing() {
        assert!(Selector::parse("").expect("parses").is_empty());
        assert!(Selector::everything().is_empty());
        assert!(!Selector::parse("a").expect("parses").is_empty());
        let nothing = Selector::nothing();
        assert!(!nothing.is_empty());
        assert!(nothing.matches_nothing());
        assert_eq!(nothing.to_string(), "");
        assert!(!nothing.matches(&labels(&[])));
        let mut still_nothing = Selector::nothing();
        still_nothing.extend(Requirement::new("a", Operator::Exists, vec![]));
        assert!(still_nothing.matches_nothing());
    }

    #[test]
    fn from_set_renders_sorted_equalities() {
        let selector = Selector::from_set(&labels(&[("b", "2"), ("a", "1")]));
        assert_eq!(selector.to_string(), "a=1,b=2");
        assert!(selector.matches(&labels(&[("a", "1"), ("b", "2"), ("c", "3")])));
        assert!(!selector.matches(&labels(&[("a", "1")])));
        assert!(Selector::from_set(&BTreeMap::new()).is_empty());
    }

    #[test]
    fn extend_keeps_requirements_sorted_by_key() {
        let mut selector = Selector::parse("b=1").expect("parses");
        let added = ["c", "a"]
            .map(|k| Requirement::new(k, Operator::Exists, vec![]).expect("valid requirement"));
        selector.extend(added);
        assert_eq!(selector.to_string(), "a,b=1,c");
    }

    fn expression(key: &str, operator: &str, values: Option<&[&str]>) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.to_string(),
            operator: operator.to_string(),
            values: values.map(|vs| vs.iter().map(|v| v.to_string()).collect()),
        }
    }

    fn label_selector(
        match_labels: &[(&str, &str)],
        match_expressions: Vec<LabelSelectorRequirement>,
    ) -> LabelSelector {
        LabelSelector {
            match_labels: (!match_labels.is_empty()).then(|| labels(match_labels)),
            match_expressions: (!match_expressions.is_empty()).then_some(match_expressions),
        }
    }

    #[test]
    fn from_label_selector() {
        let nothing = Selector::from_label_selector(None).expect("converts");
        assert!(nothing.matches_nothing());
        let everything =
            Selector::try_from(&LabelSelector::default()).expect("converts an empty selector");
        assert!(everything.is_empty());

        let selector = label_selector(
            &[("b", "2"), ("a", "1")],
            vec![
                expression("c", "In", Some(&["y", "x", "x"])),
                expression("d", "NotIn", Some(&["z"])),
                expression("e", "Exists", None),
                expression("f", "DoesNotExist", Some(&[])),
            ],
        );
        let converted = Selector::try_from(&selector).expect("converts");
        // Values from matchExpressions are kept as given: sorted for display, not deduplicated.
        assert_eq!(
            converted.to_string(),
            "a=1,b=2,c in (x,x,y),d notin (z),e,!f"
        );
        assert_eq!(converted.requirements()[2].values(), ["y", "x", "x"]);
        assert!(converted.matches(&labels(&[("a", "1"), ("b", "2"), ("c", "x"), ("e", "")])));
        assert!(!converted.matches(&labels(&[("a", "1"), ("b", "2"), ("c", "x")])));
    }

    #[test]
    fn from_label_selector_errors() {
        let cases = vec![
            (
                label_selector(&[], vec![expression("a", "Foo", None)]),
                "\"Foo\" is not a valid label selector operator".to_string(),
            ),
            (
                label_selector(&[], vec![expression("a", "in", Some(&["x"]))]),
                "\"in\" is not a valid label selector operator".to_string(),
            ),
            (
                label_selector(&[], vec![expression("a", "In", None)]),
                "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set \
                 can't be empty"
                    .to_string(),
            ),
            (
                label_selector(&[], vec![expression("a", "NotIn", Some(&[]))]),
                "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set \
                 can't be empty"
                    .to_string(),
            ),
            (
                label_selector(&[], vec![expression("a", "Exists", Some(&["x", "y"]))]),
                "values: Invalid value: []string{\"x\", \"y\"}: values set must be empty for \
                 exists and does not exist"
                    .to_string(),
            ),
            (
                label_selector(&[], vec![expression("k", "DoesNotExist", Some(&["-x"]))]),
                format!(
                    "[values: Invalid value: []string{{\"-x\"}}: values set must be empty for \
                     exists and does not exist, values[0][k]: Invalid value: \"-x\": {VALUE_RULE}]"
                ),
            ),
            (
                label_selector(&[("-bad", "x")], vec![]),
                format!("key: Invalid value: \"-bad\": name part {NAME_RULE}"),
            ),
            (
                label_selector(&[("a", "-x")], vec![]),
                format!("values[0][a]: Invalid value: \"-x\": {VALUE_RULE}"),
            ),
            (
                label_selector(&[], vec![expression("-k", "In", Some(&["-x"]))]),
                format!(
                    "[key: Invalid value: \"-k\": name part {NAME_RULE}, \
                     values[0][-k]: Invalid value: \"-x\": {VALUE_RULE}]"
                ),
            ),
        ];
        for (selector, want) in cases {
            let err = Selector::try_from(&selector).expect_err("conversion fails");
            assert_eq!(err.to_string(), want, "{selector:?}");
        }
    }

    #[test]
    fn requirement_constructor_errors() {
        let cases = [
            (
                Operator::Equals,
                vec!["a", "b"],
                "values: Invalid value: []string{\"a\", \"b\"}: exact-match compatibility \
                 requires one single value"
                    .to_string(),
            ),
            (
                Operator::NotEquals,
                vec![],
                "values: Invalid value: []string(nil): exact-match compatibility requires one \
                 single value"
                    .to_string(),
            ),
            (
                Operator::GreaterThan,
                vec!["1", "x"],
                format!(
                    "[values: Invalid value: []string{{\"1\", \"x\"}}: for 'Gt', 'Lt' operators, \
                     exactly one value is required, values[1]: Invalid value: \"x\": {INTEGER_RULE}]"
                ),
            ),
        ];
        for (operator, values, want) in cases {
            let values = values.into_iter().map(String::from).collect();
            let err = Requirement::new("k", operator, values).expect_err("invalid requirement");
            assert_eq!(err.to_string(), want, "{operator:?}");
        }
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
        fn space(&mut self) -> &'static str {
            ["", "", " ", "  ", "\t"][self.below(5)]
        }
    }

    const KEYS: &[&str] = &[
        "a",
        "b",
        "app",
        "tier",
        "example.com/role",
        "x.y_z-1",
        "in",
        "notin",
    ];
    const VALUES: &[&str] = &["", "a", "b", "web", "v1.2", "in", "X_y", "7"];
    const NUMBERS: &[&str] = &["0", "1", "5", "42", "007"];
    const OPERATORS: &[Operator] = &[
        Operator::In,
        Operator::NotIn,
        Operator::Equals,
        Operator::DoubleEquals,
        Operator::NotEquals,
        Operator::Exists,
        Operator::DoesNotExist,
        Operator::GreaterThan,
        Operator::LessThan,
    ];

    /// What a requirement means, judged independently of `Requirement::matches`.
    fn reference_match(
        key: &str,
        op: Operator,
        values: &[&str],
        labels: &BTreeMap<String, String>,
    ) -> bool {
        let actual = labels.get(key).map(String::as_str);
        let number = |s: &str| s.parse::<i64>().ok();
        match op {
            Operator::In | Operator::Equals | Operator::DoubleEquals => {
                actual.is_some_and(|a| values.contains(&a))
            }
            Operator::NotIn | Operator::NotEquals => !actual.is_some_and(|a| values.contains(&a)),
            Operator::Exists => actual.is_some(),
            Operator::DoesNotExist => actual.is_none(),
            Operator::GreaterThan => match (actual.and_then(number), number(values[0])) {
                (Some(a), Some(b)) => a > b,
                _ => false,
            },
            Operator::LessThan => match (actual.and_then(number), number(values[0])) {
                (Some(a), Some(b)) => a < b,
                _ => false,
            },
        }
    }

    #[test]
    fn generated_selectors_parse_render_and_match_consistently() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..2000 {
            let count = rng.below(5);
            let mut source = Vec::new();
            let mut expected: Vec<(&str, Operator, Vec<&str>)> = Vec::new();
            for _ in 0..count {
                let key = rng.pick(KEYS);
                let op = OPERATORS[rng.below(OPERATORS.len())];
                let values: Vec<&str> = match op {
                    Operator::In | Operator::NotIn => {
                        let mut values: Vec<&str> =
                            (0..1 + rng.below(3)).map(|_| rng.pick(VALUES)).collect();
                        // Upstream rejects a list ending in `,,)` after a first member.
                        if let [_, "", last @ ""] = values.as_mut_slice() {
                            *last = "a";
                        }
                        values
                    }
                    Operator::Exists | Operator::DoesNotExist => vec![],
                    Operator::GreaterThan | Operator::LessThan => vec![rng.pick(NUMBERS)],
                    _ => vec![rng.pick(VALUES)],
                };
                let (s1, s2, s3) = (rng.space(), rng.space(), rng.space());
                let text = match op {
                    Operator::Exists => format!("{s1}{key}{s2}"),
                    Operator::DoesNotExist => format!("{s1}!{s2}{key}{s3}"),
                    Operator::In | Operator::NotIn => {
                        let word = if op == Operator::In { "in" } else { "notin" };
                        let list = values.join(&format!("{s3},{s2}"));
                        format!("{s1}{key} {s2}{word}{s3}({s1}{list}{s2}){s3}")
                    }
                    _ => {
                        let symbol = match op {
                            Operator::GreaterThan => ">",
                            Operator::LessThan => "<",
                            other => other.as_str(),
                        };
                        format!("{s1}{key}{s2}{symbol}{s3}{}{s1}", values[0])
                    }
                };
                source.push(text);
                let mut canonical = values.clone();
                canonical.sort_unstable();
                canonical.dedup();
                expected.push((key, op, canonical));
            }
            let input = source.join(",");
            let selector = Selector::parse(&input)
                .unwrap_or_else(|e| panic!("{input:?} failed to parse: {e}"));

            expected.sort_by(|a, b| a.0.cmp(b.0));
            let rendered: Vec<String> = expected
                .iter()
                .map(|(key, op, values)| {
                    let values = values.iter().map(|v| v.to_string()).collect();
                    Requirement::new(*key, *op, values)
                        .expect("generated requirements are valid")
                        .to_string()
                })
                .collect();
            assert_eq!(
                selector.to_string(),
                rendered.join(","),
                "rendering of {input:?}"
            );
            let reparsed = Selector::parse(&selector.to_string()).expect("canonical form parses");
            assert_eq!(reparsed, selector, "round trip of {input:?}");

            for _ in 0..5 {
                let set: BTreeMap<String, String> = (0..rng.below(5))
                    .map(|_| {
                        let value = if rng.below(2) == 0 {
                            rng.pick(VALUES)
                        } else {
                            rng.pick(NUMBERS)
                        };
                        (rng.pick(KEYS).to_string(), value.to_string())
                    })
                    .collect();
                let want = expected
                    .iter()
                    .all(|(key, op, values)| reference_match(key, *op, values, &set));
                assert_eq!(selector.matches(&set), want, "{input:?} against {set:?}");
            }
        }
    }
}
