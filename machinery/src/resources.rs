//! The built-in resource table: every resource a v1.33 API server serves by default.
//!
//! One row per (group, version, resource). The table drives discovery, routing, storage keys
//! and the generic store; per-resource behaviour lives in the API server's strategies.

/// A subresource such as `status`, `scale`, `binding`, `eviction` or `approval`.
///
/// `group`/`version`/`kind` name the object the subresource speaks, which is usually the
/// parent's own kind (`pods/status` speaks `v1 Pod`); discovery shows the group and
/// version only where they differ from the parent's.
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
    /// `services/specs`, `services/endpoints`, ...). Empty for resources without storage
    /// (`bindings`, `componentstatuses`, the review resources): those have no storage
    /// version hash in discovery either.
    pub etcd_resource: &'static str,
    /// The group/version objects of this resource are stored in (for resources served at
    /// several versions, e.g. HPAs at autoscaling/v1 and v2, core and events.k8s.io events).
    /// The kind stays `kind`; for resources without storage this is the served version.
    pub storage_group: &'static str,
    pub storage_version: &'static str,
}

impl SubresourceInfo {
    /// A subresource speaking `group/version` `kind`.
    pub const fn new(
        name: &'static str,
        group: &'static str,
        version: &'static str,
        kind: &'static str,
        verbs: &'static [&'static str],
    ) -> Self {
        SubresourceInfo {
            name,
            group,
            version,
            kind,
            verbs,
        }
    }

    /// `group/version` or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

impl ResourceInfo {
    /// A namespaced resource with every verb, no short names or categories, no
    /// subresources, stored under its plural at its own group/version. The `const`
    /// setters below adjust what differs.
    pub const fn new(
        group: &'static str,
        version: &'static str,
        kind: &'static str,
        plural: &'static str,
        singular: &'static str,
    ) -> Self {
        ResourceInfo {
            group,
            version,
            kind,
            plural,
            singular,
            namespaced: true,
            verbs: ALL_VERBS,
            short_names: &[],
            categories: &[],
            subresources: &[],
            etcd_resource: plural,
            storage_group: group,
            storage_version: version,
        }
    }

    /// Cluster-scoped.
    pub const fn cluster(mut self) -> Self {
        self.namespaced = false;
        self
    }

    pub const fn verbs(mut self, verbs: &'static [&'static str]) -> Self {
        self.verbs = verbs;
        self
    }

    pub const fn short_names(mut self, short_names: &'static [&'static str]) -> Self {
        self.short_names = short_names;
        self
    }

    pub const fn categories(mut self, categories: &'static [&'static str]) -> Self {
        self.categories = categories;
        self
    }

    pub const fn subresources(mut self, subresources: &'static [SubresourceInfo]) -> Self {
        self.subresources = subresources;
        self
    }

    /// Stored under another key segment than the plural.
    pub const fn etcd(mut self, etcd_resource: &'static str) -> Self {
        self.etcd_resource = etcd_resource;
        self
    }

    /// Not stored at all: computed or create-only ("virtual") resources.
    pub const fn virtual_only(mut self) -> Self {
        self.etcd_resource = "";
        self
    }

    /// Stored at another group/version than the one served.
    pub const fn stored_as(mut self, group: &'static str, version: &'static str) -> Self {
        self.storage_group = group;
        self.storage_version = version;
        self
    }

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

    /// Whether objects of this resource live in etcd (false for `bindings`,
    /// `componentstatuses`, `tokenreviews`, the access reviews, ...).
    pub fn is_stored(&self) -> bool {
        !self.etcd_resource.is_empty()
    }
}

/// Every built-in resource, groups in upstream's discovery order.
pub fn all() -> &'static [ResourceInfo] {
    TABLE
}

/// The warning upstream sends with every request to a resource whose kind is deprecated
/// in v1.33 (the prerelease-lifecycle marks of `k8s.io/api`; no beta kind is served by
/// default, so only these GA ones).
pub fn deprecation_warning(info: &ResourceInfo) -> Option<&'static str> {
    match (info.group, info.version, info.kind) {
        ("", "v1", "ComponentStatus") => Some("v1 ComponentStatus is deprecated in v1.19+"),
        ("", "v1", "Endpoints") => Some("v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice"),
        _ => None,
    }
}

/// The resource served at `group/version/plural`.
pub fn lookup(group: &str, version: &str, plural: &str) -> Option<&'static ResourceInfo> {
    TABLE
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The resource of `kind` in `group/version`.
pub fn by_kind(group: &str, version: &str, kind: &str) -> Option<&'static ResourceInfo> {
    TABLE
        .iter()
        .find(|r| r.group == group && r.version == version && r.kind == kind)
}

/// One API group with the versions it serves, most preferred first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupVersions {
    /// `""` for the core group.
    pub group: &'static str,
    /// Served versions in upstream's priority order; never empty.
    pub versions: Vec<&'static str>,
}

