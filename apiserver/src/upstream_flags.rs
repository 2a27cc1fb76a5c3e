//! Upstream kube-apiserver's command-line flags, so that a command line written for it
//! (a kubeadm static-pod manifest, a systemd unit) starts ironkube's API server too.
//!
//! [`KUBE_APISERVER`] names every flag of kube-apiserver v1.33 (and a few neighbours from
//! the releases either side) and whether it takes a value. [`prefilter`] runs before clap:
//! a flag that upstream has but our [`crate::Options`] does not is removed, with its value,
//! and logged as ignored; a flag neither knows is left for clap to reject. As options gain
//! flags they stop being filtered, because what counts as implemented is read from the
//! clap command itself.
//!
//! Value syntax follows pflag, the Go flag library upstream uses: `--name=value` or
//! `--name value` for flags that take one (the next argument is the value whatever it looks
//! like); boolean flags are `--name` or `--name=false`, and never consume the next
//! argument; `-v` is the one shorthand (`-v 4`, `-v=4`, `-v4`); `--` ends the flags.

use std::collections::HashMap;
use std::ffi::OsString;

/// One upstream flag: its long name (without `--`) and whether it needs a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpstreamFlag {
    pub name: &'static str,
    /// `false` for booleans (and `--version`), whose value may only follow an `=`.
    pub takes_value: bool,
}

const fn value(name: &'static str) -> UpstreamFlag {
    UpstreamFlag {
        name,
        takes_value: true,
    }
}

const fn switch(name: &'static str) -> UpstreamFlag {
    UpstreamFlag {
        name,
        takes_value: false,
    }
}

