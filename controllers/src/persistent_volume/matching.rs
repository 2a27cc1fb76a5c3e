//! Which PersistentVolume a claim gets (upstream's `findBestMatchForClaim` and
//! `FindMatchingVolume`, `checkVolumeSatisfyClaim`, `IsVolumeBoundToClaim`): pure functions
//! over the cached objects, table-tested below.

use std::collections::{BTreeMap, BTreeSet};

use ironkube_machinery::selectors::label::Selector;
use ironkube_machinery::validation::quantity::Quantity;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};

/// The old annotation that named a class before `storageClassName`; it still wins.
pub const BETA_STORAGE_CLASS: &str = "volume.beta.kubernetes.io/storage-class";

fn annotation<'a>(meta: &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

/// The claim's storage class ("" for none), beta annotation first.
pub fn claim_class(claim: &PersistentVolumeClaim) -> &str {
    if let Some(class) = annotation(&claim.metadata, BETA_STORAGE_CLASS) {
        return class;
    }
    claim.spec.as_ref().and_then(|s| s.storage_class_name.as_deref()).unwrap_or("")
}

/// Whether the claim names a class at all (an empty name counts: it asks for no class).
pub fn claim_has_class(claim: &PersistentVolumeClaim) -> bool {
    annotation(&claim.metadata, BETA_STORAGE_CLASS).is_some() || claim.spec.as_ref().is_some_and(|s| s.storage_class_name.is_some())
}

/// The volume's storage class ("" for none), beta annotation first.
pub fn volume_class(volume: &PersistentVolume) -> &str {
    if let Some(class) = annotation(&volume.metadata, BETA_STORAGE_CLASS) {
        return class;
    }
    volume.spec.as_ref().and_then(|s| s.storage_class_name.as_deref()).unwrap_or("")
}

/// The storage a claim requests (zero when it names none).
pub fn requested(claim: &PersistentVolumeClaim) -> Quantity {
    claim
        .spec
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .and_then(|q| Quantity::parse(&q.0).ok())
        .unwrap_or_else(|| Quantity::from_units(0))
}

/// The storage a volume offers (zero when it names none).
pub fn capacity(volume: &PersistentVolume) -> Quantity {
    volume
        .spec
        .as_ref()
        .and_then(|s| s.capacity.as_ref())
        .and_then(|c| c.get("storage"))
        .and_then(|q| Quantity::parse(&q.0).ok())
        .unwrap_or_else(|| Quantity::from_units(0))
}

fn claim_modes(claim: &PersistentVolumeClaim) -> BTreeSet<&str> {
    claim.spec.as_ref().and_then(|s| s.access_modes.as_ref()).into_iter().flatten().map(String::as_str).collect()
}

fn volume_modes(volume: &PersistentVolume) -> BTreeSet<&str> {
    volume.spec.as_ref().and_then(|s| s.access_modes.as_ref()).into_iter().flatten().map(String::as_str).collect()
}

/// Whether the claim's and the volume's `volumeMode`s differ (unset means Filesystem).
pub fn volume_mode_mismatch(claim: &PersistentVolumeClaim, volume: &PersistentVolume) -> bool {
    let claim_mode = claim.spec.as_ref().and_then(|s| s.volume_mode.as_deref()).unwrap_or("Filesystem");
    let volume_mode = volume.spec.as_ref().and_then(|s| s.volume_mode.as_deref()).unwrap_or("Filesystem");
    claim_mode != volume_mode
}

/// Whether the volume offers every access mode the claim asks for.
pub fn access_modes_satisfied(claim: &PersistentVolumeClaim, volume: &PersistentVolume) -> bool {
    claim_modes(claim).is_subset(&volume_modes(volume))
}

/// Whether the volume's claimRef names this claim (and, when it has a uid, this very one).
pub fn is_volume_bound_to_claim(volume: &PersistentVolume, claim: &PersistentVolumeClaim) -> bool {
    let Some(claim_ref) = volume.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) else { return false };
    if claim_ref.name != claim.metadata.name || claim_ref.namespace != claim.metadata.namespace {
        return false;
    }
    let uid = claim_ref.uid.as_deref().unwrap_or("");
    uid.is_empty() || claim.metadata.uid.as_deref() == Some(uid)
}

fn volume_attributes_class(claim: Option<&str>, volume: Option<&str>) -> bool {
    claim.unwrap_or("").is_empty() && volume.unwrap_or("").is_empty()
}

/// Why a volume a claim asked for by name does not suit it (upstream's messages), if not.
pub fn check_volume_satisfies_claim(volume: &PersistentVolume, claim: &PersistentVolumeClaim) -> Result<(), String> {
    if volume.metadata.deletion_timestamp.is_some() {
        return Err(format!("the volume is marked for deletion {:?}", volume.metadata.name.as_deref().unwrap_or("")));
    }
    if capacity(volume) < requested(claim) {
        return Err("requested PV is too small".into());
    }
    if volume_class(volume) != claim_class(claim) {
        return Err("storageClassName does not match".into());
    }
    let claim_vac = claim.spec.as_ref().and_then(|s| s.volume_attributes_class_name.as_deref());
    let volume_vac = volume.spec.as_ref().and_then(|s| s.volume_attributes_class_name.as_deref());
    if !volume_attributes_class(claim_vac, volume_vac) {
        return Err("volumeAttributesClassName is not supported when the feature-gate VolumeAttributesClass is disabled".into());
    }
    if volume_mode_mismatch(claim, volume) {
        return Err("incompatible volumeMode".into());
    }
    if !access_modes_satisfied(claim, volume) {
        return Err("incompatible accessMode".into());
    }
    Ok(())
}

