//! Who may call the kubelet. Authentication: a client certificate verified against
//! `--client-ca-file` (the TLS layer verifies it); a request without one is anonymous and is
//! refused with 401 unless `--anonymous-auth` (upstream's default without a config file is
//! true). Authorization: AlwaysAllow, upstream's `--authorization-mode` default when no
//! config file sets Webhook; every authenticated request may do everything.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::Kubelet;

/// What the TLS layer learned about the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// A client certificate was presented and verified against the client CA.
    pub certificate: bool,
}

/// Whether a caller may be served.
pub fn allowed(peer: Option<Peer>, anonymous_auth: bool) -> bool {
    peer.is_some_and(|p| p.certificate) || anonymous_auth
}

pub async fn authenticate<R>(State(kubelet): State<Arc<Kubelet<R>>>, req: Request, next: Next) -> Response {
    let peer = req.extensions().get::<Peer>().copied();
    if !allowed(peer, kubelet.anonymous_auth) {
        return super::text(http::StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anonymous_requests_need_anonymous_auth() {
        let cert = Some(Peer { certificate: true });
        let none = Some(Peer { certificate: false });
        let cases = [(cert, false, true), (cert, true, true), (none, true, true), (none, false, false), (None, false, false)];
        for (peer, anonymous, want) in cases {
            assert_eq!(allowed(peer, anonymous), want, "{peer:?} anonymous-auth={anonymous}");
        }
    }
}
