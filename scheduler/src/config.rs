//! `KubeSchedulerConfiguration` (kubescheduler.config.k8s.io/v1): profiles, their plugins
//! merged over upstream's default profile, plugin args, and the queue and leader-election
//! settings, with upstream's defaults.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";
pub const API_VERSION: &str = "kubescheduler.config.k8s.io/v1";
pub const KIND: &str = "KubeSchedulerConfiguration";

/// Why a configuration file was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("decoding the scheduler configuration: {0}")]
    Decode(String),
    #[error("no kind {kind:?} is registered for version {api_version:?}")]
    UnknownKind { kind: String, api_version: String },
    #[error("invalid scheduler configuration: {0}")]
    Invalid(String),
}

/// A plugin named in a plugin set.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PluginRef {
    pub name: String,
    #[serde(default)]
    pub weight: Option<i32>,
}

impl PluginRef {
    fn new(name: &str, weight: Option<i32>) -> Self {
        PluginRef { name: name.to_string(), weight }
    }
}

/// The plugins enabled and disabled at one extension point.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PluginSet {
    #[serde(default)]
    pub enabled: Vec<PluginRef>,
    #[serde(default)]
    pub disabled: Vec<PluginRef>,
}

impl PluginSet {
    /// Upstream's `mergePluginSet`: custom disabled entries (or `*`) drop defaults, custom
    /// entries re-configure defaults in place, the rest of the custom entries follow.
    fn merge(default: &PluginSet, custom: &PluginSet) -> PluginSet {
        let mut disabled: Vec<PluginRef> = custom.disabled.iter().map(|p| PluginRef::new(&p.name, None)).collect();
        disabled.extend(default.disabled.iter().map(|p| PluginRef::new(&p.name, None)));
        let off = |name: &str| disabled.iter().any(|d| d.name == name || d.name == "*");
        let mut replaced = vec![false; custom.enabled.len()];
        let mut enabled = Vec::new();
        if !disabled.iter().any(|d| d.name == "*") {
            for d in &default.enabled {
                if off(&d.name) {
                    continue;
                }
                match custom.enabled.iter().position(|c| c.name == d.name) {
                    Some(i) => {
                        replaced[i] = true;
                        enabled.push(custom.enabled[i].clone());
                    }
                    None => enabled.push(d.clone()),
                }
            }
        }
        enabled.extend(custom.enabled.iter().zip(&replaced).filter(|(_, r)| !**r).map(|(c, _)| c.clone()));
        PluginSet { enabled, disabled }
    }
}

/// Plugin sets per extension point.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Plugins {
    #[serde(default)]
    pub multi_point: PluginSet,
    #[serde(default)]
    pub pre_enqueue: PluginSet,
    #[serde(default)]
    pub queue_sort: PluginSet,
    #[serde(default)]
    pub pre_filter: PluginSet,
    #[serde(default)]
    pub filter: PluginSet,
    #[serde(default)]
    pub post_filter: PluginSet,
    #[serde(default)]
    pub pre_score: PluginSet,
    #[serde(default)]
    pub score: PluginSet,
    #[serde(default)]
    pub reserve: PluginSet,
    #[serde(default)]
    pub permit: PluginSet,
    #[serde(default)]
    pub pre_bind: PluginSet,
    #[serde(default)]
    pub bind: PluginSet,
    #[serde(default)]
    pub post_bind: PluginSet,
}

impl Plugins {
    /// The set of one extension point by its upstream name (`PreFilter`, `Score`, ...).
    pub fn point(&self, name: &str) -> &PluginSet {
        match name {
            "MultiPoint" => &self.multi_point,
            "PreEnqueue" => &self.pre_enqueue,
            "QueueSort" => &self.queue_sort,
            "PreFilter" => &self.pre_filter,
            "Filter" => &self.filter,
            "PostFilter" => &self.post_filter,
            "PreScore" => &self.pre_score,
            "Score" => &self.score,
            "Reserve" => &self.reserve,
            "Permit" => &self.permit,
            "PreBind" => &self.pre_bind,
            "Bind" => &self.bind,
            _ => &self.post_bind,
        }
    }

