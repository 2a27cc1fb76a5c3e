//! projected volumes: several sources in one directory (pkg/volume/projected) — Secrets,
//! ConfigMaps, downward API files and service account tokens — on a tmpfs. Every ordinary
//! pod has one: the `kube-api-access-*` volume the ServiceAccount admission adds (a bound
//! token, the `kube-root-ca.crt` ConfigMap and the namespace).
//!
//! A token is requested again once 80% of its requested lifetime has passed (or a day,
//! whichever comes first), as upstream's token manager does; the issue time is read from the
//! `iat` claim of the token already in the volume, so nothing is kept in memory between calls.

use std::path::Path;

use base64::Engine as _;
use k8s_openapi::api::core::v1::{Pod, ProjectedVolumeSource, ServiceAccountTokenProjection};

use super::atomic_writer::{DATA_DIR, Payload};
use super::atomic_writer::FileProjection;
use super::{DEFAULT_MODE, Error, PodContext, Sources, config_map, downward_api, secret};

/// A projected token's lifetime when the pod does not say (the API's default).
pub const DEFAULT_TOKEN_EXPIRATION_SECONDS: i64 = 3600;
/// A token older than this is requested again whatever its lifetime (upstream's maxTTL).
const MAX_TOKEN_AGE_SECONDS: i64 = 24 * 60 * 60;

/// The files of every source, later sources overwriting earlier ones at the same path. Every
/// source is tried; the errors come back together.
pub(super) async fn collect(
    pod: &Pod,
    source: &ProjectedVolumeSource,
    dir: &Path,
    ctx: &PodContext,
    sources: &impl Sources,
) -> Result<Payload, Error> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    let default_mode = source.default_mode.unwrap_or(DEFAULT_MODE);
    let mut errors = Vec::new();
    let mut payload = Payload::new();
    for projection in source.sources.iter().flatten() {
        let part = if let Some(s) = &projection.secret {
            let optional = s.optional.unwrap_or(false);
            match secret::fetch(sources, namespace, &s.name, optional).await {
                Ok(found) => secret::payload(s.items.as_deref().unwrap_or_default(), &found, default_mode, optional),
                Err(e) => Err(e),
            }
        } else if let Some(c) = &projection.config_map {
            let optional = c.optional.unwrap_or(false);
            match config_map::fetch(sources, namespace, &c.name, optional).await {
                Ok(found) => config_map::payload(c.items.as_deref().unwrap_or_default(), &found, default_mode, optional),
                Err(e) => Err(e),
            }
        } else if let Some(d) = &projection.downward_api {
            downward_api::collect(d.items.as_deref().unwrap_or_default(), pod, ctx, default_mode)
        } else if let Some(t) = &projection.service_account_token {
            token(pod, t, dir, sources).await.map(|bytes| Payload::from([(t.path.clone(), FileProjection::new(bytes, default_mode))]))
        } else {
            // clusterTrustBundle is not supported yet; an unknown source projects nothing.
            Ok(Payload::new())
        };
        match part {
            Ok(files) => payload.extend(files),
            Err(e) => errors.push(e),
        }
    }
    Error::aggregate(errors).map_or(Ok(payload), Err)
}

/// The token for `projection`: the one in the volume while it is fresh, else a new one.
async fn token(pod: &Pod, projection: &ServiceAccountTokenProjection, dir: &Path, sources: &impl Sources) -> Result<Vec<u8>, Error> {
    let expiration = projection.expiration_seconds.unwrap_or(DEFAULT_TOKEN_EXPIRATION_SECONDS);
    let current = dir.join(DATA_DIR).join(&projection.path);
    if let Ok(bytes) = std::fs::read(&current)
        && !needs_refresh(&bytes, expiration, jiff::Timestamp::now().as_second())
    {
        return Ok(bytes);
    }
    let audience = projection.audience.as_deref().filter(|a| !a.is_empty());
    Ok(sources.service_account_token(pod, audience, expiration).await?.into_bytes())
}

/// The `iat` claim of a JWT.
fn issued_at(token: &[u8]) -> Option<i64> {
    let claims = token.split(|b| *b == b'.').nth(1)?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(claims.strip_suffix(b"=").unwrap_or(claims)).ok()?;
    serde_json::from_slice::<serde_json::Value>(&json).ok()?.get("iat")?.as_i64()
}

/// Whether a token asked for `expiration_seconds` must be requested again at `now`: when
/// less than 20% of its lifetime is left, when it is a day old, or when its age is unknown.
fn needs_refresh(token: &[u8], expiration_seconds: i64, now: i64) -> bool {
    let Some(iat) = issued_at(token) else { return true };
    let age = now - iat;
    !(0..MAX_TOKEN_AGE_SECONDS).contains(&age) || age > expiration_seconds - expiration_seconds * 20 / 100
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(iat: i64) -> Vec<u8> {
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(r#"{{"iat":{iat},"sub":"x"}}"#));
        format!("eyJhbGciOiJFUzI1NiJ9.{claims}.c2ln").into_bytes()
    }

    #[test]
    fn refresh_at_eighty_percent_or_a_day() {
        let t0 = 1_700_000_000;
        let table = [
            (jwt(t0), 3600, t0, false),
            (jwt(t0), 3600, t0 + 2880, false),
            (jwt(t0), 3600, t0 + 2881, true),
            (jwt(t0), 3607, t0 + 2886, false),
            (jwt(t0), 3607, t0 + 2887, true),
            (jwt(t0), 7 * 86400, t0 + 86399, false),
            (jwt(t0), 7 * 86400, t0 + 86400, true),
            (jwt(t0), 3600, t0 - 10, true),
            (b"not-a-jwt".to_vec(), 3600, t0, true),
        ];
        for (token, exp, now, want) in table {
            assert_eq!(needs_refresh(&token, exp, now), want, "exp {exp} at +{}", now - t0);
        }
    }
}
