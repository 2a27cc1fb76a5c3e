//! JSON as Go's encoding/json writes it: serde_json's compact form with `<`, `>`, `&`, U+2028
//! and U+2029 escaped (they only ever occur inside strings). Upstream hashes and serves such
//! bytes (ControllerRevision hashes, the OpenAPI documents), so ours must match them.

use serde_json::Value;

/// `v` encoded as Go's `json.Marshal` would.
pub fn encode(v: &Value) -> String {
    let text = v.to_string();
    let mut out = String::with_capacity(text.len() + text.len() / 64);
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn html_characters_and_line_separators_are_escaped() {
        let v = serde_json::json!({"a": "<b>&\u{2028}"});
        assert_eq!(super::encode(&v), r#"{"a":"\u003cb\u003e\u0026\u2028"}"#);
    }
}
