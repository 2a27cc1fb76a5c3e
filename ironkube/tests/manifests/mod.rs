//! One sample object of every common kind, as kubectl users write them, for the acceptance
//! tests of the API server core (`kubectl.rs`, `storage.rs`).
//!
//! Every sample lives in (or, when cluster-scoped, is named after) one namespace, so each
//! kubectl version can apply its own copy to the same cluster.

#![allow(dead_code)] // each test binary uses its own part

use serde_json::{Value, json};

/// One object of the multi-document manifest.
pub struct Sample {
    pub api_version: &'static str,
    pub kind: &'static str,
    /// What `kubectl get` takes for the type: `deployments.apps`, `configmaps`.
    pub resource: &'static str,
    pub name: String,
    /// `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    /// A field the server must keep as written: a JSON pointer and its value.
    pub field: (&'static str, Value),
    /// The YAML document.
    pub yaml: String,
}

impl Sample {
    /// The group of the sample's apiVersion; `""` for the core group.
    pub fn group(&self) -> &'static str {
        self.api_version
            .rsplit_once('/')
            .map(|(group, _)| group)
            .unwrap_or("")
    }

    /// How kubectl names the object in `apply`, `create` and `-o name` output:
    /// `deployment.apps/web`, `configmap/settings`.
    pub fn printed(&self) -> String {
        let kind = self.kind.to_lowercase();
        match self.group() {
            "" => format!("{kind}/{}", self.name),
            group => format!("{kind}.{group}/{}", self.name),
        }
    }

    /// kubectl arguments addressing this object: `<resource> <name> [-n <namespace>]`.
    pub fn get_args(&self) -> Vec<String> {
        let mut args = vec![self.resource.to_string(), self.name.clone()];
        if let Some(ns) = &self.namespace {
            args.extend(["-n".to_string(), ns.clone()]);
        }
        args
    }
}

/// The whole manifest: the samples' documents separated by `---`.
pub fn manifest(samples: &[Sample]) -> String {
    samples
        .iter()
        .map(|s| s.yaml.as_str())
        .collect::<Vec<_>>()
        .join("---\n")
}

/// (apiVersion, kind, resource, name, namespaced, checked field, its value, body after
/// metadata). `{ns}` in a name or body stands for the namespace.
type Row = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    bool,
    &'static str,
    fn() -> Value,
    &'static str,
);

