//! `csrcleaner` (upstream's `cleaner.go`): once an hour, deletes requests that are done
//! with: issued certificates that expired, and requests approved and issued, denied or
//! failed more than an hour ago, or pending for more than a day.

use std::time::Duration;

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, DeleteParams, ListParams};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use super::{has_condition, is_issued};

pub const NAME: &str = "csrcleaner";

const POLLING_INTERVAL: Duration = Duration::from_secs(3600);
const APPROVED_EXPIRATION: SignedDuration = SignedDuration::from_hours(1);
const DENIED_EXPIRATION: SignedDuration = SignedDuration::from_hours(1);
const FAILED_EXPIRATION: SignedDuration = SignedDuration::from_hours(1);
const PENDING_EXPIRATION: SignedDuration = SignedDuration::from_hours(24);

/// When the condition `type_` was last updated (its transition time when it has none).
fn condition_time(csr: &CertificateSigningRequest, type_: &str) -> Option<Timestamp> {
    let conditions = csr.status.as_ref()?.conditions.as_ref()?;
    let c = conditions.iter().find(|c| c.type_ == type_)?;
    c.last_update_time.as_ref().or(c.last_transition_time.as_ref()).map(|t| t.0)
}

fn past(at: Option<Timestamp>, after: SignedDuration, now: Timestamp) -> bool {
    at.and_then(|t| t.checked_add(after).ok()).is_some_and(|deadline| deadline < now)
}

/// When the issued certificate stops being valid.
fn certificate_expiry(csr: &CertificateSigningRequest) -> Option<Timestamp> {
    let pem = csr.status.as_ref()?.certificate.as_ref()?;
    let (_, block) = x509_parser::pem::parse_x509_pem(&pem.0).ok()?;
    let cert = block.parse_x509().ok()?;
    Timestamp::from_second(cert.validity().not_after.timestamp()).ok()
}

/// Whether the cleaner deletes `csr` at `now`.
pub fn is_expired(csr: &CertificateSigningRequest, now: Timestamp) -> bool {
    let approved = has_condition(csr, "Approved");
    let denied = has_condition(csr, "Denied");
    let failed = has_condition(csr, "Failed");
    let issued = is_issued(csr);
    if issued && certificate_expiry(csr).is_some_and(|end| end < now) {
        return true;
    }
    if approved && issued && past(condition_time(csr, "Approved"), APPROVED_EXPIRATION, now) {
        return true;
    }
    if denied && past(condition_time(csr, "Denied"), DENIED_EXPIRATION, now) {
        return true;
    }
    if failed && past(condition_time(csr, "Failed"), FAILED_EXPIRATION, now) {
        return true;
    }
    let pending = !approved && !denied && !failed && !issued;
    pending && past(csr.metadata.creation_timestamp.as_ref().map(|t| t.0), PENDING_EXPIRATION, now)
}

pub async fn run(client: kube::Client, stop: CancellationToken) {
    info!("starting the certificate signing request cleaner");
    let api: Api<CertificateSigningRequest> = Api::all(client);
    loop {
        match api.list(&ListParams::default()).await {
            Ok(list) => {
                let now = Timestamp::now();
                for csr in list.items.iter().filter(|c| is_expired(c, now)) {
                    let name = csr.metadata.name.as_deref().unwrap_or("");
                    match api.delete(name, &DeleteParams::default()).await {
                        Ok(_) => info!(csr = name, "deleted an old certificate signing request"),
                        Err(e) => debug!(csr = name, error = %e, "deleting an old certificate signing request"),
                    }
                }
            }
            Err(e) => debug!(error = %e, "listing certificate signing requests"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(POLLING_INTERVAL) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn csr(created: &str, conditions: serde_json::Value, certificate: Option<&str>) -> CertificateSigningRequest {
        let mut status = json!({"conditions": conditions});
        if let Some(c) = certificate {
            status["certificate"] = json!(c);
        }
        serde_json::from_value(json!({"metadata": {"name": "c", "creationTimestamp": created}, "spec": {"request": "", "signerName": "x/y"}, "status": status})).expect("csr")
    }

    #[test]
    fn deadlines_as_upstream() {
        let now: Timestamp = "2025-01-02T12:00:00Z".parse().expect("now");
        let cert = "Y2VydA=="; // not a certificate: only the approval time counts
        let cases = [
            ("pending, young", csr("2025-01-02T00:00:00Z", json!([]), None), false),
            ("pending, a day old", csr("2025-01-01T11:00:00Z", json!([]), None), true),
            ("denied just now", csr("2025-01-02T11:30:00Z", json!([{"type": "Denied", "status": "True", "lastUpdateTime": "2025-01-02T11:30:00Z"}]), None), false),
            ("denied long ago", csr("2025-01-02T10:00:00Z", json!([{"type": "Denied", "status": "True", "lastUpdateTime": "2025-01-02T10:00:00Z"}]), None), true),
            ("failed long ago", csr("2025-01-02T10:00:00Z", json!([{"type": "Approved", "status": "True", "lastUpdateTime": "2025-01-02T10:00:00Z"}, {"type": "Failed", "status": "True", "lastUpdateTime": "2025-01-02T10:00:00Z"}]), None), true),
            ("approved, not issued", csr("2025-01-02T10:00:00Z", json!([{"type": "Approved", "status": "True", "lastUpdateTime": "2025-01-02T10:00:00Z"}]), None), false),
            ("approved and issued long ago", csr("2025-01-02T10:00:00Z", json!([{"type": "Approved", "status": "True", "lastUpdateTime": "2025-01-02T10:00:00Z"}]), Some(cert)), true),
        ];
        for (what, c, want) in cases {
            assert_eq!(is_expired(&c, now), want, "{what}");
        }
    }
}
