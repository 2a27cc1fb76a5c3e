//! ServiceAccount admission for pods, as upstream's plugin does it on create:
//!
//! - a pod without `serviceAccountName` runs as `default`, and the account must exist (403
//!   "error looking up service account ..."); the `default` account is looked up again for
//!   a while, since the serviceaccount controller creates it just after the namespace;
//! - unless the pod or its account sets `automountServiceAccountToken: false`, every
//!   container and init container without a mount at
//!   `/var/run/secrets/kubernetes.io/serviceaccount` mounts a `kube-api-access-<random>`
//!   projected volume (bound token, `kube-root-ca.crt`, the namespace);
//! - a pod without `imagePullSecrets` gets its account's;
//! - an account annotated `kubernetes.io/enforce-mountable-secrets: "true"` limits the
//!   secrets the pod may use to those it lists;
//! - mirror pods are left as they are, but may reference neither accounts, secrets nor
//!   token projections.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use ironkube_machinery::resources::ResourceInfo;
use ironkube_machinery::{ApiError, GroupResource};
use rand::Rng as _;
use serde_json::{Map, Value, json};

use crate::registry::store::{Admission, Store, generate_name};

pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";
/// Where every container finds its token, CA and namespace.
pub const TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
const TOKEN_VOLUME_PREFIX: &str = "kube-api-access-";
/// Upstream's `WarnOnlyBoundTokenExpirationSeconds`.
const TOKEN_EXPIRATION_SECONDS: i64 = 3607;
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";
const ENFORCE_MOUNTABLE_SECRETS: &str = "kubernetes.io/enforce-mountable-secrets";
/// How often the `default` account is looked up before the pod is refused.
const DEFAULT_ACCOUNT_ATTEMPTS: usize = 10;

pub struct ServiceAccount {
    service_accounts: Arc<Store>,
}

impl ServiceAccount {
    pub fn new(service_accounts: Arc<Store>) -> Self {
        ServiceAccount { service_accounts }
    }

    /// The account, from the watch cache first, then live (several times for `default`).
    async fn lookup(&self, namespace: &str, name: &str) -> Result<Value, ApiError> {
        match self.service_accounts.get(Some(namespace), name, Some("0")).await {
            Ok(sa) => return Ok(sa),
            Err(e) if e.code != 404 => return Err(e),
            Err(_) => {}
        }
        let attempts = if name == DEFAULT_SERVICE_ACCOUNT { DEFAULT_ACCOUNT_ATTEMPTS } else { 1 };
        let pause = Duration::from_millis(rand::rng().random_range(100..200));
        for attempt in 0..attempts {
            if attempt > 0 {
                tokio::time::sleep(pause).await;
            }
            match self.service_accounts.get(Some(namespace), name, None).await {
                Ok(sa) => return Ok(sa),
                Err(e) if e.code != 404 => return Err(e),
                Err(_) => {}
            }
        }
        Err(ApiError::not_found(&GroupResource::new("", "serviceaccount"), name))
    }
}

fn forbidden(pod: &Value, why: &str) -> ApiError {
    let pods = ironkube_machinery::resources::lookup("", "v1", "pods").expect("pods are a built-in resource");
    super::forbidden(pods, pod, why)
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn list<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    v.get(key).and_then(Value::as_array).into_iter().flatten()
}