impl GroupVersions {
    /// The version discovery advertises as `preferredVersion` (and `kubectl` uses).
    pub fn preferred_version(&self) -> &'static str {
        self.versions[0]
    }
}

/// Every group, core first, in upstream's discovery order (kube-aggregator's group
/// priorities, ties by name), each with its versions in upstream's version priority.
pub fn groups() -> Vec<GroupVersions> {
    let mut out: Vec<GroupVersions> = Vec::new();
    for r in TABLE {
        match out.iter_mut().find(|g| g.group == r.group) {
            Some(g) if g.versions.contains(&r.version) => {}
            Some(g) => g.versions.push(r.version),
            None => out.push(GroupVersions {
                group: r.group,
                versions: vec![r.version],
            }),
        }
    }
    out
}

/// The served versions of `group`, most preferred first; `None` for an unknown group.
pub fn group(group: &str) -> Option<GroupVersions> {
    groups().into_iter().find(|g| g.group == group)
}

/// The resources of one group/version, in discovery (alphabetical) order.
pub fn resources_of(group: &str, version: &str) -> impl Iterator<Item = &'static ResourceInfo> {
    let (group, version) = (group.to_string(), version.to_string());
    TABLE
        .iter()
        .filter(move |r| r.group == group && r.version == version)
}

