//! The texts users read in `Unhealthy` events and hook failure messages come from Go's
//! standard library in upstream's kubelet (durations, `%q` quoting, errno strings, gRPC
//! status errors). These functions write them the same way, so the messages match.

/// A whole number of seconds as Go's `time.Duration` prints it: `1s`, `1m30s`, `1h0m0s`.
pub fn go_duration(seconds: i64) -> String {
    if seconds == 0 {
        return "0s".into();
    }
    let sign = if seconds < 0 { "-" } else { "" };
    let s = seconds.unsigned_abs();
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    if h > 0 {
        format!("{sign}{h}h{m}m{sec}s")
    } else if m > 0 {
        format!("{sign}{m}m{sec}s")
    } else {
        format!("{sign}{sec}s")
    }
}

/// Go's `%q` (strconv.Quote), shared with the API machinery.
pub use ironkube_machinery::selectors::quote::go_quote;

/// An OS error as Go's `syscall.Errno` prints it: `connection refused`, not Rust's
/// `Connection refused (os error 111)`.
pub fn go_errno(err: &std::io::Error) -> String {
    let text = err.to_string();
    let text = match text.rfind(" (os error ") {
        Some(at) if err.raw_os_error().is_some() => text[..at].to_string(),
        _ => text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

/// A gRPC code's name as grpc-go spells it (`Canceled`, with one l).
pub fn go_grpc_code(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "Canceled",
        Unknown => "Unknown",
        InvalidArgument => "InvalidArgument",
        DeadlineExceeded => "DeadlineExceeded",
        NotFound => "NotFound",
        AlreadyExists => "AlreadyExists",
        PermissionDenied => "PermissionDenied",
        ResourceExhausted => "ResourceExhausted",
        FailedPrecondition => "FailedPrecondition",
        Aborted => "Aborted",
        OutOfRange => "OutOfRange",
        Unimplemented => "Unimplemented",
        Internal => "Internal",
        Unavailable => "Unavailable",
        DataLoss => "DataLoss",
        Unauthenticated => "Unauthenticated",
    }
}

/// A gRPC status as grpc-go's error prints it: `rpc error: code = NotFound desc = ...`.
pub fn go_grpc_status(status: &tonic::Status) -> String {
    format!("rpc error: code = {} desc = {}", go_grpc_code(status.code()), status.message())
}

/// A CRI call's error as upstream's kubelet would print it (the gRPC status, or the
/// connection failure).
pub fn go_cri_error(err: &crate::cri::Error) -> String {
    match err {
        crate::cri::Error::Call { status, .. } => go_grpc_status(status),
        other => other.to_string(),
    }
}

/// `host:port`, with brackets around an IPv6 address (Go's `net.JoinHostPort`).
pub fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// upstream's `format.Pod`: `name_namespace(uid)`.
pub fn pod_desc(name: &str, namespace: &str, uid: &str) -> String {
    format!("{name}_{namespace}({uid})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_as_go_does() {
        for (secs, want) in
            [(0, "0s"), (1, "1s"), (59, "59s"), (60, "1m0s"), (90, "1m30s"), (3600, "1h0m0s"), (3725, "1h2m5s"), (-5, "-5s")]
        {
            assert_eq!(go_duration(secs), want, "{secs}");
        }
    }

    #[test]
    fn quoting_follows_go() {
        for (s, want) in [
            ("", r#""""#),
            ("plain", r#""plain""#),
            ("a \"b\"\n", r#""a \"b\"\n""#),
            ("tab\there\\", r#""tab\there\\""#),
            ("\u{0}\u{1b}\u{7f}", r#""\x00\x1b\x7f""#),
            ("héllo ✓", "\"héllo ✓\""),
        ] {
            assert_eq!(go_quote(s), want, "{s:?}");
        }
    }

    #[test]
    fn errnos_read_as_go_prints_them() {
        let cases = [
            (std::io::Error::from_raw_os_error(111), "connection refused"),
            (std::io::Error::from_raw_os_error(113), "no route to host"),
            (std::io::Error::from_raw_os_error(104), "connection reset by peer"),
            (std::io::Error::other("Something odd"), "something odd"),
        ];
        for (err, want) in cases {
            assert_eq!(go_errno(&err), want);
        }
    }

    #[test]
    fn grpc_statuses_read_as_grpc_go_prints_them() {
        let status = tonic::Status::new(tonic::Code::Cancelled, "gone");
        assert_eq!(go_grpc_status(&status), "rpc error: code = Canceled desc = gone");
        assert_eq!(go_grpc_code(tonic::Code::NotFound), "NotFound");
    }

    #[test]
    fn hosts_join_with_ports() {
        assert_eq!(join_host_port("10.0.0.1", 80), "10.0.0.1:80");
        assert_eq!(join_host_port("fd00::1", 8080), "[fd00::1]:8080");
        assert_eq!(pod_desc("web", "default", "u-1"), "web_default(u-1)");
    }
}
