//! The one loop shape every controller uses: kube-runtime's `Controller` (watcher state
//! machine, reflector cache, deduplicating queue with back-off) driving a reconcile function,
//! stopped by a token. Reconcile spans carry the controller and the object key.

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::controller::{Action, Controller};
use kube::Resource;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// Retry delay after a failed reconcile.
pub const RETRY: Duration = Duration::from_secs(5);

/// Runs `controller` with `reconcile` until `stop`.
pub async fn drive<K, Ctx, E, F, Fut>(name: &'static str, controller: Controller<K>, ctx: Arc<Ctx>, reconcile: F, stop: CancellationToken)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone + Debug + Unpin + Default,
    Ctx: Send + Sync + 'static,
    E: std::error::Error + Send + Sync + 'static,
    F: FnMut(Arc<K>, Arc<Ctx>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<Action, E>> + Send + 'static,
{
    let error_policy = move |_obj: Arc<K>, err: &E, _ctx: Arc<Ctx>| {
        warn!(controller = name, error = %err, "reconcile failed; retrying");
        Action::requeue(RETRY)
    };
    controller
        .graceful_shutdown_on(async move { stop.cancelled().await })
        .run(reconcile, error_policy, ctx)
        .for_each(|_| async {})
        .await;
}
