//! `ironkube up` end to end: it becomes ready, stock kubectl reaches it, it stops cleanly
//! and comes back on the same data dir, and it can use an etcd it did not start.

mod support;

use support::{Ironkube, KUBECTL_VERSIONS, TestEtcd, eventually, listening};

#[derive(serde::Deserialize)]
struct Ports {
    client: u16,
    peer: u16,
}

fn etcd_ports(data_dir: &std::path::Path) -> Ports {
    let bytes = std::fs::read(data_dir.join("etcd-ports.json")).expect("etcd-ports.json");
    serde_json::from_slice(&bytes).expect("etcd-ports.json parses")
}

/// `kubectl version` from every supported kubectl shows a v1.33 server.
fn assert_kubectl_sees_the_server(cluster: &Ironkube) {
    for version in KUBECTL_VERSIONS {
        let stdout = cluster.kubectl_ok(version, &["version"]);
        assert!(
            stdout.contains(&format!("Client Version: v{version}.")),
            "kubectl {version} version:\n{stdout}"
        );
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("Server Version: v1.33.")),
            "kubectl {version} version printed no v1.33 server version:\n{stdout}\n{}",
            cluster.log_tail()
        );
    }
}

#[test]
fn up_becomes_ready_and_kubectl_reaches_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let cluster = Ironkube::up(&data);

    assert!(
        cluster.kubeconfig.is_absolute(),
        "{}",
        cluster.kubeconfig.display()
    );
    assert_eq!(
        cluster.kubeconfig,
        data.canonicalize()
            .expect("data dir")
            .join("admin.kubeconfig")
    );
    for file in ["ca.crt", "ca.key", "apiserver.crt", "apiserver.key"] {
        assert!(data.join("pki").join(file).is_file(), "missing pki/{file}");
    }
    assert_kubectl_sees_the_server(&cluster);

    let etcd = etcd_ports(&data);
    let status = cluster.stop();
    assert!(status.success(), "ironkube exited with {status}");
    assert!(
        !listening(etcd.client),
        "etcd still listens after ironkube stopped"
    );
}

#[test]
fn restart_on_the_same_data_dir() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");

    let first = Ironkube::up(&data);
    first.kubectl_ok("1.33", &["version"]);
    let ca = std::fs::read(data.join("pki/ca.crt")).expect("ca.crt");
    let kubeconfig = std::fs::read(&first.kubeconfig).expect("kubeconfig");
    let ports = etcd_ports(&data);
    let status = first.stop();
    assert!(status.success(), "first ironkube exited with {status}");
    eventually("etcd stopped with ironkube", || {
        if listening(ports.client) || listening(ports.peer) {
            Err("etcd still listens".to_string())
        } else {
            Ok(())
        }
    });

    let second = Ironkube::up(&data);
    assert_eq!(
        std::fs::read(data.join("pki/ca.crt")).expect("ca.crt"),
        ca,
        "the CA changed"
    );
    let again = etcd_ports(&data);
    assert_eq!(
        (again.client, again.peer),
        (ports.client, ports.peer),
        "etcd moved"
    );
    // The admin credentials and the CA in the kubeconfig survive the restart.
    let parse = |bytes: &[u8]| -> serde_json::Value {
        serde_saphyr::from_str(std::str::from_utf8(bytes).expect("utf8"))
            .expect("kubeconfig is YAML")
    };
    let before = parse(&kubeconfig);
    let after = parse(&std::fs::read(&second.kubeconfig).expect("kubeconfig"));
    assert_eq!(before["users"], after["users"]);
    assert_eq!(
        before["clusters"][0]["cluster"]["certificate-authority-data"],
        after["clusters"][0]["cluster"]["certificate-authority-data"]
    );
    assert_kubectl_sees_the_server(&second);
    assert!(second.stop().success());
}

#[test]
fn up_uses_an_external_etcd() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let etcd = TestEtcd::start(&tmp.path().join("etcd"));
    let data = tmp.path().join("data");
    let cluster = Ironkube::up_with(&data, &["--etcd-servers", &etcd.client_url]);
    assert_kubectl_sees_the_server(&cluster);
    assert!(!data.join("etcd").exists(), "up started its own etcd");
    assert!(cluster.stop().success());
    assert!(listening(etcd.client_port), "the external etcd was stopped");
}
