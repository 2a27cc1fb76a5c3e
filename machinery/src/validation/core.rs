//! Small formats of the core API with upstream's messages: port numbers and IANA service
//! names, environment variable names, config keys, C identifiers, HTTP header names,
//! percentages, user and group IDs, IP addresses and CIDRs, file modes and relative paths.

use std::net::IpAddr;

use serde_json::Value;

use super::{EMPTY_ERROR, inclusive_range_error, max_len_error, regex_error};
use crate::{FieldError, Path};

/// `IsValidPortNum`: 1..=65535.
pub fn port_num(port: i64) -> Vec<String> {
    if (1..=65535).contains(&port) {
        Vec::new()
    } else {
        vec![inclusive_range_error(1, 65535)]
    }
}

/// `IsValidPortName`: an IANA service name.
pub fn port_name(port: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if port.len() > 15 {
        errs.push(max_len_error(15));
    }
    let b = port.as_bytes();
    if b.is_empty()
        || !b
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
    {
        errs.push(
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_string(),
        );
    }
    if !b.iter().any(u8::is_ascii_lowercase) {
        errs.push("must contain at least one letter (a-z)".to_string());
    }
    if port.contains("--") {
        errs.push("must not contain consecutive hyphens".to_string());
    }
    if !b.is_empty() && (b[0] == b'-' || b[b.len() - 1] == b'-') {
        errs.push("must not begin or end with a hyphen".to_string());
    }
    errs
}

fn ch_dir_prefix(value: &str) -> Vec<String> {
    match value {
        "." => vec!["must not be '.'".to_string()],
        ".." => vec!["must not be '..'".to_string()],
        v if v.starts_with("..") => vec!["must not start with '..'".to_string()],
        _ => Vec::new(),
    }
}

/// `IsEnvVarName` (the strict form, still used for a few names).
pub fn env_var_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let b = value.as_bytes();
    let ok_char = |c: &u8| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_');
    if b.is_empty() || b[0].is_ascii_digit() || !b.iter().all(ok_char) {
        errs.push(regex_error(
            "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit",
            "[-._a-zA-Z][-._a-zA-Z0-9]*",
            &["my.env-name", "MY_ENV.NAME", "MyEnvName1"],
        ));
    }
    errs.extend(ch_dir_prefix(value));
    errs
}

/// `IsRelaxedEnvVarName`: any printable ASCII but `=` (the v1.33 default,
/// RelaxedEnvironmentVariableValidation being on).
pub fn relaxed_env_var_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.is_empty() {
        errs.push(format!("environment variable name {EMPTY_ERROR}"));
    }
    if value.chars().any(|c| !(' '..='~').contains(&c) || c == '=') {
        errs.push("a valid environment variable name must consist only of printable ASCII characters other than '='".to_string());
    }
    errs
}

/// `IsConfigMapKey`: a key of a ConfigMap or Secret.
pub fn config_map_key(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 253 {
        errs.push(max_len_error(253));
    }
    if value.is_empty()
        || !value
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_'))
    {
        errs.push(regex_error(
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
            "[-._a-zA-Z0-9]+",
            &["key.name", "KEY_NAME", "key-name"],
        ));
    }
    errs.extend(ch_dir_prefix(value));
    errs
}

/// `IsCIdentifier`.
pub fn c_identifier(value: &str) -> Vec<String> {
    let b = value.as_bytes();
    let ok = !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_');
    if ok {
        Vec::new()
    } else {
        vec![regex_error(
            "a valid C identifier must start with alphabetic character or '_', followed by a string of alphanumeric characters or '_'",
            "[A-Za-z_][A-Za-z0-9_]*",
            &["my_name", "MY_NAME", "MyName"],
        )]
    }
}

/// `IsHTTPHeaderName`.
pub fn http_header_name(value: &str) -> Vec<String> {
    if !value.is_empty()
        && value
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-')
    {
        Vec::new()
    } else {
        vec![regex_error(
            "a valid HTTP header must consist of alphanumeric characters or '-'",
            "[-A-Za-z0-9]+",
            &["X-Header-Name"],
        )]
    }
}

/// `IsValidPercent`: digits followed by `%`.
pub fn percent(value: &str) -> Vec<String> {
    let ok = value
        .strip_suffix('%')
        .is_some_and(|d| !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit()));
    if ok {
        Vec::new()
    } else {
        vec![regex_error(
            "a valid percent string must be a numeric string followed by an ending '%'",
            "[0-9]+%",
            &["1%", "93%"],
        )]
    }
}

/// `IsValidUserID` / `IsValidGroupID`: 0..=2^32-1.
pub fn unix_id(id: i64) -> Vec<String> {
    if (0..=0xffff_ffff).contains(&id) {
        Vec::new()
    } else {
        vec![inclusive_range_error(0, 0xffff_ffff)]
    }
}