    fn all_sets(&self) -> [&PluginSet; 13] {
        [
            &self.multi_point,
            &self.pre_enqueue,
            &self.queue_sort,
            &self.pre_filter,
            &self.filter,
            &self.post_filter,
            &self.pre_score,
            &self.score,
            &self.reserve,
            &self.permit,
            &self.pre_bind,
            &self.bind,
            &self.post_bind,
        ]
    }

    fn merge(default: &Plugins, custom: &Plugins) -> Plugins {
        Plugins {
            multi_point: PluginSet::merge(&default.multi_point, &custom.multi_point),
            pre_enqueue: PluginSet::merge(&default.pre_enqueue, &custom.pre_enqueue),
            queue_sort: PluginSet::merge(&default.queue_sort, &custom.queue_sort),
            pre_filter: PluginSet::merge(&default.pre_filter, &custom.pre_filter),
            filter: PluginSet::merge(&default.filter, &custom.filter),
            post_filter: PluginSet::merge(&default.post_filter, &custom.post_filter),
            pre_score: PluginSet::merge(&default.pre_score, &custom.pre_score),
            score: PluginSet::merge(&default.score, &custom.score),
            reserve: PluginSet::merge(&default.reserve, &custom.reserve),
            permit: PluginSet::merge(&default.permit, &custom.permit),
            pre_bind: PluginSet::merge(&default.pre_bind, &custom.pre_bind),
            bind: PluginSet::merge(&default.bind, &custom.bind),
            post_bind: PluginSet::merge(&default.post_bind, &custom.post_bind),
        }
    }

    /// Upstream's default profile (v1.33 `getDefaultPlugins`), minus the volume plugins
    /// this scheduler does not implement (NodeVolumeLimits, VolumeBinding, VolumeZone).
    pub fn defaults() -> Plugins {
        let p = PluginRef::new;
        Plugins {
            multi_point: PluginSet {
                enabled: vec![
                    p("SchedulingGates", None),
                    p("PrioritySort", None),
                    p("NodeUnschedulable", None),
                    p("NodeName", None),
                    p("TaintToleration", Some(3)),
                    p("NodeAffinity", Some(2)),
                    p("NodePorts", None),
                    p("NodeResourcesFit", Some(1)),
                    p("VolumeRestrictions", None),
                    p("PodTopologySpread", Some(2)),
                    p("InterPodAffinity", Some(2)),
                    p("DefaultPreemption", None),
                    p("NodeResourcesBalancedAllocation", Some(1)),
                    p("ImageLocality", Some(1)),
                    p("DefaultBinder", None),
                ],
                disabled: Vec::new(),
            },
            ..Default::default()
        }
    }
}

/// One `pluginConfig` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginConfig {
    pub name: String,
    #[serde(default)]
    pub args: Option<serde_json::Value>,
}

/// A profile as written in the file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfileConfig {
    #[serde(default)]
    pub scheduler_name: Option<String>,
    #[serde(default)]
    pub percentage_of_nodes_to_score: Option<i32>,
    #[serde(default)]
    pub plugins: Option<Plugins>,
    #[serde(default)]
    pub plugin_config: Vec<PluginConfig>,
}

/// `leaderElection` of the file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaderElectionConfig {
    pub leader_elect: Option<bool>,
    pub lease_duration: Option<String>,
    pub renew_deadline: Option<String>,
    pub retry_period: Option<String>,
    pub resource_lock: Option<String>,
    pub resource_name: Option<String>,
    pub resource_namespace: Option<String>,
}

/// `clientConnection` of the file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientConnection {
    pub kubeconfig: Option<String>,
}

/// The file's top level (fields this scheduler does not use are accepted and ignored).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeSchedulerConfiguration {
    pub api_version: Option<String>,
    pub kind: Option<String>,
    pub parallelism: Option<i32>,
    #[serde(default)]
    pub leader_election: Option<LeaderElectionConfig>,
    #[serde(default)]
    pub client_connection: Option<ClientConnection>,
    pub percentage_of_nodes_to_score: Option<i32>,
    pub pod_initial_backoff_seconds: Option<i64>,
    pub pod_max_backoff_seconds: Option<i64>,
    #[serde(default)]
    pub profiles: Vec<ProfileConfig>,
}

/// A resolved profile: its name and merged plugin sets and args.
#[derive(Debug, Clone)]
pub struct Profile {
    pub scheduler_name: String,
    pub percentage_of_nodes_to_score: Option<i32>,
    pub plugins: Plugins,
    pub plugin_config: BTreeMap<String, serde_json::Value>,
}

