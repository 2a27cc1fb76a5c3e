//! A scripted [`Runtime`] for the probe and hook unit tests: `ExecSync` answers with what the
//! test set (per command name, or by default) and records each call; every other call fails
//! with UNIMPLEMENTED.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::cri::{Error, Result, Runtime, api};

type Answer = std::result::Result<api::ExecSyncResponse, (tonic::Code, String)>;

pub struct FakeRuntime {
    /// By the command's first word; "" is the default.
    answers: Mutex<HashMap<String, Answer>>,
    execs: Mutex<Vec<(String, Vec<String>, i64)>>,
}

fn unimplemented<T>(call: &'static str) -> Result<T> {
    Err(Error::Call { call, status: tonic::Status::unimplemented("not in the fake runtime") })
}

impl FakeRuntime {
    /// ExecSync exits with `code`, printing `stdout` and `stderr`.
    pub fn exits(code: i32, stdout: &str, stderr: &str) -> Self {
        Self::answering(Ok(response(code, stdout, stderr)))
    }

    /// ExecSync fails with a gRPC status.
    pub fn fails(code: tonic::Code, message: &str) -> Self {
        Self::answering(Err((code, message.into())))
    }

    fn answering(default: Answer) -> Self {
        FakeRuntime { answers: Mutex::new(HashMap::from([(String::new(), default)])), execs: Mutex::new(Vec::new()) }
    }

    /// From now on the command whose first word is `command` ("" for any other) exits with
    /// `code`, printing `output`.
    pub fn set_exit(&self, command: &str, code: i32, output: &str) {
        if let Ok(mut a) = self.answers.lock() {
            a.insert(command.to_string(), Ok(response(code, output, "")));
        }
    }

    /// How many times a command whose first word is `command` ran.
    pub fn count(&self, command: &str) -> usize {
        self.execs().iter().filter(|(_, cmd, _)| cmd.first().map(String::as_str) == Some(command)).count()
    }

    /// The ExecSync calls so far: (container id, command, timeout).
    pub fn execs(&self) -> Vec<(String, Vec<String>, i64)> {
        self.execs.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

fn response(code: i32, stdout: &str, stderr: &str) -> api::ExecSyncResponse {
    api::ExecSyncResponse { stdout: stdout.as_bytes().to_vec(), stderr: stderr.as_bytes().to_vec(), exit_code: code }
}

impl Runtime for FakeRuntime {
    async fn version(&self) -> Result<api::VersionResponse> {
        unimplemented("Version")
    }
    async fn status(&self) -> Result<api::RuntimeStatus> {
        unimplemented("Status")
    }
    async fn run_pod_sandbox(&self, _config: api::PodSandboxConfig) -> Result<String> {
        unimplemented("RunPodSandbox")
    }
    async fn stop_pod_sandbox(&self, _id: &str) -> Result<()> {
        unimplemented("StopPodSandbox")
    }
    async fn remove_pod_sandbox(&self, _id: &str) -> Result<()> {
        unimplemented("RemovePodSandbox")
    }
    async fn pod_sandbox_status(&self, _id: &str) -> Result<api::PodSandboxStatus> {
        unimplemented("PodSandboxStatus")
    }
    async fn list_pod_sandboxes(&self, _filter: Option<api::PodSandboxFilter>) -> Result<Vec<api::PodSandbox>> {
        unimplemented("ListPodSandbox")
    }
    async fn create_container(
        &self,
        _sandbox_id: &str,
        _config: api::ContainerConfig,
        _sandbox_config: api::PodSandboxConfig,
    ) -> Result<String> {
        unimplemented("CreateContainer")
    }
    async fn start_container(&self, _id: &str) -> Result<()> {
        unimplemented("StartContainer")
    }
    async fn stop_container(&self, _id: &str, _timeout_seconds: i64) -> Result<()> {
        unimplemented("StopContainer")
    }
    async fn remove_container(&self, _id: &str) -> Result<()> {
        unimplemented("RemoveContainer")
    }
    async fn container_status(&self, _id: &str) -> Result<api::ContainerStatus> {
        unimplemented("ContainerStatus")
    }
    async fn list_containers(&self, _filter: Option<api::ContainerFilter>) -> Result<Vec<api::Container>> {
        unimplemented("ListContainers")
    }
    async fn exec_sync(&self, id: &str, cmd: Vec<String>, timeout_seconds: i64) -> Result<api::ExecSyncResponse> {
        let word = cmd.first().cloned().unwrap_or_default();
        if let Ok(mut e) = self.execs.lock() {
            e.push((id.to_string(), cmd, timeout_seconds));
        }
        let answer = self
            .answers
            .lock()
            .ok()
            .and_then(|a| a.get(&word).or_else(|| a.get("")).cloned())
            .unwrap_or_else(|| Err((tonic::Code::Internal, "no answer".into())));
        answer.map_err(|(code, message)| Error::Call { call: "ExecSync", status: tonic::Status::new(code, message) })
    }
    async fn image_status(&self, _image: &str) -> Result<Option<api::Image>> {
        unimplemented("ImageStatus")
    }
    async fn pull_image(&self, _image: &str, _sandbox_config: Option<api::PodSandboxConfig>) -> Result<String> {
        unimplemented("PullImage")
    }
}