/// kube-apiserver v1.33's flags, grouped as its `--help` groups them.
pub const KUBE_APISERVER: &[UpstreamFlag] = &[
    // generic
    value("advertise-address"),
    switch("aggregator-reject-forwarding-redirect"),
    value("cors-allowed-origins"),
    value("coordinated-leadership-lease-duration"),
    value("coordinated-leadership-renew-deadline"),
    value("coordinated-leadership-retry-period"),
    value("default-not-ready-toleration-seconds"),
    value("default-unreachable-toleration-seconds"),
    value("emulated-version"),
    switch("emulation-forward-compatible"),
    switch("enable-priority-and-fairness"),
    value("external-hostname"),
    value("feature-gates"),
    value("goaway-chance"),
    value("livez-grace-period"),
    value("max-mutating-requests-inflight"),
    value("max-requests-inflight"),
    value("min-compatibility-version"),
    value("min-request-timeout"),
    value("request-timeout"),
    switch("runtime-config-emulation-forward-compatible"),
    value("shutdown-delay-duration"),
    switch("shutdown-send-retry-after"),
    value("shutdown-watch-termination-grace-period"),
    value("storage-initialization-timeout"),
    value("strict-transport-security-directives"),
    // etcd
    value("delete-collection-workers"),
    switch("enable-garbage-collector"),
    value("encryption-provider-config"),
    switch("encryption-provider-config-automatic-reload"),
    value("etcd-cafile"),
    value("etcd-certfile"),
    value("etcd-compaction-interval"),
    value("etcd-count-metric-poll-period"),
    value("etcd-db-metric-poll-interval"),
    value("etcd-healthcheck-timeout"),
    value("etcd-keyfile"),
    value("etcd-prefix"),
    value("etcd-readycheck-timeout"),
    value("etcd-servers"),
    value("etcd-servers-overrides"),
    value("lease-reuse-duration-seconds"),
    value("storage-backend"),
    value("storage-media-type"),
    switch("watch-cache"),
    value("watch-cache-sizes"),
    // secure serving
    value("bind-address"),
    value("cert-dir"),
    switch("disable-http2-serving"),
    value("http2-max-streams-per-connection"),
    switch("permit-address-sharing"),
    switch("permit-port-sharing"),
    value("secure-port"),
    value("tls-cert-file"),
    value("tls-cipher-suites"),
    value("tls-min-version"),
    value("tls-private-key-file"),
    value("tls-sni-cert-key"),
    // auditing
    value("audit-log-batch-buffer-size"),
    value("audit-log-batch-max-size"),
    value("audit-log-batch-max-wait"),
    value("audit-log-batch-throttle-burst"),
    switch("audit-log-batch-throttle-enable"),
    value("audit-log-batch-throttle-qps"),
    switch("audit-log-compress"),
    value("audit-log-format"),
    value("audit-log-maxage"),
    value("audit-log-maxbackup"),
    value("audit-log-maxsize"),
    value("audit-log-mode"),
    value("audit-log-path"),
    switch("audit-log-truncate-enabled"),
    value("audit-log-truncate-max-batch-size"),
    value("audit-log-truncate-max-event-size"),
    value("audit-log-version"),
    value("audit-policy-file"),
    value("audit-webhook-batch-buffer-size"),
    value("audit-webhook-batch-max-size"),
    value("audit-webhook-batch-max-wait"),
    value("audit-webhook-batch-throttle-burst"),
    switch("audit-webhook-batch-throttle-enable"),
    value("audit-webhook-batch-throttle-qps"),
    value("audit-webhook-config-file"),
    value("audit-webhook-initial-backoff"),
    value("audit-webhook-mode"),
    switch("audit-webhook-truncate-enabled"),
    value("audit-webhook-truncate-max-batch-size"),
    value("audit-webhook-truncate-max-event-size"),
    value("audit-webhook-version"),
    // features
    switch("contention-profiling"),
    value("debug-socket-path"),
    switch("profiling"),
    // authentication
    switch("anonymous-auth"),
    value("api-audiences"),
    value("authentication-config"),
    value("authentication-token-webhook-cache-ttl"),
    value("authentication-token-webhook-config-file"),
    value("authentication-token-webhook-version"),
    value("client-ca-file"),
    switch("enable-bootstrap-token-auth"),
    value("oidc-ca-file"),
    value("oidc-client-id"),
    value("oidc-groups-claim"),
    value("oidc-groups-prefix"),
    value("oidc-issuer-url"),
    value("oidc-required-claim"),
    value("oidc-signing-algs"),
    value("oidc-username-claim"),
    value("oidc-username-prefix"),
    value("requestheader-allowed-names"),
    value("requestheader-client-ca-file"),
    value("requestheader-extra-headers-prefix"),
    value("requestheader-group-headers"),
    value("requestheader-uid-headers"),
    value("requestheader-username-headers"),
    switch("service-account-extend-token-expiration"),
    value("service-account-issuer"),
    value("service-account-jwks-uri"),
    value("service-account-key-file"),
    switch("service-account-lookup"),
    value("service-account-max-token-expiration"),
    value("service-account-signing-endpoint"),
    value("token-auth-file"),
    // authorization
    value("authorization-config"),
    value("authorization-mode"),
    value("authorization-policy-file"),
    value("authorization-webhook-cache-authorized-ttl"),
    value("authorization-webhook-cache-unauthorized-ttl"),
    value("authorization-webhook-config-file"),
    value("authorization-webhook-version"),
    // API enablement, egress selector, admission
    value("runtime-config"),
    value("egress-selector-config-file"),
    value("admission-control"),
    value("admission-control-config-file"),
    value("disable-admission-plugins"),
    value("enable-admission-plugins"),
    // metrics, logs, traces
    value("allow-metric-labels"),
    value("allow-metric-labels-manifest"),
    value("disabled-metrics"),
    value("show-hidden-metrics-for-version"),
    value("log-flush-frequency"),
    value("log-json-info-buffer-size"),
    switch("log-json-split-stream"),
    value("log-text-info-buffer-size"),
    switch("log-text-split-stream"),
    value("logging-format"),
    value("v"),
    value("vmodule"),
    value("tracing-config-file"),
    // kube-apiserver's own
    switch("allow-privileged"),
    value("apiserver-count"),
    value("cloud-config"),
    value("cloud-provider"),
    switch("enable-aggregator-routing"),
    switch("enable-logs-handler"),
    value("endpoint-reconciler-type"),
    value("event-ttl"),
    value("identity-lease-duration-seconds"),
    value("identity-lease-renew-interval-seconds"),
    value("kubelet-certificate-authority"),
    value("kubelet-client-certificate"),
    value("kubelet-client-key"),
    value("kubelet-preferred-address-types"),
    value("kubelet-timeout"),
    value("kubernetes-service-node-port"),
    value("max-connection-bytes-per-sec"),
    value("peer-advertise-ip"),
    value("peer-advertise-port"),
    value("peer-ca-file"),
    value("proxy-client-cert-file"),
    value("proxy-client-key-file"),
    value("service-account-signing-key-file"),
    value("service-cluster-ip-range"),
    value("service-node-port-range"),
    // global
    switch("help"),
    switch("version"),
];

