//! `csrapproving` (upstream's `sarapprove.go`): a kubelet client request (signer
//! `kubernetes.io/kube-apiserver-client-kubelet`, subject `system:node:<name>` in
//! `system:nodes`, client usages, no SANs) is approved when a SubjectAccessReview for its
//! requester allows `create` on `certificatesigningrequests/selfnodeclient` (the node's own
//! name) or `certificatesigningrequests/nodeclient` (any node).

use std::sync::Arc;

use k8s_openapi::api::authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec};
use k8s_openapi::api::certificates::v1::{CertificateSigningRequest, CertificateSigningRequestCondition, CertificateSigningRequestStatus};
use kube::api::{Api, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, instrument};

use super::{KUBE_APISERVER_CLIENT_KUBELET, Request, has_condition, is_issued, parse_request, validate_kubelet_client};

pub const NAME: &str = "csrapproving";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unable to parse csr {name:?}: {message}")]
    Parse { name: String, message: String },
    #[error("creating a SubjectAccessReview for csr {name:?}: {source}")]
    Review { name: String, #[source] source: kube::Error },
    #[error("error updating approval for csr {name:?}: {source}")]
    Approve { name: String, #[source] source: kube::Error },
}

/// One kind of request the approver recognizes, the permission that approves it and the
/// message it approves it with.
struct Recognizer {
    recognize: fn(&CertificateSigningRequest, &Request) -> bool,
    subresource: &'static str,
    message: &'static str,
}

fn is_node_client(csr: &CertificateSigningRequest, req: &Request) -> bool {
    csr.spec.signer_name == KUBE_APISERVER_CLIENT_KUBELET && validate_kubelet_client(req, csr.spec.usages.as_deref().unwrap_or_default()).is_ok()
}

fn is_self_node_client(csr: &CertificateSigningRequest, req: &Request) -> bool {
    csr.spec.username.as_deref().unwrap_or("") == req.common_name && is_node_client(csr, req)
}

const RECOGNIZERS: &[Recognizer] = &[
    Recognizer { recognize: is_self_node_client, subresource: "selfnodeclient", message: "Auto approving self kubelet client certificate after SubjectAccessReview." },
    Recognizer { recognize: is_node_client, subresource: "nodeclient", message: "Auto approving kubelet client certificate after SubjectAccessReview." },
];

/// The recognizers that apply to `csr`, in upstream's order (which permissions to ask for).
fn applicable(csr: &CertificateSigningRequest, req: &Request) -> Vec<&'static Recognizer> {
    RECOGNIZERS.iter().filter(|r| (r.recognize)(csr, req)).collect()
}

/// The review asking whether the requester of `csr` may `create` the `subresource`.
fn review(csr: &CertificateSigningRequest, subresource: &str) -> SubjectAccessReview {
    SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: csr.spec.username.clone(),
            uid: csr.spec.uid.clone(),
            groups: csr.spec.groups.clone(),
            extra: csr.spec.extra.clone(),
            resource_attributes: Some(ResourceAttributes {
                group: Some("certificates.k8s.io".into()),
                resource: Some("certificatesigningrequests".into()),
                verb: Some("create".into()),
                subresource: Some(subresource.into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    }
}

struct Ctx {
    client: kube::Client,
}

#[instrument(skip_all, fields(controller = NAME, key = csr.metadata.name.as_deref().unwrap_or("")))]
async fn reconcile(csr: Arc<CertificateSigningRequest>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let name = csr.metadata.name.clone().unwrap_or_default();
    if is_issued(&csr) || has_condition(&csr, "Approved") || has_condition(&csr, "Denied") {
        return Ok(Action::await_change());
    }
    let req = parse_request(&csr.spec.request.0).map_err(|message| Error::Parse { name: name.clone(), message })?;
    let reviews: Api<SubjectAccessReview> = Api::all(ctx.client.clone());
    let candidates = applicable(&csr, &req);
    for recognizer in &candidates {
        let answer = reviews.create(&PostParams::default(), &review(&csr, recognizer.subresource)).await.map_err(|source| Error::Review { name: name.clone(), source })?;
        if !answer.status.is_some_and(|s| s.allowed) {
            continue;
        }
        let mut approved = (*csr).clone();
        let status = approved.status.get_or_insert_with(CertificateSigningRequestStatus::default);
        status.conditions.get_or_insert_with(Vec::new).push(CertificateSigningRequestCondition {
            type_: "Approved".into(),
            status: "True".into(),
            reason: Some("AutoApproved".into()),
            message: Some(recognizer.message.into()),
            ..Default::default()
        });
        let api: Api<CertificateSigningRequest> = Api::all(ctx.client.clone());
        api.replace_subresource("approval", &name, &PostParams::default(), &approved).await.map_err(|source| Error::Approve { name: name.clone(), source })?;
        info!(csr = %name, "approved a kubelet client certificate request");
        return Ok(Action::await_change());
    }
    if !candidates.is_empty() {
        let tried: Vec<&str> = candidates.iter().map(|r| r.subresource).collect();
        debug!(csr = %name, ?tried, "recognized the csr but the subject access review was not approved");
        return Ok(Action::requeue(std::time::Duration::from_secs(30)));
    }
    Ok(Action::await_change())
}

pub async fn run(client: kube::Client, stop: CancellationToken) {
    let api: Api<CertificateSigningRequest> = Api::all(client.clone());
    let controller = Controller::new(api, watcher::Config::default());
    info!("starting the certificate signing request approver");
    crate::runtime::drive(NAME, controller, Arc::new(Ctx { client }), reconcile, stop).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn csr(user: &str, signer: &str, usages: &[&str]) -> CertificateSigningRequest {
        serde_json::from_value(json!({"metadata": {"name": "c"}, "spec": {"request": "", "signerName": signer, "usages": usages, "username": user, "groups": ["system:nodes"]}})).expect("csr")
    }

    #[test]
    fn recognizes_kubelet_clients() {
        let req = Request { common_name: "system:node:n1".into(), organizations: vec!["system:nodes".into()], ..Default::default() };
        let usages = ["digital signature", "client auth"];
        let names = |c: &CertificateSigningRequest| applicable(c, &req).iter().map(|r| r.subresource).collect::<Vec<_>>();
        assert_eq!(names(&csr("system:node:n1", KUBE_APISERVER_CLIENT_KUBELET, &usages)), ["selfnodeclient", "nodeclient"]);
        assert_eq!(names(&csr("kubernetes-admin", KUBE_APISERVER_CLIENT_KUBELET, &usages)), ["nodeclient"]);
        assert!(names(&csr("kubernetes-admin", "kubernetes.io/kube-apiserver-client", &usages)).is_empty());
        assert!(names(&csr("kubernetes-admin", KUBE_APISERVER_CLIENT_KUBELET, &["server auth"])).is_empty());
        let sar = review(&csr("u", KUBE_APISERVER_CLIENT_KUBELET, &usages), "nodeclient");
        assert_eq!(sar.spec.user.as_deref(), Some("u"));
        assert_eq!(sar.spec.resource_attributes.and_then(|a| a.subresource).as_deref(), Some("nodeclient"));
    }
}