impl Profile {
    /// Upstream's default profile.
    pub fn default_profile() -> Profile {
        Profile { scheduler_name: DEFAULT_SCHEDULER_NAME.into(), percentage_of_nodes_to_score: None, plugins: Plugins::defaults(), plugin_config: BTreeMap::new() }
    }

    /// Every plugin enabled anywhere, once, in first-seen order.
    pub fn plugin_names(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for set in self.plugins.all_sets() {
            for p in &set.enabled {
                if !out.contains(&p.name) {
                    out.push(p.name.clone());
                }
            }
        }
        out
    }

    pub fn plugin_args(&self, name: &str) -> Option<&serde_json::Value> {
        self.plugin_config.get(name)
    }
}

/// Everything the scheduler takes from its configuration.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    pub profiles: Vec<Profile>,
    /// 0 means adaptive (upstream's default).
    pub percentage_of_nodes_to_score: i32,
    pub pod_initial_backoff: Duration,
    pub pod_max_backoff: Duration,
    pub leader_election: LeaderElectionConfig,
    pub kubeconfig: Option<PathBuf>,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            profiles: vec![Profile::default_profile()],
            percentage_of_nodes_to_score: 0,
            pod_initial_backoff: Duration::from_secs(1),
            pod_max_backoff: Duration::from_secs(10),
            leader_election: LeaderElectionConfig::default(),
            kubeconfig: None,
        }
    }
}

