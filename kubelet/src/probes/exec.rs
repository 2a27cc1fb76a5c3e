//! Exec probes (upstream's pkg/probe/exec with the kubelet's ExecSync runner): the command
//! runs in the container through CRI `ExecSync` with the probe's timeout; exit code 0 is a
//! success, any other a failure whose message is the command's output (stdout then stderr,
//! at most 10 KiB); a runtime timeout is a failure saying so; any other CRI error leaves the
//! result unknown.

use crate::cri::{self, Runtime};

use super::Outcome;
use super::messages::{go_cri_error, go_duration, go_quote};

/// The most output kept from a probe command.
pub const MAX_OUTPUT: usize = 10 * 1024;

/// Runs `command` in container `container_id` with a timeout of `timeout_seconds`.
pub async fn probe<R: Runtime>(runtime: &R, container_id: &str, command: Vec<String>, timeout_seconds: i64) -> Outcome {
    let joined = command.join(" ");
    match runtime.exec_sync(container_id, command, timeout_seconds).await {
        Ok(resp) => {
            let output = combined_output(&resp.stdout, &resp.stderr);
            tracing::trace!(container_id, exit_code = resp.exit_code, output, "exec probe ran");
            if resp.exit_code == 0 { Outcome::Success } else { Outcome::Failure(output) }
        }
        Err(err) if err.code() == Some(tonic::Code::DeadlineExceeded) => Outcome::Failure(timed_out(&joined, timeout_seconds)),
        Err(err) => Outcome::Unknown(go_cri_error(&err)),
    }
}

/// stdout followed by stderr, cut at [`MAX_OUTPUT`] bytes.
pub fn combined_output(stdout: &[u8], stderr: &[u8]) -> String {
    let mut data = Vec::with_capacity((stdout.len() + stderr.len()).min(MAX_OUTPUT));
    data.extend_from_slice(stdout);
    data.extend_from_slice(stderr);
    data.truncate(MAX_OUTPUT);
    String::from_utf8_lossy(&data).into_owned()
}

/// The CRI client's timeout error: `command timed out: "sh -c sleep 5" timed out after 1s`.
pub fn timed_out(joined_command: &str, timeout_seconds: i64) -> String {
    format!("command timed out: {} timed out after {}", go_quote(joined_command), go_duration(timeout_seconds))
}

/// The error upstream's CRI client returns for a non-zero exit:
/// `command 'sh -c exit 1' exited with 1: <stderr>`.
pub fn exit_error(joined_command: &str, resp: &cri::api::ExecSyncResponse) -> String {
    format!("command '{joined_command}' exited with {}: {}", resp.exit_code, String::from_utf8_lossy(&resp.stderr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probes::fake_runtime::FakeRuntime;

    #[tokio::test]
    async fn exit_codes_outputs_and_errors_become_outcomes() {
        let cases: Vec<(&str, FakeRuntime, Outcome)> = vec![
            ("exit 0", FakeRuntime::exits(0, "ok\n", ""), Outcome::Success),
            ("exit 1 with output", FakeRuntime::exits(1, "out;", "err"), Outcome::Failure("out;err".into())),
            ("exit 2 silently", FakeRuntime::exits(2, "", ""), Outcome::Failure(String::new())),
            (
                "runtime timeout",
                FakeRuntime::fails(tonic::Code::DeadlineExceeded, "timeout 1s exceeded: context deadline exceeded"),
                Outcome::Failure(r#"command timed out: "sh -c sleep 5" timed out after 1s"#.into()),
            ),
            (
                "container gone",
                FakeRuntime::fails(tonic::Code::NotFound, "container not found"),
                Outcome::Unknown("rpc error: code = NotFound desc = container not found".into()),
            ),
        ];
        for (name, rt, want) in cases {
            let got = probe(&rt, "c1", vec!["sh".into(), "-c".into(), "sleep 5".into()], 1).await;
            assert_eq!(got, want, "{name}");
            assert_eq!(rt.execs(), vec![("c1".to_string(), vec!["sh".to_string(), "-c".into(), "sleep 5".into()], 1)], "{name}");
        }
    }

    #[test]
    fn output_is_cut_at_10_kib() {
        let big = vec![b'x'; 8 * 1024];
        let out = combined_output(&big, &big);
        assert_eq!(out.len(), MAX_OUTPUT);
    }

    #[test]
    fn exit_errors_read_as_the_cri_client_writes_them() {
        let resp = cri::api::ExecSyncResponse { stdout: b"o".to_vec(), stderr: b"boom".to_vec(), exit_code: 3 };
        assert_eq!(exit_error("sh -c exit 3", &resp), "command 'sh -c exit 3' exited with 3: boom");
    }
}
