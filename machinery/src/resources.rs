//! The built-in resource table: every resource a v1.33 API server serves by default.
//!
//! One row per (group, version, resource). The table drives discovery, routing, storage keys
//! and the generic store; per-resource behaviour lives in the API server's strategies.

/// A subresource such as `status`, `scale`, `binding`, `eviction` or `approval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubresourceInfo {
    /// `status`, `scale`, ...
    pub name: &'static str,
    /// Group of the subresource's kind (`autoscaling` for `scale`, `policy` for `eviction`).
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub verbs: &'static [&'static str],
}

/// One built-in resource at one group/version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceInfo {
    /// API group; `""` for the core (legacy) group served under `/api`.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// Lower-case plural, the path segment (`pods`).
    pub plural: &'static str,
    /// Lower-case singular (`pod`).
    pub singular: &'static str,
    pub namespaced: bool,
    /// Verbs as discovery lists them (`create`, `delete`, `deletecollection`, `get`, `list`,
    /// `patch`, `update`, `watch`).
    pub verbs: &'static [&'static str],
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub subresources: &'static [SubresourceInfo],
    /// The resource part of the etcd key: `<prefix>/<etcd_resource>/<namespace>/<name>`.
    /// Usually the plural, with upstream's exceptions (`minions` for nodes,
    /// `services/specs`, `services/endpoints`, ...).
    pub etcd_resource: &'static str,
    /// The group/version objects of this resource are stored in (for resources served at
    /// several versions, e.g. HPAs at autoscaling/v1 and v2, core and events.k8s.io events).
    pub storage_group: &'static str,
    pub storage_version: &'static str,
}

impl ResourceInfo {
    /// `apps/v1` or `v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn group_resource(&self) -> crate::GroupResource {
        crate::GroupResource::new(self.group, self.plural)
    }

    pub fn subresource(&self, name: &str) -> Option<&'static SubresourceInfo> {
        self.subresources.iter().find(|s| s.name == name)
    }

    pub fn has_verb(&self, verb: &str) -> bool {
        self.verbs.contains(&verb)
    }
}

/// Every built-in resource, groups in upstream's discovery order.
pub fn all() -> &'static [ResourceInfo] {
    TABLE
}

/// The resource served at `group/version/plural`.
pub fn lookup(group: &str, version: &str, plural: &str) -> Option<&'static ResourceInfo> {
    TABLE.iter().find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The resource of `kind` in `group/version`.
pub fn by_kind(group: &str, version: &str, kind: &str) -> Option<&'static ResourceInfo> {
    TABLE.iter().find(|r| r.group == group && r.version == version && r.kind == kind)
}

static TABLE: &[ResourceInfo] = &[];