impl Admission for ServiceAccount {
    fn admit_create<'a>(&'a self, info: &'static ResourceInfo, namespace: Option<&'a str>, pod: &'a mut Value) -> BoxFuture<'a, Result<(), ApiError>> {
        async move {
            if !(info.group.is_empty() && info.plural == "pods") {
                return Ok(());
            }
            let namespace = namespace.unwrap_or("");
            if pod["metadata"]["annotations"].get(MIRROR_ANNOTATION).is_some() {
                return validate_mirror_pod(pod);
            }
            let name = match str_of(&pod["spec"], "serviceAccountName") {
                "" => DEFAULT_SERVICE_ACCOUNT.to_string(),
                n => n.to_string(),
            };
            let account = self.lookup(namespace, &name).await.map_err(|e| {
                forbidden(pod, &format!("error looking up service account {namespace}/{name}: {}", e.message))
            })?;
            let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
                return Ok(());
            };
            spec.insert("serviceAccountName".into(), json!(name));
            spec.insert("serviceAccount".into(), json!(name));
            if automounts(spec, &account) {
                mount_token(spec);
            }
            if list(&Value::Object(spec.clone()), "imagePullSecrets").next().is_none() {
                let pulls: Vec<Value> = list(&account, "imagePullSecrets").map(|s| json!({"name": str_of(s, "name")})).collect();
                if !pulls.is_empty() {
                    spec.insert("imagePullSecrets".into(), Value::Array(pulls));
                }
            }
            let enforce = account["metadata"]["annotations"][ENFORCE_MOUNTABLE_SECRETS].as_str().is_some_and(|v| parse_bool(v) == Some(true));
            if enforce && let Err(why) = limit_secret_references(&name, &account, &pod["spec"]) {
                return Err(forbidden(pod, &why));
            }
            Ok(())
        }
        .boxed()
    }
}

/// Go's `strconv.ParseBool`.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// The pod's choice wins, then the account's; mounting is the default.
fn automounts(spec: &Map<String, Value>, account: &Value) -> bool {
    spec.get("automountServiceAccountToken")
        .and_then(Value::as_bool)
        .or_else(|| account.get("automountServiceAccountToken").and_then(Value::as_bool))
        .unwrap_or(true)
}

/// The projected volume upstream gives every pod (`TokenVolumeSource`).
fn token_volume(name: &str) -> Value {
    json!({
        "name": name,
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION_SECONDS, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
            ],
        },
    })
}

fn mount_token(spec: &mut Map<String, Value>) {
    let existing = list(&Value::Object(spec.clone()), "volumes")
        .map(|v| str_of(v, "name").to_string())
        .find(|n| n.starts_with(TOKEN_VOLUME_PREFIX));
    let volume = existing.clone().unwrap_or_else(|| generate_name(TOKEN_VOLUME_PREFIX));
    let mount = json!({"name": volume, "readOnly": true, "mountPath": TOKEN_MOUNT_PATH});
    let mut needed = false;
    for key in ["initContainers", "containers"] {
        let Some(containers) = spec.get_mut(key).and_then(Value::as_array_mut) else { continue };
        for c in containers.iter_mut().filter_map(Value::as_object_mut) {
            let mounts = c.entry("volumeMounts").or_insert_with(|| json!([]));
            let Some(mounts) = mounts.as_array_mut() else { continue };
            if mounts.iter().any(|m| str_of(m, "mountPath") == TOKEN_MOUNT_PATH) {
                continue;
            }
            mounts.push(mount.clone());
            needed = true;
        }
    }
    if needed && existing.is_none() {
        let volumes = spec.entry("volumes").or_insert_with(|| json!([]));
        if let Some(volumes) = volumes.as_array_mut() {
            volumes.push(token_volume(&volume));
        }
    }
}

