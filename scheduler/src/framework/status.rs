//! The outcome of running a plugin: an explicit code plus the reasons a user reads.

use std::fmt;

/// What a plugin decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Code {
    /// The plugin ran and found nothing wrong.
    Success,
    /// Something went wrong that is not the pod's fault (internal error).
    Error,
    /// The pod does not fit now; preemption might help.
    Unschedulable,
    /// The pod does not fit and preemption would not help.
    UnschedulableAndUnresolvable,
    /// A Permit plugin asks to wait.
    Wait,
    /// The plugin has nothing to do for this pod; its later extension points are skipped.
    Skip,
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Code::Success => "Success",
            Code::Error => "Error",
            Code::Unschedulable => "Unschedulable",
            Code::UnschedulableAndUnresolvable => "UnschedulableAndUnresolvable",
            Code::Wait => "Wait",
            Code::Skip => "Skip",
        })
    }
}

/// A code, the reasons behind it and the plugin that returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    code: Code,
    reasons: Vec<String>,
    plugin: Option<&'static str>,
}

impl Default for Status {
    fn default() -> Self {
        Status::success()
    }
}

impl Status {
    pub fn new(code: Code, reasons: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Status { code, reasons: reasons.into_iter().map(Into::into).collect(), plugin: None }
    }

    pub fn success() -> Self {
        Status { code: Code::Success, reasons: Vec::new(), plugin: None }
    }

    pub fn skip() -> Self {
        Status { code: Code::Skip, reasons: Vec::new(), plugin: None }
    }

    pub fn error(message: impl Into<String>) -> Self {
        Status::new(Code::Error, [message.into()])
    }

    pub fn unschedulable(reason: impl Into<String>) -> Self {
        Status::new(Code::Unschedulable, [reason.into()])
    }

    pub fn unresolvable(reason: impl Into<String>) -> Self {
        Status::new(Code::UnschedulableAndUnresolvable, [reason.into()])
    }

    pub fn with_plugin(mut self, plugin: &'static str) -> Self {
        self.plugin = Some(plugin);
        self
    }

    pub fn set_plugin(&mut self, plugin: &'static str) {
        self.plugin = Some(plugin);
    }

    pub fn code(&self) -> Code {
        self.code
    }

    pub fn reasons(&self) -> &[String] {
        &self.reasons
    }

    pub fn plugin(&self) -> Option<&'static str> {
        self.plugin
    }

    /// The reasons joined as upstream's `Status.Message()` joins them.
    pub fn message(&self) -> String {
        self.reasons.join(", ")
    }

    pub fn is_success(&self) -> bool {
        self.code == Code::Success
    }

    pub fn is_skip(&self) -> bool {
        self.code == Code::Skip
    }

    pub fn is_wait(&self) -> bool {
        self.code == Code::Wait
    }

    /// Unschedulable or UnschedulableAndUnresolvable.
    pub fn is_rejected(&self) -> bool {
        matches!(self.code, Code::Unschedulable | Code::UnschedulableAndUnresolvable)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.reasons.is_empty() { write!(f, "{}", self.code) } else { f.write_str(&self.message()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_join_reasons() {
        let s = Status::new(Code::Unschedulable, ["Insufficient cpu", "Insufficient memory"]);
        assert_eq!(s.message(), "Insufficient cpu, Insufficient memory");
        assert!(s.is_rejected());
        assert!(!Status::error("boom").is_rejected());
        assert!(Status::default().is_success());
        assert_eq!(Status::skip().with_plugin("X").plugin(), Some("X"));
    }
}