const ROWS: &[Row] = &[
    (
        "v1",
        "Namespace",
        "namespaces",
        "{ns}",
        false,
        "/metadata/labels/suite",
        || json!("acceptance"),
        "",
    ),
    (
        "v1",
        "ConfigMap",
        "configmaps",
        "settings",
        true,
        "/data/greeting",
        || json!("hello"),
        "data:\n  greeting: hello\n",
    ),
    (
        "v1",
        "Secret",
        "secrets",
        "credentials",
        true,
        "/data/password",
        || json!("aHVudGVyMg=="),
        "type: Opaque\nstringData:\n  password: hunter2\n",
    ),
    (
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        "robot",
        true,
        "/metadata/name",
        || json!("robot"),
        "",
    ),
    (
        "v1",
        "Service",
        "services",
        "web",
        true,
        "/spec/ports/0/targetPort",
        || json!(8080),
        "spec:\n  selector:\n    app: web\n  ports:\n  - name: http\n    port: 80\n    targetPort: 8080\n",
    ),
    (
        "v1",
        "Pod",
        "pods",
        "web-0",
        true,
        "/spec/containers/0/image",
        || json!("busybox:1.36"),
        "spec:\n  containers:\n  - name: main\n    image: busybox:1.36\n    command: [\"sleep\", \"3600\"]\n",
    ),
    (
        "apps/v1",
        "Deployment",
        "deployments.apps",
        "web",
        true,
        "/spec/replicas",
        || json!(2),
        "spec:\n  replicas: 2\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n      - name: main\n        image: busybox:1.36\n",
    ),
    (
        "apps/v1",
        "ReplicaSet",
        "replicasets.apps",
        "cache",
        true,
        "/spec/replicas",
        || json!(1),
        "spec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: cache\n  template:\n    metadata:\n      labels:\n        app: cache\n    spec:\n      containers:\n      - name: main\n        image: busybox:1.36\n",
    ),
    (
        "apps/v1",
        "StatefulSet",
        "statefulsets.apps",
        "db",
        true,
        "/spec/serviceName",
        || json!("web"),
        "spec:\n  serviceName: web\n  replicas: 1\n  selector:\n    matchLabels:\n      app: db\n  template:\n    metadata:\n      labels:\n        app: db\n    spec:\n      containers:\n      - name: main\n        image: busybox:1.36\n",
    ),
    (
        "apps/v1",
        "DaemonSet",
        "daemonsets.apps",
        "agent",
        true,
        "/spec/template/spec/containers/0/name",
        || json!("main"),
        "spec:\n  selector:\n    matchLabels:\n      app: agent\n  template:\n    metadata:\n      labels:\n        app: agent\n    spec:\n      containers:\n      - name: main\n        image: busybox:1.36\n",
    ),
    (
        "batch/v1",
        "Job",
        "jobs.batch",
        "once",
        true,
        "/spec/template/spec/restartPolicy",
        || json!("Never"),
        "spec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: main\n        image: busybox:1.36\n        command: [\"true\"]\n",
    ),
    (
        "batch/v1",
        "CronJob",
        "cronjobs.batch",
        "nightly",
        true,
        "/spec/schedule",
        || json!("*/5 * * * *"),
        "spec:\n  schedule: \"*/5 * * * *\"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: OnFailure\n          containers:\n          - name: main\n            image: busybox:1.36\n            command: [\"true\"]\n",
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "Role",
        "roles.rbac.authorization.k8s.io",
        "reader",
        true,
        "/rules/0/resources/0",
        || json!("configmaps"),
        "rules:\n- apiGroups: [\"\"]\n  resources: [\"configmaps\"]\n  verbs: [\"get\", \"list\"]\n",
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
        "rolebindings.rbac.authorization.k8s.io",
        "reader",
        true,
        "/roleRef/name",
        || json!("reader"),
        "roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: reader\nsubjects:\n- kind: ServiceAccount\n  name: robot\n  namespace: {ns}\n",
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "ClusterRole",
        "clusterroles.rbac.authorization.k8s.io",
        "{ns}-node-reader",
        false,
        "/rules/0/resources/0",
        || json!("nodes"),
        "rules:\n- apiGroups: [\"\"]\n  resources: [\"nodes\"]\n  verbs: [\"get\"]\n",
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        "clusterrolebindings.rbac.authorization.k8s.io",
        "{ns}-node-reader",
        false,
        "/subjects/0/namespace",
        || Value::Null, // replaced by the namespace below
        "roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: {ns}-node-reader\nsubjects:\n- kind: ServiceAccount\n  name: robot\n  namespace: {ns}\n",
    ),
    (
        "coordination.k8s.io/v1",
        "Lease",
        "leases.coordination.k8s.io",
        "leader",
        true,
        "/spec/holderIdentity",
        || json!("replica-a"),
        "spec:\n  holderIdentity: replica-a\n  leaseDurationSeconds: 15\n",
    ),
    (
        "scheduling.k8s.io/v1",
        "PriorityClass",
        "priorityclasses.scheduling.k8s.io",
        "{ns}-high",
        false,
        "/value",
        || json!(1000),
        "value: 1000\ndescription: acceptance suite priority\n",
    ),
    (
        "networking.k8s.io/v1",
        "Ingress",
        "ingresses.networking.k8s.io",
        "web",
        true,
        "/spec/rules/0/host",
        || json!("web.example.test"),
        "spec:\n  rules:\n  - host: web.example.test\n    http:\n      paths:\n      - path: /\n        pathType: Prefix\n        backend:\n          service:\n            name: web\n            port:\n              number: 80\n",
    ),
    (
        "networking.k8s.io/v1",
        "NetworkPolicy",
        "networkpolicies.networking.k8s.io",
        "web-only",
        true,
        "/spec/podSelector/matchLabels/app",
        || json!("web"),
        "spec:\n  podSelector:\n    matchLabels:\n      app: web\n  policyTypes: [\"Ingress\"]\n",
    ),
    (
        "policy/v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets.policy",
        "web",
        true,
        "/spec/minAvailable",
        || json!(1),
        "spec:\n  minAvailable: 1\n  selector:\n    matchLabels:\n      app: web\n",
    ),
    (
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers.autoscaling",
        "web",
        true,
        "/spec/maxReplicas",
        || json!(3),
        "spec:\n  scaleTargetRef:\n    apiVersion: apps/v1\n    kind: Deployment\n    name: web\n  minReplicas: 1\n  maxReplicas: 3\n  metrics:\n  - type: Resource\n    resource:\n      name: cpu\n      target:\n        type: Utilization\n        averageUtilization: 80\n",
    ),
    (
        "storage.k8s.io/v1",
        "StorageClass",
        "storageclasses.storage.k8s.io",
        "{ns}-local",
        false,
        "/provisioner",
        || json!("example.test/none"),
        "provisioner: example.test/none\nreclaimPolicy: Delete\nvolumeBindingMode: WaitForFirstConsumer\n",
    ),
    (
        "v1",
        "PersistentVolume",
        "persistentvolumes",
        "{ns}-volume",
        false,
        "/spec/capacity/storage",
        || json!("1Gi"),
        "spec:\n  capacity:\n    storage: 1Gi\n  accessModes: [\"ReadWriteOnce\"]\n  storageClassName: {ns}-local\n  hostPath:\n    path: /tmp/{ns}-volume\n",
    ),
    (
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        "data",
        true,
        "/spec/resources/requests/storage",
        || json!("1Gi"),
        "spec:\n  accessModes: [\"ReadWriteOnce\"]\n  storageClassName: {ns}-local\n  resources:\n    requests:\n      storage: 1Gi\n",
    ),
    (
        "v1",
        "LimitRange",
        "limitranges",
        "defaults",
        true,
        "/spec/limits/0/default/cpu",
        || json!("500m"),
        "spec:\n  limits:\n  - type: Container\n    default:\n      cpu: 500m\n    defaultRequest:\n      cpu: 100m\n",
    ),
    (
        "v1",
        "ResourceQuota",
        "resourcequotas",
        "pods",
        true,
        "/spec/hard/pods",
        || json!("50"),
        "spec:\n  hard:\n    pods: \"50\"\n",
    ),
    (
        "v1",
        "Event",
        "events",
        "web-0.started",
        true,
        "/reason",
        || json!("Started"),
        "involvedObject:\n  apiVersion: v1\n  kind: Pod\n  name: web-0\n  namespace: {ns}\nreason: Started\nmessage: an event from the acceptance suite\ntype: Normal\n",
    ),
];

/// One sample of every common kind, in (or named after) namespace `ns`; the Namespace
/// itself comes first so one `kubectl apply -f` can create them all.
pub fn all_kinds(ns: &str) -> Vec<Sample> {
    ROWS.iter()
        .map(
            |&(api_version, kind, resource, name, namespaced, pointer, value, body)| {
                let name = name.replace("{ns}", ns);
                let body = body.replace("{ns}", ns);
                let mut yaml =
                    format!("apiVersion: {api_version}\nkind: {kind}\nmetadata:\n  name: {name}\n");
                if namespaced {
                    yaml.push_str(&format!("  namespace: {ns}\n"));
                }
                if kind == "Namespace" {
                    yaml.push_str("  labels:\n    suite: acceptance\n");
                }
                yaml.push_str(&body);
                let value = match value() {
                    Value::Null => json!(ns),
                    v => v,
                };
                Sample {
                    api_version,
                    kind,
                    resource,
                    name,
                    namespace: namespaced.then(|| ns.to_string()),
                    field: (pointer, value),
                    yaml,
                }
            },
        )
        .collect()
}