/// The one single-letter shorthand upstream has besides `-h`: `-v` for `--v`.
const SHORTHANDS: &[(char, &str)] = &[('v', "v")];

/// Looks up an upstream flag by its long name.
pub fn upstream(name: &str) -> Option<&'static UpstreamFlag> {
    KUBE_APISERVER.iter().find(|f| f.name == name)
}

/// A flag [`filter`] removed, with the value it had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    pub flag: String,
    pub value: Option<String>,
}

/// The flags a clap command understands: long names, aliases and shorthands (as
/// one-letter strings), each with whether it takes a value.
pub fn implemented(cmd: &clap::Command) -> HashMap<String, bool> {
    let mut cmd = cmd.clone();
    cmd.build();
    let mut known = HashMap::new();
    for arg in cmd.get_arguments() {
        let takes_value = arg.get_action().takes_values();
        for long in arg.get_long_and_visible_aliases().into_iter().flatten() {
            known.insert(long.to_string(), takes_value);
        }
        if let Some(aliases) = arg.get_all_aliases() {
            for long in aliases {
                known.insert(long.to_string(), takes_value);
            }
        }
        if let Some(short) = arg.get_short() {
            known.insert(short.to_string(), takes_value);
        }
    }
    known
}

/// Splits `args` (without the program name) into the arguments to hand to clap and the
/// upstream flags that `implemented` does not know.
pub fn filter(
    args: Vec<OsString>,
    implemented: &HashMap<String, bool>,
) -> (Vec<OsString>, Vec<Ignored>) {
    let mut kept = Vec::with_capacity(args.len());
    let mut ignored = Vec::new();
    let mut rest = args.into_iter();
    while let Some(arg) = rest.next() {
        let Some(text) = arg.to_str().map(str::to_owned) else {
            kept.push(arg);
            continue;
        };
        if text == "--" {
            kept.push(arg);
            kept.extend(rest.by_ref());
            break;
        }
        let (name, inline_value) = if let Some(long) = text.strip_prefix("--") {
            match long.split_once('=') {
                Some((name, value)) => (name.to_string(), Some(value.to_string())),
                None => (long.to_string(), None),
            }
        } else if let Some(short) = text.strip_prefix('-').filter(|s| !s.is_empty()) {
            let mut chars = short.chars();
            let letter = chars.next().unwrap_or_default();
            let tail = chars.as_str();
            if implemented.contains_key(&letter.to_string()) {
                // clap's own shorthand: it handles the value itself.
                kept.push(arg);
                if implemented.get(&letter.to_string()) == Some(&true) && tail.is_empty() {
                    kept.extend(rest.next());
                }
                continue;
            }
            match SHORTHANDS.iter().find(|(c, _)| *c == letter) {
                Some((_, long)) => {
                    let value = tail.strip_prefix('=').unwrap_or(tail);
                    let value = (!tail.is_empty()).then(|| value.to_string());
                    (long.to_string(), value)
                }
                None => {
                    kept.push(arg);
                    continue;
                }
            }
        } else {
            kept.push(arg);
            continue;
        };

        if let Some(&takes_value) = implemented.get(&name) {
            kept.push(arg);
            if takes_value && inline_value.is_none() {
                kept.extend(rest.next());
            }
            continue;
        }
        match upstream(&name) {
            Some(flag) => {
                let value = match inline_value {
                    Some(v) => Some(v),
                    None if flag.takes_value => {
                        rest.next().map(|v| v.to_string_lossy().into_owned())
                    }
                    None => None,
                };
                ignored.push(Ignored { flag: name, value });
            }
            None => kept.push(arg),
        }
    }
    (kept, ignored)
}

