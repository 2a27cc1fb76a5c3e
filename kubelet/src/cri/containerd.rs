//! A private containerd for the node: its configuration, CNI network and command line, all
//! under one directory, so it never touches a system containerd (`/run/containerd`,
//! `/var/lib/containerd`). Whoever supervises it (`ironkube up`, the test harness) spawns
//! [`Containerd::command`] and waits for [`Containerd::socket`].
//!
//! The CRI settings are the ones this kind of machine needs (../shared/MACHINE-NOTES.md):
//! a locally imported sandbox image under its full name, Debian's CNI plugins in
//! `/usr/lib/cni`, `restrict_oom_score_adj` (the VM cannot lower oom_score_adj), no hugetlb
//! cgroup, network namespaces under the state dir and the streaming server on loopback.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The sandbox ("pause") image the node's containerd uses; `hack/images/build.sh pause`
/// builds it.
pub const SANDBOX_IMAGE: &str = "registry.k8s.io/pause:3.10";
/// Where Debian's containernetworking-plugins live.
pub const CNI_BIN_DIR: &str = "/usr/lib/cni";
/// The bridge pods attach to by default.
pub const CNI_BRIDGE: &str = "cni0";

/// One node's containerd.
#[derive(Debug, Clone)]
pub struct Containerd {
    /// Everything lives under here: config.toml, root/, state/, cni/, containerd.sock.
    pub dir: PathBuf,
    /// The pod CIDR host-local IPAM hands addresses out of (the node's spec.podCIDR).
    pub pod_cidr: String,
    pub sandbox_image: String,
    /// The Linux bridge pods attach to (default [`CNI_BRIDGE`]).
    pub bridge: String,
    /// The containerd binary (default: `containerd` on PATH).
    pub binary: PathBuf,
}

impl Containerd {
    pub fn new(dir: &Path, pod_cidr: &str) -> Self {
        Containerd {
            dir: dir.to_path_buf(),
            pod_cidr: pod_cidr.to_string(),
            sandbox_image: SANDBOX_IMAGE.to_string(),
            bridge: CNI_BRIDGE.to_string(),
            binary: PathBuf::from("containerd"),
        }
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("containerd.sock")
    }

    /// The CRI endpoint, as the kubelet's `--container-runtime-endpoint` takes it.
    pub fn endpoint(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    fn config_file(&self) -> PathBuf {
        self.dir.join("config.toml")
    }

    fn cni_conf_dir(&self) -> PathBuf {
        self.dir.join("cni")
    }

    /// containerd's config.toml (version 2; everything unsaid keeps containerd's default).
    pub fn config(&self) -> String {
        let d = self.dir.display();
        format!(
            r#"version = 2
root = "{d}/root"
state = "{d}/state"

[grpc]
  address = "{d}/containerd.sock"

[ttrpc]
  address = "{d}/containerd-ttrpc.sock"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{sandbox}"
  restrict_oom_score_adj = true
  disable_hugetlb_controller = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{cni}"
"#,
            sandbox = self.sandbox_image,
            cni = self.cni_conf_dir().display(),
        )
    }

    /// The pod network: a bridge with the gateway on it, masquerading traffic that leaves
    /// the pod CIDR, hairpin so a pod reaches itself through a Service; host-local IPAM on
    /// the pod CIDR; host ports by portmap; loopback.
    pub fn cni_conflist(&self) -> serde_json::Value {
        serde_json::json!({
            "cniVersion": "1.0.0",
            "name": "ironkube",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": self.bridge,
                    "isGateway": true,
                    "ipMasq": true,
                    "hairpinMode": true,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": self.pod_cidr}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": self.dir.join("cni-ipam").display().to_string(),
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": true}},
                {"type": "loopback"},
            ],
        })
    }

    /// Writes config.toml and the CNI conflist, creating the directories.
    pub fn write_files(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(self.cni_conf_dir())?;
        std::fs::write(self.config_file(), self.config())?;
        let conflist = serde_json::to_vec_pretty(&self.cni_conflist()).map_err(std::io::Error::other)?;
        std::fs::write(self.cni_conf_dir().join("10-ironkube.conflist"), conflist)
    }

    /// The command that runs this containerd in the foreground.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--config").arg(self.config_file());
        cmd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_stays_under_the_directory() {
        let c = Containerd::new(Path::new("/data/node"), "10.244.0.0/24");
        let config = c.config();
        for line in ["root = \"/data/node/root\"", "address = \"/data/node/containerd.sock\"", "restrict_oom_score_adj = true", "conf_dir = \"/data/node/cni\""] {
            assert!(config.contains(line), "{line} missing from\n{config}");
        }
        assert!(!config.contains("/run/containerd"), "{config}");
        assert_eq!(c.endpoint(), "unix:///data/node/containerd.sock");
        assert_eq!(c.cni_conflist()["plugins"][0]["ipam"]["ranges"][0][0]["subnet"], "10.244.0.0/24");
    }
}
