//! Go's `%q` for strings (`strconv.Quote`), which upstream uses to print bad values in
//! selector errors: printable characters stay, anything else becomes a Go escape.

use std::fmt::Write;
use std::sync::LazyLock;

use regex::Regex;

/// Go's `unicode.IsPrint` beyond ASCII: letters, marks, numbers, punctuation and symbols.
static PRINTABLE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[\p{L}\p{M}\p{N}\p{P}\p{S}]$").expect("the printable-class pattern compiles")
});

fn is_printable(c: char) -> bool {
    if c.is_ascii() {
        return (' '..='~').contains(&c);
    }
    let mut buffer = [0; 4];
    PRINTABLE.is_match(c.encode_utf8(&mut buffer))
}

/// Quotes `s` as Go's `strconv.Quote` does: `"a\"b"`, `"\t"`, `"\x01"`, `"\u00a0"`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if is_printable(c) => out.push(c),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if u32::from(c) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => {
                let _ = write!(out, "\\U{:08x}", u32::from(c));
            }
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::go_quote;

    #[test]
    fn quotes_like_go() {
        let cases = [
            ("", r#""""#),
            ("abc", r#""abc""#),
            ("a\"b\\c", r#""a\"b\\c""#),
            ("\u{7}\u{8}\u{c}\n\r\t\u{b}", r#""\a\b\f\n\r\t\v""#),
            ("\u{0}\u{1}\u{1f}\u{7f}", r#""\x00\x01\x1f\x7f""#),
            ("é日本", "\"é日本\""),
            (
                "\u{a0}\u{ad}\u{200b}\u{feff}",
                r#""\u00a0\u00ad\u200b\ufeff""#,
            ),
            ("\u{85}", r#""\u0085""#),
            ("\u{e000}", r#""\ue000""#),
            ("\u{f0000}", r#""\U000f0000""#),
            ("😀", "\"😀\""),
            ("\u{378}\u{2028}\u{3000}", r#""\u0378\u2028\u3000""#),
            ("\u{e0001}", r#""\U000e0001""#),
        ];
        for (input, want) in cases {
            assert_eq!(go_quote(input), want, "{input:?}");
        }
    }
}
