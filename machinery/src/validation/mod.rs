//! Validation building blocks shared by the resource strategies: name formats, object
//! metadata, labels and annotations, label selectors, quantities, cron schedules and the
//! small formats of the core API (ports, environment variable names, config keys, IPs),
//! each with upstream's messages.

pub mod core;
pub mod cron;
pub mod go_repr;
pub mod labels;
pub mod meta;
pub mod names;
pub mod quantity;
pub mod selector;

/// `must be greater than or equal to 0`, upstream's message for negative counts.
pub const IS_NEGATIVE_ERROR_MSG: &str = "must be greater than or equal to 0";

/// `field is immutable`.
pub const FIELD_IMMUTABLE_ERROR_MSG: &str = "field is immutable";

/// Upstream's `RegexError`: the message, a few examples and the pattern that failed.
pub fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let mut s = format!("{msg} (e.g. ");
    for (i, e) in examples.iter().enumerate() {
        if i > 0 {
            s.push_str(" or ");
        }
        s.push('\'');
        s.push_str(e);
        s.push_str("', ");
    }
    s.push_str(&format!("regex used for validation is '{fmt}')"));
    s
}

/// Upstream's `MaxLenError`.
pub fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} characters")
}

/// Upstream's `InclusiveRangeError`.
pub fn inclusive_range_error(lo: i64, hi: i64) -> String {
    format!("must be between {lo} and {hi}, inclusive")
}

/// Upstream's `EmptyError`.
pub const EMPTY_ERROR: &str = "must be non-empty";

/// `ValidateNonnegativeField`: one error when `value` is negative.
pub fn validate_nonnegative(value: i64, path: &crate::Path) -> Vec<crate::FieldError> {
    if value < 0 {
        vec![crate::FieldError::invalid(
            path,
            value.into(),
            IS_NEGATIVE_ERROR_MSG,
        )]
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_error_shapes() {
        assert_eq!(
            regex_error("bad", "[a-z]+", &["ab", "cd"]),
            "bad (e.g. 'ab',  or 'cd', regex used for validation is '[a-z]+')"
        );
        assert_eq!(
            regex_error("bad", "x", &[]),
            "bad (regex used for validation is 'x')"
        );
    }
}
