//! The lifecycle every part of `ironkube up` shares: a component is one task that runs
//! until asked to stop, started in order, waited on until ready, and stopped in reverse
//! order.

use std::future::Future;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Why bringing the cluster up ended early without anything failing.
#[derive(Debug, thiserror::Error)]
#[error("interrupted by a signal")]
pub struct Interrupted;

/// A running component: its task, and the token that asks it to stop.
pub struct Running {
    name: &'static str,
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
    /// How long to wait for the task after asking it to stop.
    grace: Duration,
}

impl Running {
    /// Spawns `body`, which must return soon after its token is cancelled.
    pub fn spawn<F, Fut>(name: &'static str, grace: Duration, body: F) -> Self
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let stop = CancellationToken::new();
        let task = tokio::spawn(body(stop.clone()));
        Running {
            name,
            stop,
            task,
            grace,
        }
    }

    async fn stop(mut self) {
        let name = self.name;
        tracing::info!(component = name, "stopping");
        self.stop.cancel();
        match tokio::time::timeout(self.grace, &mut self.task).await {
            Ok(Ok(Ok(()))) => tracing::info!(component = name, "stopped"),
            Ok(Ok(Err(e))) => tracing::warn!(component = name, "stopped with an error: {e:#}"),
            Ok(Err(e)) => tracing::warn!(component = name, "task failed: {e}"),
            Err(_) => {
                tracing::warn!(component = name, grace = ?self.grace, "did not stop in time; aborting");
                self.task.abort();
            }
        }
    }
}

/// A component just spawned, with the future that completes when it is ready to serve
/// (yielding what the next components need to know, such as an address).
pub struct Started<T> {
    pub running: Running,
    pub ready: BoxFuture<'static, anyhow::Result<T>>,
}

/// The components started so far, in order.
#[derive(Default)]
pub struct Stack {
    running: Vec<Running>,
}

impl Stack {
    /// Keeps `started` and waits until it is ready. Fails if it fails first, if any earlier
    /// component exits meanwhile, or with [`Interrupted`] when `shutdown` is cancelled.
    pub async fn start<T>(
        &mut self,
        started: Started<T>,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<T> {
        let Started { running, ready } = started;
        let name = running.name;
        tracing::info!(component = name, "starting");
        self.running.push(running);
        let result = tokio::select! {
            ready = ready => ready,
            _ = shutdown.cancelled() => return Err(Interrupted.into()),
            (exited, result) = self.first_exit() => {
                return Err(exit_error(exited, result)
                    .context(format!("while waiting for {name} to be ready")));
            }
        };
        match result {
            Ok(value) => {
                tracing::info!(component = name, "ready");
                Ok(value)
            }
            Err(e) => {
                // The task usually knows better why it could not get ready.
                if let Some(last) = self.running.last_mut()
                    && let Ok(joined) =
                        tokio::time::timeout(Duration::from_secs(1), &mut last.task).await
                {
                    self.running.pop();
                    let err = match joined {
                        Ok(Err(task_err)) => task_err,
                        Ok(Ok(())) => e,
                        Err(join_err) => anyhow::Error::new(join_err),
                    };
                    return Err(err.context(format!("{name} did not become ready")));
                }
                Err(e.context(format!("{name} did not become ready")))
            }
        }
    }

    /// Completes when any component's task ends, which is always unexpected.
    pub async fn first_exit(&mut self) -> (&'static str, anyhow::Result<()>) {
        if self.running.is_empty() {
            return std::future::pending().await;
        }
        let tasks = self.running.iter_mut().map(|r| &mut r.task);
        let (joined, index, _) = futures::future::select_all(tasks).await;
        let name = self.running[index].name;
        self.running.remove(index);
        let result = joined.unwrap_or_else(|e| Err(anyhow::Error::new(e)));
        (name, result)
    }

    /// Stops every component, the last started first.
    pub async fn stop_all(mut self) {
        while let Some(running) = self.running.pop() {
            running.stop().await;
        }
    }
}

/// The error for a component whose task ended while the cluster needed it.
pub fn exit_error(name: &str, result: anyhow::Result<()>) -> anyhow::Error {
    match result {
        Ok(()) => anyhow::anyhow!("{name} exited unexpectedly"),
        Err(e) => e.context(format!("{name} failed")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn component(
        name: &'static str,
        log: Arc<Mutex<Vec<String>>>,
        fail_after: Option<Duration>,
    ) -> Started<&'static str> {
        let running = Running::spawn(name, Duration::from_secs(5), move |stop| async move {
            match fail_after {
                Some(after) => {
                    tokio::time::sleep(after).await;
                    anyhow::bail!("{name} broke")
                }
                None => {
                    stop.cancelled().await;
                    log.lock().expect("log").push(format!("{name} stopped"));
                    Ok(())
                }
            }
        });
        Started {
            running,
            ready: Box::pin(async move { Ok(name) }),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn components_stop_in_reverse_order() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let shutdown = CancellationToken::new();
        let mut stack = Stack::default();
        for name in ["etcd", "apiserver", "scheduler"] {
            let got = stack
                .start(component(name, log.clone(), None), &shutdown)
                .await
                .expect("ready");
            assert_eq!(got, name);
        }
        stack.stop_all().await;
        assert_eq!(
            *log.lock().expect("log"),
            ["scheduler stopped", "apiserver stopped", "etcd stopped"]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_component_is_reported_by_name() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let shutdown = CancellationToken::new();
        let mut stack = Stack::default();
        stack
            .start(component("etcd", log.clone(), None), &shutdown)
            .await
            .expect("ready");
        stack
            .start(
                component("apiserver", log.clone(), Some(Duration::from_secs(3))),
                &shutdown,
            )
            .await
            .expect("ready");
        let (name, result) = stack.first_exit().await;
        assert_eq!(name, "apiserver");
        assert!(format!("{:#}", exit_error(name, result)).contains("apiserver broke"));
        stack.stop_all().await;
        assert_eq!(*log.lock().expect("log"), ["etcd stopped"]);
    }

    #[tokio::test(start_paused = true)]
    async fn readiness_errors_carry_the_task_error() {
        let shutdown = CancellationToken::new();
        let mut stack = Stack::default();
        let running = Running::spawn("apiserver", Duration::from_secs(5), |_| async {
            anyhow::bail!("binding 127.0.0.1:6443: address in use")
        });
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        drop(tx);
        let started = Started {
            running,
            ready: Box::pin(async move {
                rx.await
                    .map_err(|_| anyhow::anyhow!("stopped before ready"))
            }),
        };
        let err = stack
            .start(started, &shutdown)
            .await
            .expect_err("not ready");
        assert!(format!("{err:#}").contains("address in use"), "{err:#}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_signal_interrupts_waiting() {
        let shutdown = CancellationToken::new();
        let mut stack = Stack::default();
        let running = Running::spawn("etcd", Duration::from_secs(5), |stop| async move {
            stop.cancelled().await;
            Ok(())
        });
        let started: Started<()> = Started {
            running,
            ready: Box::pin(std::future::pending()),
        };
        shutdown.cancel();
        let err = stack
            .start(started, &shutdown)
            .await
            .expect_err("interrupted");
        assert!(err.is::<Interrupted>());
        stack.stop_all().await;
    }
}