impl SchedulerConfig {
    pub fn load(path: &std::path::Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read { path: path.to_path_buf(), source })?;
        Self::from_yaml(&text)
    }

    /// Parses and defaults a `KubeSchedulerConfiguration` document.
    pub fn from_yaml(text: &str) -> Result<Self, Error> {
        let value: serde_json::Value = serde_saphyr::from_str(text).map_err(|e| Error::Decode(e.to_string()))?;
        let file: KubeSchedulerConfiguration = serde_json::from_value(value).map_err(|e| Error::Decode(e.to_string()))?;
        let api_version = file.api_version.clone().unwrap_or_default();
        let kind = file.kind.clone().unwrap_or_default();
        if api_version != API_VERSION || kind != KIND {
            return Err(Error::UnknownKind { kind, api_version });
        }
        Self::from_file(file)
    }

    fn from_file(file: KubeSchedulerConfiguration) -> Result<Self, Error> {
        let mut profiles_in = file.profiles;
        if profiles_in.is_empty() {
            profiles_in.push(ProfileConfig::default());
        }
        if profiles_in.len() == 1 && profiles_in[0].scheduler_name.is_none() {
            profiles_in[0].scheduler_name = Some(DEFAULT_SCHEDULER_NAME.into());
        }
        let mut profiles = Vec::new();
        for (i, p) in profiles_in.into_iter().enumerate() {
            let name = p.scheduler_name.clone().filter(|n| !n.is_empty()).ok_or_else(|| Error::Invalid(format!("profiles[{i}].schedulerName: Required value")))?;
            if profiles.iter().any(|q: &Profile| q.scheduler_name == name) {
                return Err(Error::Invalid(format!("profiles[{i}].schedulerName: Duplicate value: {name:?}")));
            }
            if let Some(pct) = p.percentage_of_nodes_to_score {
                if !(0..=100).contains(&pct) {
                    return Err(Error::Invalid(format!("profiles[{i}].percentageOfNodesToScore: Invalid value: {pct}: not in valid range [0-100]")));
                }
            }
            let plugins = match &p.plugins {
                Some(custom) => Plugins::merge(&Plugins::defaults(), custom),
                None => Plugins::defaults(),
            };
            let mut plugin_config = BTreeMap::new();
            for pc in p.plugin_config {
                if plugin_config.contains_key(&pc.name) {
                    return Err(Error::Invalid(format!("profiles[{i}].pluginConfig: Duplicate value: {:?}", pc.name)));
                }
                plugin_config.insert(pc.name, pc.args.unwrap_or(serde_json::Value::Null));
            }
            profiles.push(Profile { scheduler_name: name, percentage_of_nodes_to_score: p.percentage_of_nodes_to_score, plugins, plugin_config });
        }
        let pct = file.percentage_of_nodes_to_score.unwrap_or(0);
        if !(0..=100).contains(&pct) {
            return Err(Error::Invalid(format!("percentageOfNodesToScore: Invalid value: {pct}: not in valid range [0-100]")));
        }
        let initial = file.pod_initial_backoff_seconds.unwrap_or(1);
        let max = file.pod_max_backoff_seconds.unwrap_or(10);
        if initial <= 0 {
            return Err(Error::Invalid(format!("podInitialBackoffSeconds: Invalid value: {initial}: must be greater than 0")));
        }
        if max < initial {
            return Err(Error::Invalid(format!("podMaxBackoffSeconds: Invalid value: {max}: must be greater than or equal to PodInitialBackoffSeconds")));
        }
        Ok(SchedulerConfig {
            profiles,
            percentage_of_nodes_to_score: pct,
            pod_initial_backoff: Duration::from_secs(initial as u64),
            pod_max_backoff: Duration::from_secs(max as u64),
            leader_election: file.leader_election.unwrap_or_default(),
            kubeconfig: file.client_connection.and_then(|c| c.kubeconfig).filter(|k| !k.is_empty()).map(PathBuf::from),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(set: &PluginSet) -> Vec<(&str, Option<i32>)> {
        set.enabled.iter().map(|p| (p.name.as_str(), p.weight)).collect()
    }

    #[test]
    fn defaults_when_no_profiles() {
        let c = SchedulerConfig::from_yaml("apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n").expect("config");
        assert_eq!(c.profiles.len(), 1);
        assert_eq!(c.profiles[0].scheduler_name, "default-scheduler");
        assert_eq!(c.profiles[0].plugins, Plugins::defaults());
        assert_eq!(c.pod_initial_backoff, Duration::from_secs(1));
        assert_eq!(c.pod_max_backoff, Duration::from_secs(10));
    }

    #[test]
    fn custom_profiles_merge_over_defaults() {
        let c = SchedulerConfig::from_yaml(
            r#"
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
percentageOfNodesToScore: 30
profiles:
- schedulerName: default-scheduler
- schedulerName: no-scoring
  plugins:
    multiPoint:
      enabled:
      - name: TaintToleration
        weight: 7
      disabled:
      - name: ImageLocality
    score:
      disabled:
      - name: '*'
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: MostAllocated
"#,
        )
        .expect("config");
        assert_eq!(c.percentage_of_nodes_to_score, 30);
        let p = &c.profiles[1];
        assert_eq!(p.scheduler_name, "no-scoring");
        let mp = names(&p.plugins.multi_point);
        assert!(mp.contains(&("TaintToleration", Some(7))));
        assert!(!mp.iter().any(|(n, _)| *n == "ImageLocality"));
        assert_eq!(p.plugins.score.disabled[0].name, "*");
        assert!(p.plugin_args("NodeResourcesFit").is_some());
    }

    #[test]
    fn merge_keeps_positions_and_appends() {
        let default = PluginSet { enabled: vec![PluginRef::new("A", None), PluginRef::new("B", Some(2)), PluginRef::new("C", None)], disabled: vec![] };
        let custom = PluginSet { enabled: vec![PluginRef::new("D", None), PluginRef::new("B", Some(5))], disabled: vec![PluginRef::new("A", None)] };
        let merged = PluginSet::merge(&default, &custom);
        assert_eq!(names(&merged), vec![("B", Some(5)), ("C", None), ("D", None)]);
        let all_off = PluginSet { enabled: vec![PluginRef::new("X", None)], disabled: vec![PluginRef::new("*", None)] };
        assert_eq!(names(&PluginSet::merge(&default, &all_off)), vec![("X", None)]);
    }

    #[test]
    fn rejects_bad_documents() {
        assert!(matches!(SchedulerConfig::from_yaml("apiVersion: v1\nkind: Pod\n"), Err(Error::UnknownKind { .. })));
        let dup = "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nprofiles:\n- schedulerName: a\n- schedulerName: a\n";
        assert!(matches!(SchedulerConfig::from_yaml(dup), Err(Error::Invalid(_))));
        let pct = "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\npercentageOfNodesToScore: 101\n";
        assert!(matches!(SchedulerConfig::from_yaml(pct), Err(Error::Invalid(_))));
    }
}
