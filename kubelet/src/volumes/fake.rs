//! A [`Sources`] held in memory, for unit tests of volumes and environment variables.

use std::collections::BTreeMap;
use std::sync::Mutex;

use base64::Engine as _;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Service};

use super::{SourceError, Sources};

/// Token requests it answered: (pod name, audience, expiration seconds).
pub(crate) type TokenRequestLog = Vec<(String, Option<String>, i64)>;

#[derive(Default)]
pub(crate) struct FakeSources {
    pub config_maps: Mutex<BTreeMap<(String, String), ConfigMap>>,
    pub secrets: Mutex<BTreeMap<(String, String), Secret>>,
    pub services: Vec<Service>,
    pub tokens: Mutex<TokenRequestLog>,
    /// When set, every call fails with this message.
    pub failure: Option<String>,
}

impl FakeSources {
    pub fn with_config_map(self, namespace: &str, value: serde_json::Value) -> Self {
        let cm: ConfigMap = serde_json::from_value(value).expect("configmap");
        let name = cm.metadata.name.clone().unwrap_or_default();
        self.config_maps.lock().expect("lock").insert((namespace.into(), name), cm);
        self
    }

    pub fn with_secret(self, namespace: &str, value: serde_json::Value) -> Self {
        let s: Secret = serde_json::from_value(value).expect("secret");
        let name = s.metadata.name.clone().unwrap_or_default();
        self.secrets.lock().expect("lock").insert((namespace.into(), name), s);
        self
    }

    fn check(&self) -> Result<(), SourceError> {
        self.failure.clone().map_or(Ok(()), |f| Err(SourceError::Other(f)))
    }
}

/// A JWT-shaped token issued now, numbered so that each differs.
pub(crate) fn token(n: usize) -> String {
    let claims = format!(r#"{{"iat":{},"n":{n}}}"#, jiff::Timestamp::now().as_second());
    format!("eyJhbGciOiJFUzI1NiJ9.{}.c2ln", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims))
}

impl Sources for FakeSources {
    async fn config_map(&self, namespace: &str, name: &str) -> Result<Option<ConfigMap>, SourceError> {
        self.check()?;
        Ok(self.config_maps.lock().expect("lock").get(&(namespace.to_string(), name.to_string())).cloned())
    }

    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<Secret>, SourceError> {
        self.check()?;
        Ok(self.secrets.lock().expect("lock").get(&(namespace.to_string(), name.to_string())).cloned())
    }

    async fn service_account_token(&self, pod: &Pod, audience: Option<&str>, expiration_seconds: i64) -> Result<String, SourceError> {
        self.check()?;
        let mut log = self.tokens.lock().expect("lock");
        log.push((pod.metadata.name.clone().unwrap_or_default(), audience.map(str::to_string), expiration_seconds));
        Ok(token(log.len()))
    }

    async fn services(&self, namespace: &str) -> Result<Vec<Service>, SourceError> {
        self.check()?;
        let wanted = |s: &&Service| {
            let ns = s.metadata.namespace.as_deref().unwrap_or_default();
            ns == namespace || (ns == "default" && s.metadata.name.as_deref() == Some("kubernetes"))
        };
        Ok(self.services.iter().filter(wanted).cloned().collect())
    }
}