/// `limitSecretReferences`: the secrets a pod may use are those its account lists.
fn limit_secret_references(account_name: &str, account: &Value, spec: &Value) -> Result<(), String> {
    let listed = |key: &str, name: &str| list(account, key).any(|s| str_of(s, "name") == name);
    for volume in list(spec, "volumes") {
        if let Some(secret) = volume.get("secret") {
            let name = str_of(secret, "secretName");
            if !listed("secrets", name) {
                return Err(format!("volume with secret.secretName=\"{name}\" is not allowed because service account {account_name} does not reference that secret"));
            }
        }
    }
    for (key, what) in [("initContainers", "init container"), ("containers", "container")] {
        for c in list(spec, key) {
            let container = str_of(c, "name");
            for env in list(c, "env") {
                let secret = str_of(&env["valueFrom"]["secretKeyRef"], "name");
                if env["valueFrom"].get("secretKeyRef").is_some() && !listed("secrets", secret) {
                    return Err(format!(
                        "{what} {container} with envVar {} referencing secret.secretName=\"{secret}\" is not allowed because service account {account_name} does not reference that secret",
                        str_of(env, "name")
                    ));
                }
            }
            for from in list(c, "envFrom") {
                if let Some(secret) = from.get("secretRef") {
                    let secret = str_of(secret, "name");
                    if !listed("secrets", secret) {
                        return Err(format!("{what} {container} with envFrom referencing secret.secretName=\"{secret}\" is not allowed because service account {account_name} does not reference that secret"));
                    }
                }
            }
        }
    }
    for (i, pull) in list(spec, "imagePullSecrets").enumerate() {
        let name = str_of(pull, "name");
        if !listed("imagePullSecrets", name) {
            return Err(format!("imagePullSecrets[{i}].name=\"{name}\" is not allowed because service account {account_name} does not reference that imagePullSecret"));
        }
    }
    Ok(())
}

/// Whether any part of the pod names a secret (upstream's `VisitPodSecretNames`).
fn references_secrets(spec: &Value) -> bool {
    if list(spec, "imagePullSecrets").next().is_some() {
        return true;
    }
    let containers = ["initContainers", "containers", "ephemeralContainers"].into_iter().flat_map(|k| list(spec, k));
    for c in containers {
        if list(c, "envFrom").any(|f| f.get("secretRef").is_some()) || list(c, "env").any(|e| e["valueFrom"].get("secretKeyRef").is_some()) {
            return true;
        }
    }
    list(spec, "volumes").any(|v| {
        v.get("secret").is_some()
            || list(&v["projected"], "sources").any(|s| s.get("secret").is_some())
            || ["azureFile", "cephfs", "cinder", "flexVolume", "rbd", "iscsi", "scaleIO", "storageos", "csi"]
                .iter()
                .any(|k| v[*k].get("secretRef").is_some() || v[*k].get("secretName").is_some())
            || v["csi"].get("nodePublishSecretRef").is_some()
    })
}