/// Go's `ParseIPSloppy`: like the standard parser, but IPv4 parts may carry leading zeros.
pub fn parse_ip_sloppy(value: &str) -> Option<IpAddr> {
    if let Ok(ip) = value.parse::<IpAddr>() {
        return Some(ip);
    }
    let parts: Vec<&str> = value.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    let mut octets = [0u8; 4];
    for (i, p) in parts.iter().enumerate() {
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        octets[i] = p.parse().ok()?;
    }
    Some(IpAddr::from(octets))
}

/// `IsValidIP`: the field error for a value that is not an IP address.
pub fn validate_ip(value: &str, path: &Path) -> Vec<FieldError> {
    if parse_ip_sloppy(value).is_some() {
        Vec::new()
    } else {
        vec![FieldError::invalid(
            path,
            value.into(),
            "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
        )]
    }
}

/// `IsValidCIDR`.
pub fn validate_cidr(value: &str, path: &Path) -> Vec<FieldError> {
    let ok = value.split_once('/').is_some_and(|(ip, bits)| {
        let Some(addr) = parse_ip_sloppy(ip) else {
            return false;
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        !bits.is_empty()
            && bits.bytes().all(|c| c.is_ascii_digit())
            && bits.parse::<u32>().is_ok_and(|b| b <= max)
    });
    if ok {
        Vec::new()
    } else {
        vec![FieldError::invalid(
            path,
            value.into(),
            "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
        )]
    }
}

/// The message for a file mode outside 0..=0777.
pub const FILE_MODE_ERROR_MSG: &str = "must be a number between 0 and 0777 (octal), both inclusive";

/// A `defaultMode`/`mode` field: 0..=0o777.
pub fn validate_file_mode(mode: Option<i32>, path: &Path) -> Vec<FieldError> {
    match mode {
        Some(m) if !(0..=0o777).contains(&m) => {
            vec![FieldError::invalid(path, m.into(), FILE_MODE_ERROR_MSG)]
        }
        _ => Vec::new(),
    }
}

/// `validatePathNoBacksteps`: no `..` element.
pub fn validate_path_no_backsteps(target: &str, path: &Path) -> Vec<FieldError> {
    if target.split('/').any(|p| p == "..") {
        vec![FieldError::invalid(
            path,
            target.into(),
            "must not contain '..'",
        )]
    } else {
        Vec::new()
    }
}

/// `validateLocalDescendingPath`: relative, without `..` elements.
pub fn validate_local_descending_path(target: &str, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if target.starts_with('/') {
        errs.push(FieldError::invalid(
            path,
            target.into(),
            "must be a relative path",
        ));
    }
    errs.extend(validate_path_no_backsteps(target, path));
    errs
}

/// `ValidateLocalNonReservedPath`: a local descending path that does not start with `..`.
pub fn validate_local_non_reserved_path(target: &str, path: &Path) -> Vec<FieldError> {
    let mut errs = validate_local_descending_path(target, path);
    if target.starts_with("..") && !target.starts_with("../") {
        errs.push(FieldError::invalid(
            path,
            target.into(),
            "must not start with '..'",
        ));
    }
    errs
}

/// `ValidatePortNumOrName` for an `IntOrString` port given as JSON.
pub fn validate_port_num_or_name(port: Option<&Value>, path: &Path) -> Vec<FieldError> {
    match port {
        Some(Value::Number(n)) => {
            let v = n.as_i64().unwrap_or(0);
            port_num(v)
                .into_iter()
                .map(|m| FieldError::invalid(path, v.into(), m))
                .collect()
        }
        Some(Value::String(s)) => port_name(s)
            .into_iter()
            .map(|m| FieldError::invalid(path, s.as_str().into(), m))
            .collect(),
        // An absent port is the integer 0.
        _ => port_num(0)
            .into_iter()
            .map(|m| FieldError::invalid(path, 0.into(), m))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        assert!(port_num(80).is_empty());
        assert_eq!(
            port_num(0),
            vec!["must be between 1 and 65535, inclusive".to_string()]
        );
        assert!(port_name("http").is_empty());
        assert_eq!(
            port_name("8080"),
            vec!["must contain at least one letter (a-z)".to_string()]
        );
        assert_eq!(port_name("http-web-server-1").len(), 1);
    }

    #[test]
    fn names_and_keys() {
        assert!(relaxed_env_var_name("MY VAR").is_empty());
        assert_eq!(relaxed_env_var_name("A=B").len(), 1);
        assert_eq!(env_var_name("1ABC").len(), 1);
        assert!(config_map_key("app.properties").is_empty());
        assert_eq!(
            config_map_key("..x"),
            vec!["must not start with '..'".to_string()]
        );
        assert_eq!(config_map_key("a b").len(), 1);
        assert!(c_identifier("_x1").is_empty());
        assert!(percent("25%").is_empty());
        assert_eq!(percent("25").len(), 1);
    }

    #[test]
    fn addresses() {
        assert!(parse_ip_sloppy("010.1.1.1").is_some());
        assert!(parse_ip_sloppy("::1").is_some());
        assert!(parse_ip_sloppy("1.2.3").is_none());
        assert!(validate_cidr("10.0.0.0/8", &Path::new("x")).is_empty());
        assert_eq!(validate_cidr("10.0.0.0/33", &Path::new("x")).len(), 1);
    }
}