/// Removes the upstream flags `cmd` does not implement from a full `argv` (program name
/// first), logging a warning for each; everything else is returned for clap to parse.
pub fn prefilter(argv: impl IntoIterator<Item = OsString>, cmd: &clap::Command) -> Vec<OsString> {
    let mut argv = argv.into_iter();
    let program = argv.next();
    let (kept, ignored) = filter(argv.collect(), &implemented(cmd));
    for Ignored { flag, value } in &ignored {
        match value {
            Some(value) => {
                tracing::warn!(flag = %format!("--{flag}"), %value, "ignoring kube-apiserver flag that ironkube does not implement")
            }
            None => {
                tracing::warn!(flag = %format!("--{flag}"), "ignoring kube-apiserver flag that ironkube does not implement")
            }
        }
    }
    program.into_iter().chain(kept).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Args, FromArgMatches};

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    fn known() -> HashMap<String, bool> {
        HashMap::from([
            ("secure-port".to_string(), true),
            ("etcd-servers".to_string(), true),
            ("help".to_string(), false),
            ("h".to_string(), false),
        ])
    }

    fn run(args: &[&str]) -> (Vec<String>, Vec<Ignored>) {
        let (kept, ignored) = filter(os(args), &known());
        let kept = kept
            .into_iter()
            .map(|a| a.into_string().expect("utf8"))
            .collect();
        (kept, ignored)
    }

    fn ignored(flag: &str, value: Option<&str>) -> Ignored {
        Ignored {
            flag: flag.to_string(),
            value: value.map(str::to_string),
        }
    }

    #[test]
    fn value_flags_are_removed_with_their_value() {
        let cases: &[(&[&str], &[&str], Vec<Ignored>)] = &[
            (
                &["--audit-log-path=/var/log/audit", "--secure-port=1"],
                &["--secure-port=1"],
                vec![ignored("audit-log-path", Some("/var/log/audit"))],
            ),
            (
                &["--audit-log-path", "/var/log/audit", "--secure-port", "1"],
                &["--secure-port", "1"],
                vec![ignored("audit-log-path", Some("/var/log/audit"))],
            ),
            // pflag takes the next argument as the value, whatever it looks like.
            (
                &["--vmodule", "--secure-port", "--etcd-servers", "x"],
                &["--etcd-servers", "x"],
                vec![ignored("vmodule", Some("--secure-port"))],
            ),
            (&["--event-ttl"], &[], vec![ignored("event-ttl", None)]),
        ];
        for (args, want_kept, want_ignored) in cases {
            let (kept, got) = run(args);
            assert_eq!(kept, *want_kept, "{args:?}");
            assert_eq!(got, *want_ignored, "{args:?}");
        }
    }

    #[test]
    fn boolean_flags_never_take_the_next_argument() {
        let (kept, got) = run(&["--profiling", "--secure-port=1"]);
        assert_eq!(kept, ["--secure-port=1"]);
        assert_eq!(got, [ignored("profiling", None)]);

        let (kept, got) = run(&["--profiling=false", "--allow-privileged=true"]);
        assert!(kept.is_empty());
        assert_eq!(
            got,
            [
                ignored("profiling", Some("false")),
                ignored("allow-privileged", Some("true"))
            ]
        );

        // `--profiling false` is a flag and a stray argument, as in pflag.
        let (kept, _) = run(&["--profiling", "false"]);
        assert_eq!(kept, ["false"]);
    }

    #[test]
    fn verbosity_shorthand() {
        for args in [
            &["-v", "4"][..],
            &["-v=4"],
            &["-v4"],
            &["--v=4"],
            &["--v", "4"],
        ] {
            let (kept, got) = run(args);
            assert!(kept.is_empty(), "{args:?}");
            assert_eq!(got, [ignored("v", Some("4"))], "{args:?}");
        }
    }

    #[test]
    fn unknown_and_implemented_flags_are_left_for_clap() {
        let (kept, got) = run(&[
            "--no-such-flag=1",
            "--secure-port",
            "--weird",
            "-x",
            "-h",
            "pos",
        ]);
        assert_eq!(
            kept,
            [
                "--no-such-flag=1",
                "--secure-port",
                "--weird",
                "-x",
                "-h",
                "pos"
            ]
        );
        assert!(got.is_empty());

        let (kept, got) = run(&["--", "--profiling"]);
        assert_eq!(kept, ["--", "--profiling"]);
        assert!(got.is_empty());
    }

    #[test]
    fn implemented_reads_the_clap_command() {
        let cmd = crate::Options::augment_args(clap::Command::new("t"));
        let known = implemented(&cmd);
        assert_eq!(known.get("etcd-servers"), Some(&true));
        assert_eq!(known.get("secure-port"), Some(&true));
        assert_eq!(known.get("help"), Some(&false));
        assert!(!known.contains_key("profiling"));
    }

    #[test]
    fn every_flag_is_listed_once_and_every_option_is_upstream() {
        let mut names: Vec<_> = KUBE_APISERVER.iter().map(|f| f.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "duplicate flag names");

        let cmd = crate::Options::augment_args(clap::Command::new("t"));
        for arg in cmd.get_arguments() {
            if let Some(long) = arg.get_long() {
                assert!(
                    upstream(long).is_some(),
                    "--{long} is not a kube-apiserver flag"
                );
            }
        }
    }

    /// The command line kubeadm v1.33 writes into its kube-apiserver static pod manifest.
    const KUBEADM_MANIFEST: &[&str] = &[
        "kube-apiserver",
        "--advertise-address=192.168.10.5",
        "--allow-privileged=true",
        "--authorization-mode=Node,RBAC",
        "--client-ca-file=/etc/kubernetes/pki/ca.crt",
        "--enable-admission-plugins=NodeRestriction",
        "--enable-bootstrap-token-auth=true",
        "--etcd-cafile=/etc/kubernetes/pki/etcd/ca.crt",
        "--etcd-certfile=/etc/kubernetes/pki/apiserver-etcd-client.crt",
        "--etcd-keyfile=/etc/kubernetes/pki/apiserver-etcd-client.key",
        "--etcd-servers=https://127.0.0.1:2379",
        "--kubelet-client-certificate=/etc/kubernetes/pki/apiserver-kubelet-client.crt",
        "--kubelet-client-key=/etc/kubernetes/pki/apiserver-kubelet-client.key",
        "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
        "--proxy-client-cert-file=/etc/kubernetes/pki/front-proxy-client.crt",
        "--proxy-client-key-file=/etc/kubernetes/pki/front-proxy-client.key",
        "--requestheader-allowed-names=front-proxy-client",
        "--requestheader-client-ca-file=/etc/kubernetes/pki/front-proxy-ca.crt",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-username-headers=X-Remote-User",
        "--secure-port=6443",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        "--service-account-key-file=/etc/kubernetes/pki/sa.pub",
        "--service-account-signing-key-file=/etc/kubernetes/pki/sa.key",
        "--service-cluster-ip-range=10.96.0.0/12",
        "--tls-cert-file=/etc/kubernetes/pki/apiserver.crt",
        "--tls-private-key-file=/etc/kubernetes/pki/apiserver.key",
    ];

    #[test]
    fn a_kubeadm_manifest_parses() {
        let cmd = crate::Options::augment_args(clap::Command::new("kube-apiserver"));
        let argv = prefilter(os(KUBEADM_MANIFEST), &cmd);
        let matches = cmd
            .try_get_matches_from(argv)
            .expect("kubeadm's flags parse");
        let opts = crate::Options::from_arg_matches(&matches).expect("options");
        assert_eq!(opts.etcd_servers, ["https://127.0.0.1:2379"]);
        assert_eq!(opts.secure_port, 6443);
        assert_eq!(
            opts.tls_cert_file.as_deref(),
            Some(std::path::Path::new("/etc/kubernetes/pki/apiserver.crt"))
        );
        assert_eq!(
            opts.advertise_address,
            Some("192.168.10.5".parse().expect("ip"))
        );
    }

    #[test]
    fn a_truly_unknown_flag_is_still_rejected() {
        let cmd = crate::Options::augment_args(clap::Command::new("kube-apiserver"));
        let argv = prefilter(
            os(&["kube-apiserver", "--etcd-servers=x", "--bogus-flag=1"]),
            &cmd,
        );
        assert!(cmd.try_get_matches_from(argv).is_err());
    }
}