/// The rows `kubectl api-resources` prints: each resource once, at its group's preferred
/// version.
pub fn preferred_resources() -> Vec<&'static ResourceInfo> {
    let groups = groups();
    TABLE
        .iter()
        .filter(|r| {
            groups
                .iter()
                .any(|g| g.group == r.group && g.preferred_version() == r.version)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The table. Sources: the v1.33 kube-apiserver REST storage (verbs, short names,
// categories, subresources), the storage factory (etcd key prefixes, cohabiting
// resources, encoding versions), kube-aggregator's group/version priorities (order) and
// the storage version hashes discovery publishes at 1.33 (storage versions).
// ---------------------------------------------------------------------------------------

/// Verbs of a resource backed by the generic store.
const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
/// Namespaces have no collection delete.
const NAMESPACE_VERBS: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];
const CREATE: &[&str] = &["create"];
const GET_LIST: &[&str] = &["get", "list"];
/// `status`, `scale`, `approval`, `ephemeralcontainers`, `resize`.
const GET_PATCH_UPDATE: &[&str] = &["get", "patch", "update"];
/// Streaming connect subresources (`attach`, `exec`, `portforward`).
const CREATE_GET: &[&str] = &["create", "get"];
/// `proxy` subresources: GET, POST, PUT, PATCH, DELETE (HEAD and OPTIONS have no verb).
const PROXY_VERBS: &[&str] = &["create", "delete", "get", "patch", "update"];

const ALL: &[&str] = &["all"];
const API_EXTENSIONS: &[&str] = &["api-extensions"];

/// The `status` subresource of a resource speaking its own kind.
const fn status(group: &'static str, version: &'static str, kind: &'static str) -> SubresourceInfo {
    SubresourceInfo::new("status", group, version, kind, GET_PATCH_UPDATE)
}

/// The `scale` subresource: always `autoscaling/v1` `Scale`.
const SCALE: SubresourceInfo =
    SubresourceInfo::new("scale", "autoscaling", "v1", "Scale", GET_PATCH_UPDATE);

const NAMESPACE_SUBRESOURCES: &[SubresourceInfo] = &[
    SubresourceInfo::new("finalize", "", "v1", "Namespace", &["update"]),
    status("", "v1", "Namespace"),
];
const NODE_SUBRESOURCES: &[SubresourceInfo] = &[
    SubresourceInfo::new("proxy", "", "v1", "NodeProxyOptions", PROXY_VERBS),
    status("", "v1", "Node"),
];
const PVC_SUBRESOURCES: &[SubresourceInfo] = &[status("", "v1", "PersistentVolumeClaim")];
const PV_SUBRESOURCES: &[SubresourceInfo] = &[status("", "v1", "PersistentVolume")];
/// `resize` is served by default from 1.33 (InPlacePodVerticalScaling beta).
const POD_SUBRESOURCES: &[SubresourceInfo] = &[
    SubresourceInfo::new("attach", "", "v1", "PodAttachOptions", CREATE_GET),
    SubresourceInfo::new("binding", "", "v1", "Binding", CREATE),
    SubresourceInfo::new("ephemeralcontainers", "", "v1", "Pod", GET_PATCH_UPDATE),
    SubresourceInfo::new("eviction", "policy", "v1", "Eviction", CREATE),
    SubresourceInfo::new("exec", "", "v1", "PodExecOptions", CREATE_GET),
    SubresourceInfo::new("log", "", "v1", "Pod", &["get"]),
    SubresourceInfo::new("portforward", "", "v1", "PodPortForwardOptions", CREATE_GET),
    SubresourceInfo::new("proxy", "", "v1", "PodProxyOptions", PROXY_VERBS),
    SubresourceInfo::new("resize", "", "v1", "Pod", GET_PATCH_UPDATE),
    status("", "v1", "Pod"),
];
const RC_SUBRESOURCES: &[SubresourceInfo] = &[SCALE, status("", "v1", "ReplicationController")];
const QUOTA_SUBRESOURCES: &[SubresourceInfo] = &[status("", "v1", "ResourceQuota")];
const SERVICE_ACCOUNT_SUBRESOURCES: &[SubresourceInfo] = &[SubresourceInfo::new(
    "token",
    "authentication.k8s.io",
    "v1",
    "TokenRequest",
    CREATE,
)];
const SERVICE_SUBRESOURCES: &[SubresourceInfo] = &[
    SubresourceInfo::new("proxy", "", "v1", "ServiceProxyOptions", PROXY_VERBS),
    status("", "v1", "Service"),
];

const APISERVICE_SUBRESOURCES: &[SubresourceInfo] =
    &[status("apiregistration.k8s.io", "v1", "APIService")];

const DAEMONSET_SUBRESOURCES: &[SubresourceInfo] = &[status("apps", "v1", "DaemonSet")];
const DEPLOYMENT_SUBRESOURCES: &[SubresourceInfo] = &[SCALE, status("apps", "v1", "Deployment")];
const REPLICASET_SUBRESOURCES: &[SubresourceInfo] = &[SCALE, status("apps", "v1", "ReplicaSet")];
const STATEFULSET_SUBRESOURCES: &[SubresourceInfo] = &[SCALE, status("apps", "v1", "StatefulSet")];

const HPA_V2_SUBRESOURCES: &[SubresourceInfo] =
    &[status("autoscaling", "v2", "HorizontalPodAutoscaler")];
const HPA_V1_SUBRESOURCES: &[SubresourceInfo] =
    &[status("autoscaling", "v1", "HorizontalPodAutoscaler")];

const CRONJOB_SUBRESOURCES: &[SubresourceInfo] = &[status("batch", "v1", "CronJob")];
const JOB_SUBRESOURCES: &[SubresourceInfo] = &[status("batch", "v1", "Job")];

const CSR_SUBRESOURCES: &[SubresourceInfo] = &[
    SubresourceInfo::new(
        "approval",
        "certificates.k8s.io",
        "v1",
        "CertificateSigningRequest",
        GET_PATCH_UPDATE,
    ),
    status("certificates.k8s.io", "v1", "CertificateSigningRequest"),
];

const INGRESS_SUBRESOURCES: &[SubresourceInfo] = &[status("networking.k8s.io", "v1", "Ingress")];
const SERVICE_CIDR_SUBRESOURCES: &[SubresourceInfo] =
    &[status("networking.k8s.io", "v1", "ServiceCIDR")];

const PDB_SUBRESOURCES: &[SubresourceInfo] = &[status("policy", "v1", "PodDisruptionBudget")];

const VOLUME_ATTACHMENT_SUBRESOURCES: &[SubresourceInfo] =
    &[status("storage.k8s.io", "v1", "VolumeAttachment")];

const VAP_SUBRESOURCES: &[SubresourceInfo] = &[status(
    "admissionregistration.k8s.io",
    "v1",
    "ValidatingAdmissionPolicy",
)];

const CRD_SUBRESOURCES: &[SubresourceInfo] = &[status(
    "apiextensions.k8s.io",
    "v1",
    "CustomResourceDefinition",
)];

const FLOW_SCHEMA_SUBRESOURCES: &[SubresourceInfo] =
    &[status("flowcontrol.apiserver.k8s.io", "v1", "FlowSchema")];
const PRIORITY_LEVEL_SUBRESOURCES: &[SubresourceInfo] = &[status(
    "flowcontrol.apiserver.k8s.io",
    "v1",
    "PriorityLevelConfiguration",
)];

/// One row per served (group, version, resource). Groups follow the aggregated discovery
/// order (core, then kube-aggregator's priorities: apiregistration.k8s.io 18000 is always
/// listed first, apps 17800, events.k8s.io 17750, authentication 17700, authorization
/// 17600, autoscaling 17500, batch 17400, certificates 17300, networking 17200, policy
/// 17100, rbac 17000, storage 16800, admissionregistration and apiextensions 16700 (ties
/// by name), scheduling 16600, coordination 16500, node 16300, discovery 16200,
/// flowcontrol 16100); versions within a group by version priority (autoscaling v2
/// before v1); resources within a version alphabetically.
///
/// Only what a v1.33 server enables by default: GA versions. Every beta API group version
/// is off by default in 1.33 (the legacy beta exceptions ended with flowcontrol v1beta3 in
/// 1.32), so resource.k8s.io, storagemigration.k8s.io, internal.apiserver.k8s.io,
/// coordination.k8s.io/v1beta1 lease candidates, certificates.k8s.io cluster trust
/// bundles, storage.k8s.io volume attributes classes and mutating admission policies are
/// absent.
static TABLE: &[ResourceInfo] = &[
    // ----- core, /api/v1 -----
    ResourceInfo::new("", "v1", "Binding", "bindings", "binding")
        .verbs(CREATE)
        .virtual_only(),
    ResourceInfo::new(
        "",
        "v1",
        "ComponentStatus",
        "componentstatuses",
        "componentstatus",
    )
    .cluster()
    .verbs(GET_LIST)
    .short_names(&["cs"])
    .virtual_only(),
    ResourceInfo::new("", "v1", "ConfigMap", "configmaps", "configmap").short_names(&["cm"]),
    ResourceInfo::new("", "v1", "Endpoints", "endpoints", "endpoints")
        .short_names(&["ep"])
        .etcd("services/endpoints"),
    ResourceInfo::new("", "v1", "Event", "events", "event").short_names(&["ev"]),
    ResourceInfo::new("", "v1", "LimitRange", "limitranges", "limitrange").short_names(&["limits"]),
    ResourceInfo::new("", "v1", "Namespace", "namespaces", "namespace")
        .cluster()
        .verbs(NAMESPACE_VERBS)
        .short_names(&["ns"])
        .subresources(NAMESPACE_SUBRESOURCES),
    ResourceInfo::new("", "v1", "Node", "nodes", "node")
        .cluster()
        .short_names(&["no"])
        .subresources(NODE_SUBRESOURCES)
        .etcd("minions"),
    ResourceInfo::new(
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        "persistentvolumeclaim",
    )
    .short_names(&["pvc"])
    .subresources(PVC_SUBRESOURCES),
    ResourceInfo::new(
        "",
        "v1",
        "PersistentVolume",
        "persistentvolumes",
        "persistentvolume",
    )
    .cluster()
    .short_names(&["pv"])
    .subresources(PV_SUBRESOURCES),
    ResourceInfo::new("", "v1", "Pod", "pods", "pod")
        .short_names(&["po"])
        .categories(ALL)
        .subresources(POD_SUBRESOURCES),
    ResourceInfo::new("", "v1", "PodTemplate", "podtemplates", "podtemplate"),
    ResourceInfo::new(
        "",
        "v1",
        "ReplicationController",
        "replicationcontrollers",
        "replicationcontroller",
    )
    .short_names(&["rc"])
    .categories(ALL)
    .subresources(RC_SUBRESOURCES)
    .etcd("controllers"),
    ResourceInfo::new("", "v1", "ResourceQuota", "resourcequotas", "resourcequota")
        .short_names(&["quota"])
        .subresources(QUOTA_SUBRESOURCES),
    ResourceInfo::new("", "v1", "Secret", "secrets", "secret"),
    ResourceInfo::new(
        "",
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        "serviceaccount",
    )
    .short_names(&["sa"])
    .subresources(SERVICE_ACCOUNT_SUBRESOURCES),
    ResourceInfo::new("", "v1", "Service", "services", "service")
        .short_names(&["svc"])
        .categories(ALL)
        .subresources(SERVICE_SUBRESOURCES)
        .etcd("services/specs"),
    // ----- apiregistration.k8s.io (kube-aggregator; keys carry the group) -----
    ResourceInfo::new(
        "apiregistration.k8s.io",
        "v1",
        "APIService",
        "apiservices",
        "apiservice",
    )
    .cluster()
    .categories(API_EXTENSIONS)
    .subresources(APISERVICE_SUBRESOURCES)
    .etcd("apiregistration.k8s.io/apiservices"),
    // ----- apps -----
    ResourceInfo::new(
        "apps",
        "v1",
        "ControllerRevision",
        "controllerrevisions",
        "controllerrevision",
    ),
    ResourceInfo::new("apps", "v1", "DaemonSet", "daemonsets", "daemonset")
        .short_names(&["ds"])
        .categories(ALL)
        .subresources(DAEMONSET_SUBRESOURCES),
    ResourceInfo::new("apps", "v1", "Deployment", "deployments", "deployment")
        .short_names(&["deploy"])
        .categories(ALL)
        .subresources(DEPLOYMENT_SUBRESOURCES),
    ResourceInfo::new("apps", "v1", "ReplicaSet", "replicasets", "replicaset")
        .short_names(&["rs"])
        .categories(ALL)
        .subresources(REPLICASET_SUBRESOURCES),
    ResourceInfo::new("apps", "v1", "StatefulSet", "statefulsets", "statefulset")
        .short_names(&["sts"])
        .categories(ALL)
        .subresources(STATEFULSET_SUBRESOURCES),
    // ----- events.k8s.io: cohabits with core events, stored as core v1 Events -----
    ResourceInfo::new("events.k8s.io", "v1", "Event", "events", "event")
        .short_names(&["ev"])
        .stored_as("", "v1"),
    // ----- authentication.k8s.io -----
    ResourceInfo::new(
        "authentication.k8s.io",
        "v1",
        "SelfSubjectReview",
        "selfsubjectreviews",
        "selfsubjectreview",
    )
    .cluster()
    .verbs(CREATE)
    .virtual_only(),
    ResourceInfo::new(
        "authentication.k8s.io",
        "v1",
        "TokenReview",
        "tokenreviews",
        "tokenreview",
    )
    .cluster()
    .verbs(CREATE)
    .virtual_only(),
    // ----- authorization.k8s.io -----
    ResourceInfo::new(
        "authorization.k8s.io",
        "v1",
        "LocalSubjectAccessReview",
        "localsubjectaccessreviews",
        "localsubjectaccessreview",
    )
    .verbs(CREATE)
    .virtual_only(),
    ResourceInfo::new(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        "selfsubjectaccessreview",
    )
    .cluster()
    .verbs(CREATE)
    .virtual_only(),
    ResourceInfo::new(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectRulesReview",
        "selfsubjectrulesreviews",
        "selfsubjectrulesreview",
    )
    .cluster()
    .verbs(CREATE)
    .virtual_only(),
    ResourceInfo::new(
        "authorization.k8s.io",
        "v1",
        "SubjectAccessReview",
        "subjectaccessreviews",
        "subjectaccessreview",
    )
    .cluster()
    .verbs(CREATE)
    .virtual_only(),
    // ----- autoscaling: v2 preferred; both versions store autoscaling/v2 -----
    ResourceInfo::new(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        "horizontalpodautoscaler",
    )
    .short_names(&["hpa"])
    .categories(ALL)
    .subresources(HPA_V2_SUBRESOURCES),
    ResourceInfo::new(
        "autoscaling",
        "v1",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        "horizontalpodautoscaler",
    )
    .short_names(&["hpa"])
    .categories(ALL)
    .subresources(HPA_V1_SUBRESOURCES)
    .stored_as("autoscaling", "v2"),
    // ----- batch -----
    ResourceInfo::new("batch", "v1", "CronJob", "cronjobs", "cronjob")
        .short_names(&["cj"])
        .categories(ALL)
        .subresources(CRONJOB_SUBRESOURCES),
    ResourceInfo::new("batch", "v1", "Job", "jobs", "job")
        .categories(ALL)
        .subresources(JOB_SUBRESOURCES),
    // ----- certificates.k8s.io -----
    ResourceInfo::new(
        "certificates.k8s.io",
        "v1",
        "CertificateSigningRequest",
        "certificatesigningrequests",
        "certificatesigningrequest",
    )
    .cluster()
    .short_names(&["csr"])
    .subresources(CSR_SUBRESOURCES),
    // ----- networking.k8s.io -----
    ResourceInfo::new(
        "networking.k8s.io",
        "v1",
        "IngressClass",
        "ingressclasses",
        "ingressclass",
    )
    .cluster(),
    ResourceInfo::new("networking.k8s.io", "v1", "Ingress", "ingresses", "ingress")
        .short_names(&["ing"])
        .subresources(INGRESS_SUBRESOURCES)
        .etcd("ingress"),
    // IPAddress and ServiceCIDR went GA in 1.33; a 1.33 server still stores the v1beta1
    // encoding so that 1.32 servers can read it (storage version = newest version
    // introduced by the previous minor).
    ResourceInfo::new(
        "networking.k8s.io",
        "v1",
        "IPAddress",
        "ipaddresses",
        "ipaddress",
    )
    .cluster()
    .short_names(&["ip"])
    .stored_as("networking.k8s.io", "v1beta1"),
    ResourceInfo::new(
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        "networkpolicies",
        "networkpolicy",
    )
    .short_names(&["netpol"]),
    ResourceInfo::new(
        "networking.k8s.io",
        "v1",
        "ServiceCIDR",
        "servicecidrs",
        "servicecidr",
    )
    .cluster()
    .subresources(SERVICE_CIDR_SUBRESOURCES)
    .stored_as("networking.k8s.io", "v1beta1"),
    // ----- policy -----
    ResourceInfo::new(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        "poddisruptionbudget",
    )
    .short_names(&["pdb"])
    .subresources(PDB_SUBRESOURCES),
    // ----- rbac.authorization.k8s.io -----
    ResourceInfo::new(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        "clusterrolebinding",
    )
    .cluster(),
    ResourceInfo::new(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        "clusterrole",
    )
    .cluster(),
    ResourceInfo::new(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        "rolebinding",
    ),
    ResourceInfo::new("rbac.authorization.k8s.io", "v1", "Role", "roles", "role"),
    // ----- storage.k8s.io -----
    ResourceInfo::new(
        "storage.k8s.io",
        "v1",
        "CSIDriver",
        "csidrivers",
        "csidriver",
    )
    .cluster(),
    ResourceInfo::new("storage.k8s.io", "v1", "CSINode", "csinodes", "csinode").cluster(),
    ResourceInfo::new(
        "storage.k8s.io",
        "v1",
        "CSIStorageCapacity",
        "csistoragecapacities",
        "csistoragecapacity",
    ),
    ResourceInfo::new(
        "storage.k8s.io",
        "v1",
        "StorageClass",
        "storageclasses",
        "storageclass",
    )
    .cluster()
    .short_names(&["sc"]),
    ResourceInfo::new(
        "storage.k8s.io",
        "v1",
        "VolumeAttachment",
        "volumeattachments",
        "volumeattachment",
    )
    .cluster()
    .subresources(VOLUME_ATTACHMENT_SUBRESOURCES),
    // ----- admissionregistration.k8s.io -----
    ResourceInfo::new(
        "admissionregistration.k8s.io",
        "v1",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        "mutatingwebhookconfiguration",
    )
    .cluster()
    .categories(API_EXTENSIONS),
    ResourceInfo::new(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingAdmissionPolicy",
        "validatingadmissionpolicies",
        "validatingadmissionpolicy",
    )
    .cluster()
    .categories(API_EXTENSIONS)
    .subresources(VAP_SUBRESOURCES),
    ResourceInfo::new(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingAdmissionPolicyBinding",
        "validatingadmissionpolicybindings",
        "validatingadmissionpolicybinding",
    )
    .cluster()
    .categories(API_EXTENSIONS),
    ResourceInfo::new(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        "validatingwebhookconfiguration",
    )
    .cluster()
    .categories(API_EXTENSIONS),
    // ----- apiextensions.k8s.io: keys carry the group; stored in the more compact
    // v1beta1 encoding -----
    ResourceInfo::new(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        "customresourcedefinition",
    )
    .cluster()
    .short_names(&["crd", "crds"])
    .categories(API_EXTENSIONS)
    .subresources(CRD_SUBRESOURCES)
    .etcd("apiextensions.k8s.io/customresourcedefinitions")
    .stored_as("apiextensions.k8s.io", "v1beta1"),
    // ----- scheduling.k8s.io -----
    ResourceInfo::new(
        "scheduling.k8s.io",
        "v1",
        "PriorityClass",
        "priorityclasses",
        "priorityclass",
    )
    .cluster()
    .short_names(&["pc"]),
    // ----- coordination.k8s.io -----
    ResourceInfo::new("coordination.k8s.io", "v1", "Lease", "leases", "lease"),
    // ----- node.k8s.io -----
    ResourceInfo::new(
        "node.k8s.io",
        "v1",
        "RuntimeClass",
        "runtimeclasses",
        "runtimeclass",
    )
    .cluster(),
    // ----- discovery.k8s.io -----
    ResourceInfo::new(
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        "endpointslices",
        "endpointslice",
    ),
    // ----- flowcontrol.apiserver.k8s.io -----
    ResourceInfo::new(
        "flowcontrol.apiserver.k8s.io",
        "v1",
        "FlowSchema",
        "flowschemas",
        "flowschema",
    )
    .cluster()
    .subresources(FLOW_SCHEMA_SUBRESOURCES),
    ResourceInfo::new(
        "flowcontrol.apiserver.k8s.io",
        "v1",
        "PriorityLevelConfiguration",
        "prioritylevelconfigurations",
        "prioritylevelconfiguration",
    )
    .cluster()
    .subresources(PRIORITY_LEVEL_SUBRESOURCES),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// 61 rows: 60 resources plus the second (autoscaling/v1) HPA version.
    const ROWS: usize = 61;
    /// What `kubectl api-resources` lists against a v1.33 kubeadm cluster without CRDs.
    const KUBECTL_API_RESOURCES: usize = 60;

    #[test]
    fn counts() {
        assert_eq!(all().len(), ROWS);
        assert_eq!(preferred_resources().len(), KUBECTL_API_RESOURCES);
        assert_eq!(resources_of("", "v1").count(), 17);
        let with_subresources: usize = all().iter().map(|r| r.subresources.len()).sum();
        assert_eq!(with_subresources, 44);
    }

    #[test]
    fn rows_are_unique() {
        for (i, a) in all().iter().enumerate() {
            for b in &all()[i + 1..] {
                assert!(
                    (a.group, a.version, a.plural) != (b.group, b.version, b.plural),
                    "duplicate row {}/{} {}",
                    a.group,
                    a.version,
                    a.plural
                );
                assert!(
                    (a.group, a.version, a.kind) != (b.group, b.version, b.kind),
                    "duplicate kind {}/{} {}",
                    a.group,
                    a.version,
                    a.kind
                );
            }
        }
    }

    #[test]
    fn groups_in_discovery_order() {
        let names: Vec<&str> = groups().iter().map(|g| g.group).collect();
        assert_eq!(
            names,
            [
                "",
                "apiregistration.k8s.io",
                "apps",
                "events.k8s.io",
                "authentication.k8s.io",
                "authorization.k8s.io",
                "autoscaling",
                "batch",
                "certificates.k8s.io",
                "networking.k8s.io",
                "policy",
                "rbac.authorization.k8s.io",
                "storage.k8s.io",
                "admissionregistration.k8s.io",
                "apiextensions.k8s.io",
                "scheduling.k8s.io",
                "coordination.k8s.io",
                "node.k8s.io",
                "discovery.k8s.io",
                "flowcontrol.apiserver.k8s.io",
            ]
        );
        let autoscaling = group("autoscaling").expect("autoscaling is served");
        assert_eq!(autoscaling.versions, ["v2", "v1"]);
        assert_eq!(autoscaling.preferred_version(), "v2");
        for g in groups().iter().filter(|g| g.group != "autoscaling") {
            assert_eq!(g.versions, ["v1"], "{}", g.group);
        }
        assert!(group("resource.k8s.io").is_none());
    }

    #[test]
    fn each_group_version_is_contiguous_and_alphabetical() {
        let mut seen: Vec<(&str, &str)> = Vec::new();
        for pair in all().windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            if (a.group, a.version) == (b.group, b.version) {
                assert!(a.plural < b.plural, "{} before {}", a.plural, b.plural);
            } else {
                seen.push((a.group, a.version));
                assert!(
                    !seen.contains(&(b.group, b.version)),
                    "{}/{} split",
                    b.group,
                    b.version
                );
            }
        }
        for r in all() {
            for pair in r.subresources.windows(2) {
                assert!(pair[0].name < pair[1].name, "{} subresources", r.plural);
            }
        }
    }

    #[test]
    fn names_follow_kinds() {
        for r in all() {
            assert_eq!(r.singular, r.kind.to_lowercase(), "{}", r.plural);
            assert!(!r.verbs.is_empty());
            let mut sorted = r.verbs.to_vec();
            sorted.sort_unstable();
            assert_eq!(
                sorted, r.verbs,
                "{} verbs sorted as discovery lists them",
                r.plural
            );
        }
    }

    #[test]
    fn core_scopes() {
        let expected = [
            ("bindings", true),
            ("componentstatuses", false),
            ("configmaps", true),
            ("endpoints", true),
            ("events", true),
            ("limitranges", true),
            ("namespaces", false),
            ("nodes", false),
            ("persistentvolumeclaims", true),
            ("persistentvolumes", false),
            ("pods", true),
            ("podtemplates", true),
            ("replicationcontrollers", true),
            ("resourcequotas", true),
            ("secrets", true),
            ("serviceaccounts", true),
            ("services", true),
        ];
        let actual: Vec<(&str, bool)> = resources_of("", "v1")
            .map(|r| (r.plural, r.namespaced))
            .collect();
        assert_eq!(actual, expected);
    }

    #[test]
    fn etcd_keys() {
        let key = |g: &str, p: &str| lookup(g, "v1", p).map(|r| r.etcd_resource);
        assert_eq!(key("", "nodes"), Some("minions"));
        assert_eq!(key("", "services"), Some("services/specs"));
        assert_eq!(key("", "endpoints"), Some("services/endpoints"));
        assert_eq!(key("", "replicationcontrollers"), Some("controllers"));
        assert_eq!(key("", "pods"), Some("pods"));
        assert_eq!(key("networking.k8s.io", "ingresses"), Some("ingress"));
        assert_eq!(
            key("networking.k8s.io", "networkpolicies"),
            Some("networkpolicies")
        );
        assert_eq!(key("apps", "deployments"), Some("deployments"));
        assert_eq!(key("events.k8s.io", "events"), Some("events"));
        assert_eq!(
            key("apiregistration.k8s.io", "apiservices"),
            Some("apiregistration.k8s.io/apiservices")
        );
        assert_eq!(
            key("apiextensions.k8s.io", "customresourcedefinitions"),
            Some("apiextensions.k8s.io/customresourcedefinitions")
        );
        assert_eq!(
            lookup("autoscaling", "v2", "horizontalpodautoscalers").map(|r| r.etcd_resource),
            Some("horizontalpodautoscalers")
        );
    }

    #[test]
    fn virtual_resources_have_no_storage() {
        let mut unstored: Vec<String> = all()
            .iter()
            .filter(|r| !r.is_stored())
            .map(|r| format!("{}/{}", r.api_version(), r.plural))
            .collect();
        unstored.sort();
        assert_eq!(
            unstored,
            [
                "authentication.k8s.io/v1/selfsubjectreviews",
                "authentication.k8s.io/v1/tokenreviews",
                "authorization.k8s.io/v1/localsubjectaccessreviews",
                "authorization.k8s.io/v1/selfsubjectaccessreviews",
                "authorization.k8s.io/v1/selfsubjectrulesreviews",
                "authorization.k8s.io/v1/subjectaccessreviews",
                "v1/bindings",
                "v1/componentstatuses",
            ]
        );
        for r in all().iter().filter(|r| !r.is_stored()) {
            assert!(
                !r.has_verb("watch") && !r.has_verb("delete"),
                "{}",
                r.plural
            );
        }
    }

    #[test]
    fn storage_versions() {
        let stored = |g: &str, v: &str, p: &str| {
            lookup(g, v, p).map(|r| (r.storage_group, r.storage_version))
        };
        assert_eq!(
            stored("autoscaling", "v1", "horizontalpodautoscalers"),
            Some(("autoscaling", "v2"))
        );
        assert_eq!(
            stored("autoscaling", "v2", "horizontalpodautoscalers"),
            Some(("autoscaling", "v2"))
        );
        assert_eq!(stored("events.k8s.io", "v1", "events"), Some(("", "v1")));
        assert_eq!(stored("", "v1", "events"), Some(("", "v1")));
        assert_eq!(
            stored("networking.k8s.io", "v1", "servicecidrs"),
            Some(("networking.k8s.io", "v1beta1"))
        );
        assert_eq!(
            stored("apiextensions.k8s.io", "v1", "customresourcedefinitions"),
            Some(("apiextensions.k8s.io", "v1beta1"))
        );
        assert_eq!(stored("apps", "v1", "deployments"), Some(("apps", "v1")));
        // Resources served at several versions share one etcd key segment.
        let hpa1 = lookup("autoscaling", "v1", "horizontalpodautoscalers").map(|r| r.etcd_resource);
        let hpa2 = lookup("autoscaling", "v2", "horizontalpodautoscalers").map(|r| r.etcd_resource);
        assert_eq!(hpa1, hpa2);
    }

    #[test]
    fn spot_checks() {
        let pods = lookup("", "v1", "pods").expect("pods");
        assert_eq!(pods.short_names, ["po"]);
        assert_eq!(pods.categories, ["all"]);
        let pod_subresources: Vec<&str> = pods.subresources.iter().map(|s| s.name).collect();
        assert_eq!(
            pod_subresources,
            [
                "attach",
                "binding",
                "ephemeralcontainers",
                "eviction",
                "exec",
                "log",
                "portforward",
                "proxy",
                "resize",
                "status"
            ]
        );
        let eviction = pods.subresource("eviction").expect("eviction");
        assert_eq!(
            (eviction.api_version().as_str(), eviction.kind),
            ("policy/v1", "Eviction")
        );
        assert_eq!(pods.subresource("log").map(|s| s.verbs), Some(&["get"][..]));

        assert_eq!(
            lookup("", "v1", "services").map(|r| r.short_names),
            Some(&["svc"][..])
        );
        let scale = lookup("apps", "v1", "deployments").and_then(|d| d.subresource("scale"));
        assert_eq!(
            scale.map(|s| (s.group, s.version, s.kind, s.verbs)),
            Some(("autoscaling", "v1", "Scale", GET_PATCH_UPDATE))
        );
        let token = lookup("", "v1", "serviceaccounts").and_then(|r| r.subresource("token"));
        assert_eq!(
            token.map(|s| (s.group, s.kind)),
            Some(("authentication.k8s.io", "TokenRequest"))
        );
        let namespaces = lookup("", "v1", "namespaces").expect("namespaces");
        assert!(!namespaces.has_verb("deletecollection"));
        assert_eq!(
            namespaces.subresource("finalize").map(|s| s.verbs),
            Some(&["update"][..])
        );
        let csr = by_kind("certificates.k8s.io", "v1", "CertificateSigningRequest").expect("csr");
        assert!(csr.subresource("approval").is_some());
        assert_eq!(csr.short_names, ["csr"]);
        let crd = lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions").expect("crd");
        assert_eq!(crd.short_names, ["crd", "crds"]);
        assert_eq!(crd.categories, ["api-extensions"]);
        assert_eq!(
            lookup("", "v1", "componentstatuses").map(|r| r.verbs),
            Some(GET_LIST)
        );
        assert_eq!(lookup("", "v1", "bindings").map(|r| r.verbs), Some(CREATE));
        assert_eq!(
            by_kind("", "v1", "Endpoints").map(|r| r.singular),
            Some("endpoints")
        );
    }

    #[test]
    fn categories_all() {
        let mut all_category: Vec<&str> = preferred_resources()
            .into_iter()
            .filter(|r| r.categories.contains(&"all"))
            .map(|r| r.plural)
            .collect();
        all_category.sort_unstable();
        assert_eq!(
            all_category,
            [
                "cronjobs",
                "daemonsets",
                "deployments",
                "horizontalpodautoscalers",
                "jobs",
                "pods",
                "replicasets",
                "replicationcontrollers",
                "services",
                "statefulsets"
            ]
        );
    }
}