/// The volume for the claim among `volumes` of one access-mode set: one pre-bound to it wins,
/// else the smallest Available one that fits (`None` when none does, or a label selector
/// the claim has is invalid).
fn find_matching_volume<'a>(claim: &PersistentVolumeClaim, volumes: &[&'a PersistentVolume], delay_binding: bool) -> Option<&'a PersistentVolume> {
    let requested = requested(claim);
    let class = claim_class(claim);
    let selector = match claim.spec.as_ref().and_then(|s| s.selector.as_ref()) {
        Some(sel) => Some(Selector::from_label_selector(Some(sel)).ok()?),
        None => None,
    };
    let claim_vac = claim.spec.as_ref().and_then(|s| s.volume_attributes_class_name.as_deref());
    let mut smallest: Option<(&PersistentVolume, Quantity)> = None;
    for &volume in volumes {
        let spec = volume.spec.as_ref();
        if spec.and_then(|s| s.claim_ref.as_ref()).is_some() && !is_volume_bound_to_claim(volume, claim) {
            continue;
        }
        let size = capacity(volume);
        if size < requested || volume_mode_mismatch(claim, volume) {
            continue;
        }
        if !volume_attributes_class(claim_vac, spec.and_then(|s| s.volume_attributes_class_name.as_deref())) {
            continue;
        }
        if volume.metadata.deletion_timestamp.is_some() {
            continue;
        }
        if is_volume_bound_to_claim(volume, claim) {
            return Some(volume);
        }
        if delay_binding {
            continue;
        }
        if volume.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Available") {
            continue;
        }
        let labels = volume.metadata.labels.clone().unwrap_or_default();
        if selector.as_ref().is_some_and(|sel| !sel.matches(&labels)) {
            continue;
        }
        if volume_class(volume) != class {
            continue;
        }
        if smallest.as_ref().is_none_or(|(_, best)| *best > size) {
            smallest = Some((volume, size));
        }
    }
    smallest.map(|(volume, _)| volume)
}

