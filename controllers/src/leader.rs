//! Leader election on a `coordination.k8s.io/v1` Lease, with client-go's semantics: a
//! candidate takes the Lease when it is absent or its holder stopped renewing for a lease
//! duration; the leader renews every retry period and gives up once it could not renew
//! within the renew deadline.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

#[derive(Debug, Clone)]
pub struct Config {
    pub namespace: String,
    pub name: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

pub struct Elector {
    api: Api<Lease>,
    config: Config,
    identity: String,
}

fn now() -> MicroTime {
    MicroTime(jiff::Timestamp::now())
}

/// This process's identity: `<hostname>_<uuid>` like client-go.
fn identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_else(|_| "ironkube".into());
    format!("{host}_{}", uuid::Uuid::new_v4())
}

impl Elector {
    pub fn new(client: kube::Client, config: Config) -> Self {
        let api = Api::namespaced(client, &config.namespace);
        Elector { api, config, identity: identity() }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// One attempt to acquire or renew; `Ok(true)` when we hold the Lease afterwards.
    async fn try_acquire_or_renew(&self) -> Result<bool, kube::Error> {
        let duration_secs = self.config.lease_duration.as_secs() as i32;
        let existing = self.api.get_opt(&self.config.name).await?;
        let Some(mut lease) = existing else {
            let lease = Lease {
                metadata: ObjectMeta { name: Some(self.config.name.clone()), namespace: Some(self.config.namespace.clone()), ..Default::default() },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(duration_secs),
                    acquire_time: Some(now()),
                    renew_time: Some(now()),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let mine = holder == self.identity;
        let expired = match (&spec.renew_time, spec.lease_duration_seconds) {
            (Some(renewed), Some(d)) => jiff::Timestamp::now() > renewed.0 + jiff::SignedDuration::from_secs(d as i64),
            _ => true,
        };
        if !mine && !holder.is_empty() && !expired {
            return Ok(false);
        }
        let mut new_spec = spec.clone();
        new_spec.holder_identity = Some(self.identity.clone());
        new_spec.lease_duration_seconds = Some(duration_secs);
        new_spec.renew_time = Some(now());
        if !mine {
            new_spec.acquire_time = Some(now());
            new_spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        lease.spec = Some(new_spec);
        match self.api.replace(&self.config.name, &PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Waits until this process leads (or `shutdown`); then keeps renewing in the background.
    /// Returns a token cancelled when leadership is lost, or `None` on shutdown.
    pub async fn acquire(self, shutdown: &CancellationToken) -> Result<Option<CancellationToken>, kube::Error> {
        info!(lease = %format!("{}/{}", self.config.namespace, self.config.name), identity = %self.identity, "attempting to acquire leader lease");
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => warn!(error = %e, "acquiring the leader lease"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(None),
                _ = tokio::time::sleep(self.config.retry_period) => {}
            }
        }
        info!(identity = %self.identity, "successfully acquired lease");
        let lost = CancellationToken::new();
        let lost_tx = lost.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let mut last_renew = tokio::time::Instant::now();
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(self.config.retry_period) => {}
                }
                match self.try_acquire_or_renew().await {
                    Ok(true) => last_renew = tokio::time::Instant::now(),
                    Ok(false) => {
                        warn!("another candidate holds the lease");
                        lost_tx.cancel();
                        return;
                    }
                    Err(e) => warn!(error = %e, "renewing the leader lease"),
                }
                if last_renew.elapsed() > self.config.renew_deadline {
                    warn!("failed to renew the lease within the renew deadline");
                    lost_tx.cancel();
                    return;
                }
            }
        });
        Ok(Some(lost))
    }
}
