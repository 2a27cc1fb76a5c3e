//! What the runtime has of one pod (upstream's `GetPodStatus`): its sandboxes, newest first,
//! with the newest one's IPs, and every container instance with the annotations the kubelet
//! wrote when it created it.

use crate::cri::{self, Runtime, api};
use crate::kuberuntime::container::{HASH_ANNOTATION, TERMINATION_MESSAGE_PATH_ANNOTATION, TERMINATION_MESSAGE_POLICY_ANNOTATION};
use crate::kuberuntime::sandbox::POD_UID_LABEL;
use crate::status::containers::{RuntimeContainer, State};

/// The most of a termination message the kubelet reads (upstream's 4 KiB).
const MAX_TERMINATION_MESSAGE: u64 = 4096;

/// One sandbox of the pod.
#[derive(Debug, Clone, PartialEq)]
pub struct Sandbox {
    pub id: String,
    pub attempt: u32,
    pub ready: bool,
    pub created_at: i64,
    /// The IPs of its network (known for the newest sandbox only).
    pub ips: Vec<String>,
}

/// One container instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    /// The CRI ID (without the `runtime://` prefix).
    pub id: String,
    pub sandbox_id: String,
    /// The spec hash it was created from.
    pub hash: String,
    pub status: RuntimeContainer,
    pub log_path: String,
}

impl Instance {
    pub fn running(&self) -> bool {
        self.status.state == State::Running
    }
}

/// Everything the runtime has of one pod.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodRuntime {
    /// Newest first.
    pub sandboxes: Vec<Sandbox>,
    /// Any order.
    pub containers: Vec<Instance>,
}

impl PodRuntime {
    /// The newest instance of the container `name`.
    pub fn newest(&self, name: &str) -> Option<&Instance> {
        self.containers.iter().filter(|c| c.status.name == name).max_by_key(|c| c.status.created_at)
    }

    pub fn runtime_containers(&self) -> Vec<RuntimeContainer> {
        self.containers.iter().map(|c| c.status.clone()).collect()
    }

    /// The newest sandbox's IPs.
    pub fn ips(&self) -> &[String] {
        self.sandboxes.first().map(|s| s.ips.as_slice()).unwrap_or_default()
    }
}

/// The termination message a container wrote (or, with FallbackToLogsOnError and a failure,
/// the end of its log), appended to the runtime's message as upstream does.
fn termination_message(status: &api::ContainerStatus) -> Option<String> {
    let path = status.annotations.get(TERMINATION_MESSAGE_PATH_ANNOTATION).filter(|p| !p.is_empty())?;
    let mount = status.mounts.iter().find(|m| &m.container_path == path)?;
    let data = read_at_most(std::path::Path::new(&mount.host_path), MAX_TERMINATION_MESSAGE).ok()?;
    if !data.is_empty() {
        return Some(data);
    }
    let fallback = status.annotations.get(TERMINATION_MESSAGE_POLICY_ANNOTATION).map(String::as_str) == Some("FallbackToLogsOnError");
    if fallback && status.exit_code != 0 && status.reason != "ContainerCannotRun" {
        return log_tail(std::path::Path::new(&status.log_path));
    }
    None
}

/// The last `max` bytes of a file.
fn read_at_most(path: &std::path::Path, max: u64) -> std::io::Result<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    if len > max {
        f.seek(SeekFrom::Start(len - max))?;
    }
    let mut buf = Vec::new();
    f.take(max).read_to_end(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// The message of the last 80 lines (at most 2 KiB) of a CRI log file.
fn log_tail(path: &std::path::Path) -> Option<String> {
    let raw = read_at_most(path, 64 * 1024).ok()?;
    let lines: Vec<&str> = raw.lines().collect();
    let mut out = String::new();
    for line in &lines[lines.len().saturating_sub(80)..] {
        // <time> <stream> <P|F> <content>
        let mut parts = line.splitn(4, ' ');
        let (_, _, tag, content) = (parts.next(), parts.next(), parts.next(), parts.next().unwrap_or(""));
        out.push_str(content);
        if tag != Some("P") {
            out.push('\n');
        }
    }
    let start = out.len().saturating_sub(2048);
    let start = (start..out.len()).find(|i| out.is_char_boundary(*i)).unwrap_or(out.len());
    Some(out[start..].to_string())
}

/// Reads the pod `uid`'s sandboxes and containers from the runtime.
pub async fn pod_runtime<R: Runtime>(runtime: &R, runtime_name: &str, uid: &str) -> cri::Result<PodRuntime> {
    let labels = std::collections::HashMap::from([(POD_UID_LABEL.to_string(), uid.to_string())]);
    let sandbox_filter = api::PodSandboxFilter { label_selector: labels.clone(), ..Default::default() };
    let mut sandboxes: Vec<Sandbox> = runtime
        .list_pod_sandboxes(Some(sandbox_filter))
        .await?
        .into_iter()
        .map(|s| Sandbox {
            attempt: s.metadata.as_ref().map(|m| m.attempt).unwrap_or(0),
            ready: s.state == api::PodSandboxState::SandboxReady as i32,
            created_at: s.created_at,
            id: s.id,
            ips: Vec::new(),
        })
        .collect();
    sandboxes.sort_by_key(|s| std::cmp::Reverse(s.created_at));
    if let Some(newest) = sandboxes.first_mut().filter(|s| s.ready) {
        match runtime.pod_sandbox_status(&newest.id).await {
            Ok(status) => {
                if let Some(net) = status.network {
                    newest.ips = std::iter::once(net.ip).chain(net.additional_ips.into_iter().map(|i| i.ip)).filter(|ip| !ip.is_empty()).collect();
                }
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    let container_filter = api::ContainerFilter { label_selector: labels, ..Default::default() };
    let mut containers = Vec::new();
    for c in runtime.list_containers(Some(container_filter)).await? {
        let status = match runtime.container_status(&c.id).await {
            Ok(s) => s,
            // Removed between the list and the look: as if the list had not had it.
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e),
        };
        let mut converted = RuntimeContainer::from_cri(&status, runtime_name);
        if converted.state == State::Exited
            && let Some(message) = termination_message(&status) {
                if !converted.message.is_empty() {
                    converted.message.push_str(": ");
                }
                converted.message.push_str(&message);
            }
        containers.push(Instance {
            id: c.id,
            sandbox_id: c.pod_sandbox_id,
            hash: status.annotations.get(HASH_ANNOTATION).cloned().unwrap_or_default(),
            status: converted,
            log_path: status.log_path,
        });
    }
    Ok(PodRuntime { sandboxes, containers })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_tail_joins_partial_lines() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("0.log");
        std::fs::write(&path, "2026-01-01T00:00:00Z stdout P par\n2026-01-01T00:00:00Z stdout F tial\n2026-01-01T00:00:01Z stderr F boom\n").expect("write");
        assert_eq!(log_tail(&path).as_deref(), Some("partial\nboom\n"));
    }
}