fn validate_mirror_pod(pod: &Value) -> Result<(), ApiError> {
    let spec = &pod["spec"];
    if !str_of(spec, "serviceAccountName").is_empty() {
        return Err(forbidden(pod, "a mirror pod may not reference service accounts"));
    }
    if references_secrets(spec) {
        return Err(forbidden(pod, "a mirror pod may not reference secrets"));
    }
    let projects_token = list(spec, "volumes").any(|v| list(&v["projected"], "sources").any(|s| s.get("serviceAccountToken").is_some()));
    if projects_token {
        return Err(forbidden(pod, "a mirror pod may not use ServiceAccountToken volume projections"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn every_container_mounts_one_generated_token_volume() {
        let mut s = spec(json!({
            "initContainers": [{"name": "i"}],
            "containers": [{"name": "a"}, {"name": "b", "volumeMounts": [{"name": "own", "mountPath": TOKEN_MOUNT_PATH}]}],
        }));
        mount_token(&mut s);
        let volumes = s["volumes"].as_array().cloned().unwrap_or_default();
        assert_eq!(volumes.len(), 1, "{s:?}");
        let name = volumes[0]["name"].as_str().unwrap_or("");
        assert!(name.starts_with("kube-api-access-") && name.len() == "kube-api-access-".len() + 5, "{name}");
        assert_eq!(volumes[0], token_volume(name));
        let mount = json!({"name": name, "readOnly": true, "mountPath": TOKEN_MOUNT_PATH});
        assert_eq!(s["initContainers"][0]["volumeMounts"], json!([mount]));
        assert_eq!(s["containers"][0]["volumeMounts"], json!([mount]));
        assert_eq!(s["containers"][1]["volumeMounts"].as_array().map(Vec::len), Some(1), "an own mount at the path wins");
    }

    #[test]
    fn an_existing_token_volume_is_reused_and_no_volume_is_added_when_nobody_needs_it() {
        let mut s = spec(json!({"volumes": [{"name": "kube-api-access-abcde", "emptyDir": {}}], "containers": [{"name": "a"}]}));
        mount_token(&mut s);
        assert_eq!(s["volumes"].as_array().map(Vec::len), Some(1));
        assert_eq!(s["containers"][0]["volumeMounts"][0]["name"], "kube-api-access-abcde");

        let mut s = spec(json!({"containers": [{"name": "a", "volumeMounts": [{"name": "x", "mountPath": TOKEN_MOUNT_PATH}]}]}));
        mount_token(&mut s);
        assert!(s.get("volumes").is_none(), "{s:?}");
    }

    #[test]
    fn automount_prefers_the_pod_then_the_account() {
        let on = json!({"automountServiceAccountToken": true});
        let off = json!({"automountServiceAccountToken": false});
        assert!(automounts(&spec(json!({})), &json!({})));
        assert!(!automounts(&spec(json!({})), &off));
        assert!(automounts(&spec(on.clone()), &off));
        assert!(!automounts(&spec(off), &on));
    }

    #[test]
    fn mountable_secrets_are_limited_to_the_accounts() {
        let account = json!({"secrets": [{"name": "ok"}], "imagePullSecrets": [{"name": "pull"}]});
        let fine = json!({"volumes": [{"name": "v", "secret": {"secretName": "ok"}}], "imagePullSecrets": [{"name": "pull"}],
            "containers": [{"name": "c", "env": [{"name": "E", "valueFrom": {"secretKeyRef": {"name": "ok", "key": "k"}}}]}]});
        assert_eq!(limit_secret_references("sa", &account, &fine), Ok(()));
        let volume = json!({"volumes": [{"name": "v", "secret": {"secretName": "other"}}]});
        assert_eq!(
            limit_secret_references("sa", &account, &volume),
            Err("volume with secret.secretName=\"other\" is not allowed because service account sa does not reference that secret".into())
        );
        let env = json!({"initContainers": [{"name": "i", "envFrom": [{"secretRef": {"name": "other"}}]}]});
        assert_eq!(
            limit_secret_references("sa", &account, &env),
            Err("init container i with envFrom referencing secret.secretName=\"other\" is not allowed because service account sa does not reference that secret".into())
        );
        let pull = json!({"imagePullSecrets": [{"name": "pull"}, {"name": "nope"}]});
        assert_eq!(
            limit_secret_references("sa", &account, &pull),
            Err("imagePullSecrets[1].name=\"nope\" is not allowed because service account sa does not reference that imagePullSecret".into())
        );
    }

    #[test]
    fn mirror_pods_may_not_reference_accounts_or_secrets() {
        let pod = |spec: Value| json!({"metadata": {"name": "m"}, "spec": spec});
        assert!(validate_mirror_pod(&pod(json!({"containers": [{"name": "c"}]}))).is_ok());
        let e = validate_mirror_pod(&pod(json!({"serviceAccountName": "x"}))).expect_err("refused");
        assert_eq!(e.message, "pods \"m\" is forbidden: a mirror pod may not reference service accounts");
        let e = validate_mirror_pod(&pod(json!({"containers": [{"name": "c", "envFrom": [{"secretRef": {"name": "s"}}]}]}))).expect_err("refused");
        assert_eq!(e.message, "pods \"m\" is forbidden: a mirror pod may not reference secrets");
        let e = validate_mirror_pod(&pod(json!({"volumes": [{"name": "t", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}}]})))
            .expect_err("refused");
        assert_eq!(e.message, "pods \"m\" is forbidden: a mirror pod may not use ServiceAccountToken volume projections");
    }

    #[test]
    fn refusals_name_the_pod_by_its_generate_name_before_it_has_a_name() {
        let e = forbidden(&json!({"metadata": {"generateName": "web-"}}), "why");
        assert_eq!(e.message, "pods \"web-\" is forbidden: why");
        assert_eq!(e.code, 403);
    }
}