/// The best volume for the claim: volumes are grouped by their set of access modes; the
/// groups offering every mode the claim asks for are searched with the fewest modes first.
pub fn find_best_match<'a>(claim: &PersistentVolumeClaim, volumes: impl IntoIterator<Item = &'a PersistentVolume>, delay_binding: bool) -> Option<&'a PersistentVolume> {
    let wanted = claim_modes(claim);
    let mut groups: BTreeMap<BTreeSet<&str>, Vec<&PersistentVolume>> = BTreeMap::new();
    for volume in volumes {
        groups.entry(volume_modes(volume)).or_default().push(volume);
    }
    let mut candidates: Vec<(&BTreeSet<&str>, &Vec<&PersistentVolume>)> = groups.iter().filter(|(modes, _)| wanted.is_subset(modes)).collect();
    candidates.sort_by_key(|(modes, _)| modes.len());
    candidates.into_iter().find_map(|(_, group)| find_matching_volume(claim, group, delay_binding))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn volume(name: &str, size: &str, modes: &[&str], extra: Value) -> PersistentVolume {
        let mut v = json!({
            "metadata": {"name": name},
            "spec": {"capacity": {"storage": size}, "accessModes": modes, "volumeMode": "Filesystem"},
            "status": {"phase": "Available"},
        });
        merge(&mut v, extra);
        serde_json::from_value(v).expect("volume")
    }

    fn claim(size: &str, modes: &[&str], extra: Value) -> PersistentVolumeClaim {
        let mut c = json!({
            "metadata": {"name": "data", "namespace": "ns", "uid": "claim-uid"},
            "spec": {"resources": {"requests": {"storage": size}}, "accessModes": modes, "volumeMode": "Filesystem"},
        });
        merge(&mut c, extra);
        serde_json::from_value(c).expect("claim")
    }

    fn merge(target: &mut Value, extra: Value) {
        match (target, extra) {
            (Value::Object(t), Value::Object(e)) => {
                for (k, v) in e {
                    merge(t.entry(k).or_insert(Value::Null), v);
                }
            }
            (t, e) => *t = e,
        }
    }

    fn pool() -> Vec<PersistentVolume> {
        vec![
            volume("small", "1Gi", &["ReadWriteOnce"], json!({})),
            volume("medium", "5Gi", &["ReadWriteOnce"], json!({"metadata": {"labels": {"tier": "fast"}}})),
            volume("large", "10Gi", &["ReadWriteOnce", "ReadWriteMany"], json!({"spec": {"storageClassName": "gold"}})),
            volume("big-rwx", "20Gi", &["ReadWriteOnce", "ReadWriteMany"], json!({})),
            volume("block", "2Gi", &["ReadWriteOnce"], json!({"spec": {"volumeMode": "Block"}})),
            volume("taken", "3Gi", &["ReadWriteOnce"], json!({"spec": {"claimRef": {"namespace": "ns", "name": "other"}}})),
            volume("pending", "4Gi", &["ReadWriteOnce"], json!({"status": {"phase": "Pending"}})),
        ]
    }

    #[test]
    fn best_matches() {
        let vols = pool();
        let cases: Vec<(&str, PersistentVolumeClaim, bool, Option<&str>)> = vec![
            ("smallest that fits", claim("500Mi", &["ReadWriteOnce"], json!({})), false, Some("small")),
            ("exact size", claim("1Gi", &["ReadWriteOnce"], json!({})), false, Some("small")),
            ("bigger request skips small, taken and pending", claim("2Gi", &["ReadWriteOnce"], json!({})), false, Some("medium")),
            ("fewest access modes first", claim("6Gi", &["ReadWriteOnce"], json!({})), false, Some("big-rwx")),
            ("access mode superset", claim("1Gi", &["ReadWriteMany"], json!({})), false, Some("big-rwx")),
            ("class", claim("1Gi", &["ReadWriteOnce"], json!({"spec": {"storageClassName": "gold"}})), false, Some("large")),
            ("beta class annotation wins", claim("1Gi", &["ReadWriteOnce"], json!({"metadata": {"annotations": {BETA_STORAGE_CLASS: "gold"}}, "spec": {"storageClassName": "x"}})), false, Some("large")),
            ("unknown class", claim("1Gi", &["ReadWriteOnce"], json!({"spec": {"storageClassName": "silver"}})), false, None),
            ("selector", claim("1Gi", &["ReadWriteOnce"], json!({"spec": {"selector": {"matchLabels": {"tier": "fast"}}}})), false, Some("medium")),
            ("volume mode", claim("1Gi", &["ReadWriteOnce"], json!({"spec": {"volumeMode": "Block"}})), false, Some("block")),
            ("too big", claim("50Gi", &["ReadWriteOnce"], json!({})), false, None),
            ("delayed binding takes only pre-bound volumes", claim("1Gi", &["ReadWriteOnce"], json!({})), true, None),
            ("pre-bound by claimRef wins over smaller", claim("1Gi", &["ReadWriteOnce"], json!({"metadata": {"name": "other", "uid": "x"}})), false, Some("taken")),
            ("pre-bound even with delayed binding", claim("1Gi", &["ReadWriteOnce"], json!({"metadata": {"name": "other"}})), true, Some("taken")),
        ];
        for (what, c, delay, want) in cases {
            let got = find_best_match(&c, &vols, delay).and_then(|v| v.metadata.name.as_deref());
            assert_eq!(got, want, "{what}");
        }
    }

    #[test]
    fn prebound_uid_must_match() {
        let vols = vec![volume("v", "1Gi", &["ReadWriteOnce"], json!({"spec": {"claimRef": {"namespace": "ns", "name": "data", "uid": "old"}}}))];
        assert!(find_best_match(&claim("1Gi", &["ReadWriteOnce"], json!({})), &vols, false).is_none());
        let vols = vec![volume("v", "1Gi", &["ReadWriteOnce"], json!({"spec": {"claimRef": {"namespace": "ns", "name": "data", "uid": "claim-uid"}}, "status": {"phase": "Bound"}}))];
        assert_eq!(find_best_match(&claim("1Gi", &["ReadWriteOnce"], json!({})), &vols, false).and_then(|v| v.metadata.name.as_deref()), Some("v"));
    }

    #[test]
    fn requested_volume_checks() {
        let c = claim("2Gi", &["ReadWriteOnce"], json!({}));
        let cases = [
            ("fits", volume("v", "2Gi", &["ReadWriteOnce"], json!({})), Ok(())),
            ("small", volume("v", "1Gi", &["ReadWriteOnce"], json!({})), Err("requested PV is too small".to_string())),
            ("class", volume("v", "2Gi", &["ReadWriteOnce"], json!({"spec": {"storageClassName": "gold"}})), Err("storageClassName does not match".into())),
            ("mode", volume("v", "2Gi", &["ReadWriteOnce"], json!({"spec": {"volumeMode": "Block"}})), Err("incompatible volumeMode".into())),
            ("access", volume("v", "2Gi", &["ReadOnlyMany"], json!({})), Err("incompatible accessMode".into())),
            ("deleting", volume("v", "2Gi", &["ReadWriteOnce"], json!({"metadata": {"deletionTimestamp": "2025-01-01T00:00:00Z"}})), Err("the volume is marked for deletion \"v\"".into())),
        ];
        for (what, v, want) in cases {
            assert_eq!(check_volume_satisfies_claim(&v, &c), want, "{what}");
        }
    }
}
