//! Service account tokens: `kubectl create token` (the TokenRequest API) issues a signed
//! token, a TokenReview of it names the account, the token authenticates requests as the
//! account, a token that does not verify gets 401, and durations under ten minutes are
//! refused with upstream's message.

mod support;

use support::{Ironkube, describe};

const KUBECTL: &str = "1.33";

#[test]
fn token_request_review_and_bearer_authentication() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cluster = Ironkube::up(&tmp.path().join("data"));
    cluster.kubectl_ok(KUBECTL, &["create", "serviceaccount", "robot"]);
    let token = cluster.kubectl_ok(KUBECTL, &["create", "token", "robot"]).trim().to_string();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");

    let review = tmp.path().join("review.json");
    std::fs::write(&review, format!(r#"{{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{{"token":"{token}"}}}}"#)).expect("writing the review");
    let status = cluster.kubectl_ok(KUBECTL, &["create", "-f", &review.display().to_string(), "-o", "jsonpath={.status.authenticated} {.status.user.username} {.status.audiences}"]);
    assert_eq!(status, r#"true system:serviceaccount:default:robot ["https://kubernetes.default.svc.cluster.local"]"#);

    let server = format!("--server=https://127.0.0.1:{}", cluster.secure_port);
    let as_robot = |t: &str| cluster.kubectl(KUBECTL, &["--kubeconfig=/dev/null", &server, "--insecure-skip-tls-verify", &format!("--token={t}"), "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"]);
    let out = as_robot(&token);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "system:serviceaccount:default:robot");
    let mut forged = token.clone();
    forged.truncate(forged.len() - 4);
    forged.push_str("AAAA");
    let out = as_robot(&forged);
    assert!(!out.status.success());
    assert!(describe(&out).contains("Unauthorized"), "{}", describe(&out));

    cluster.kubectl_ok(KUBECTL, &["delete", "serviceaccount", "robot"]);
    let status = cluster.kubectl_ok(KUBECTL, &["create", "-f", &review.display().to_string(), "-o", "jsonpath={.status.authenticated}"]);
    assert_eq!(status, "false", "a deleted account's token no longer reviews");

    let out = cluster.kubectl(KUBECTL, &["create", "token", "default", "--duration=5m"]);
    assert!(describe(&out).contains("spec.expirationSeconds: Invalid value: 300: may not specify a duration less than 10 minutes"), "{}", describe(&out));
}
