//! Acceptance tests of the API server core through stock kubectl 1.33 and 1.32: discovery,
//! `apply` of every common kind with every output format, watches, the everyday write verbs
//! (label, annotate, patch, scale, delete, server-side dry run, field validation) and the
//! error texts kubectl prints from the server's Status.
//!
//! Each test runs `ironkube up` on its own temporary data dir and drives both kubectl
//! versions against it, each in its own namespace. Expected error texts are upstream's:
//! kubectl's `CheckErr` formatting over apimachinery's Status messages.

mod manifests;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};

use ironkube_machinery::resources;
use serde_json::{Value, json};
use support::{Ironkube, KUBECTL_VERSIONS, describe, eventually, kubectl_binary};

/// A cluster of its own for one test, and a directory for the files kubectl reads.
struct Cluster {
    // Dropped first: ironkube stops before its data dir goes away.
    ironkube: Ironkube,
    files: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Cluster {
    fn start() -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let files = tmp.path().join("files");
        std::fs::create_dir_all(&files).expect("creating the files dir");
        let ironkube = Ironkube::up(&tmp.path().join("data"));
        Cluster {
            ironkube,
            files,
            _tmp: tmp,
        }
    }

    /// Writes a file kubectl will read; returns its absolute path.
    fn write(&self, name: &str, contents: &str) -> String {
        let path = self.files.join(name);
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("writing {name}: {e}"));
        path.display().to_string()
    }

    fn run(&self, version: &str, args: &[&str]) -> Output {
        self.ironkube.kubectl(version, args)
    }

    /// kubectl must succeed; returns its stdout.
    fn ok(&self, version: &str, args: &[&str]) -> String {
        self.ironkube.kubectl_ok(version, args)
    }

    /// kubectl must exit with 1 and print exactly `expected` on stderr.
    fn fails(&self, version: &str, args: &[&str], expected: &str) {
        let output = self.run(version, args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.code() == Some(1) && stderr.trim_end() == expected,
            "kubectl {version} {args:?}: expected exit code 1 and stderr\n{expected}\ngot {}\n{}",
            describe(&output),
            self.ironkube.log_tail()
        );
    }

    /// `kubectl ... -o json`, parsed.
    fn json(&self, version: &str, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.extend(["-o", "json"]);
        let stdout = self.ok(version, &args);
        serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!("kubectl {version} {args:?} printed no JSON ({e}):\n{stdout}")
        })
    }

    /// Creates namespace `ns` with `kubectl create -f` (`kubectl create namespace` sends
    /// protobuf, which has its own test).
    fn namespace(&self, version: &str, ns: &str) {
        let path = self.write(
            &format!("namespace-{ns}.yaml"),
            &format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n"),
        );
        let stdout = self.ok(version, &["create", "-f", &path]);
        assert_eq!(stdout.trim_end(), format!("namespace/{ns} created"));
    }

    /// Writes a ConfigMap manifest and creates it with `kubectl create -f`.
    fn config_map(&self, version: &str, ns: &str, name: &str, extra: &str) -> String {
        let path = self.write(
            &format!("{ns}-{name}.yaml"),
            &config_map_yaml(ns, name, extra),
        );
        let stdout = self.ok(version, &["create", "-f", &path]);
        assert_eq!(stdout.trim_end(), format!("configmap/{name} created"));
        path
    }
}

fn config_map_yaml(ns: &str, name: &str, extra: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {ns}\n{extra}"
    )
}

/// A namespace per kubectl version: `labels-133`.
fn namespace_for(prefix: &str, version: &str) -> String {
    format!("{prefix}-{}", version.replace('.', ""))
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.trim().is_empty()).collect()
}

/// Splits a kubectl table into rows of header → cell. kubectl pads columns with at least
/// three spaces, so a header name ends where two spaces start (names like `CREATED AT`
/// keep their single space).
fn parse_table(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut all = lines(text).into_iter();
    let Some(header) = all.next() else {
        return Vec::new();
    };
    let mut starts = Vec::new();
    let bytes = header.as_bytes();
    for i in 0..bytes.len() {
        let starts_word = bytes[i] != b' '
            && (i == 0 || (i >= 2 && bytes[i - 1] == b' ' && bytes[i - 2] == b' '));
        if starts_word {
            starts.push(i);
        }
    }
    let cell = |line: &str, k: usize| -> String {
        let from = starts[k].min(line.len());
        let to = starts.get(k + 1).map_or(line.len(), |&s| s.min(line.len()));
        line.get(from..to).unwrap_or("").trim().to_string()
    };
    let names: Vec<String> = (0..starts.len()).map(|k| cell(header, k)).collect();
    all.map(|line| {
        names
            .iter()
            .enumerate()
            .map(|(k, name)| (name.clone(), cell(line, k)))
            .collect()
    })
    .collect()
}

// ---------------------------------------------------------------------------------------
// 1. Discovery
// ---------------------------------------------------------------------------------------

/// A row of `kubectl api-resources`: NAME, SHORTNAMES, APIVERSION, NAMESPACED, KIND.
type ApiResourceRow = (String, String, String, String, String);

/// What `kubectl api-resources` must print, from the resource table: discovery's
/// "preferred resources" — each group's resources at its preferred version, plus any
/// resource only a less preferred version serves — without subresources.
fn expected_api_resources() -> BTreeSet<ApiResourceRow> {
    let mut rows = BTreeSet::new();
    for group in resources::groups() {
        let mut seen = BTreeSet::new();
        for version in &group.versions {
            for r in resources::resources_of(group.group, version) {
                if seen.insert(r.plural) {
                    rows.insert((
                        r.plural.to_string(),
                        r.short_names.join(","),
                        r.api_version(),
                        r.namespaced.to_string(),
                        r.kind.to_string(),
                    ));
                }
            }
        }
    }
    rows
}

fn row(name: &str, short: &str, api_version: &str, namespaced: bool, kind: &str) -> ApiResourceRow {
    (
        name.into(),
        short.into(),
        api_version.into(),
        namespaced.to_string(),
        kind.into(),
    )
}

#[test]
fn api_resources_lists_every_default_on_resource() {
    let cluster = Cluster::start();
    let expected = expected_api_resources();
    assert_eq!(
        expected.len(),
        60,
        "the resource table should give kubectl 60 preferred resources: {expected:#?}"
    );
    let well_known = [
        row("pods", "po", "v1", true, "Pod"),
        row("deployments", "deploy", "apps/v1", true, "Deployment"),
        row(
            "customresourcedefinitions",
            "crd,crds",
            "apiextensions.k8s.io/v1",
            false,
            "CustomResourceDefinition",
        ),
        row(
            "horizontalpodautoscalers",
            "hpa",
            "autoscaling/v2",
            true,
            "HorizontalPodAutoscaler",
        ),
        row("events", "ev", "events.k8s.io/v1", true, "Event"),
        row("namespaces", "ns", "v1", false, "Namespace"),
    ];
    for version in KUBECTL_VERSIONS {
        let stdout = cluster.ok(version, &["api-resources"]);
        let table = parse_table(&stdout);
        let printed: Vec<ApiResourceRow> = table
            .iter()
            .map(|r| {
                let cell = |k: &str| r.get(k).cloned().unwrap_or_default();
                (
                    cell("NAME"),
                    cell("SHORTNAMES"),
                    cell("APIVERSION"),
                    cell("NAMESPACED"),
                    cell("KIND"),
                )
            })
            .collect();
        assert_eq!(
            printed.len(),
            60,
            "kubectl {version} api-resources printed {} rows, expected 60:\n{stdout}",
            printed.len()
        );
        let printed_set: BTreeSet<ApiResourceRow> = printed.iter().cloned().collect();
        let missing: Vec<_> = expected.difference(&printed_set).collect();
        let unexpected: Vec<_> = printed_set.difference(&expected).collect();
        assert!(
            missing.is_empty() && unexpected.is_empty(),
            "kubectl {version} api-resources differs from the resource table\nmissing: \
             {missing:#?}\nunexpected: {unexpected:#?}\n--- printed\n{stdout}"
        );
        for wanted in &well_known {
            assert!(
                printed_set.contains(wanted),
                "kubectl {version} api-resources has no row {wanted:?}:\n{stdout}"
            );
        }
        // Only the autoscaling/v2 HPA: the v1 row is hidden as non-preferred.
        assert!(
            !printed.iter().any(|r| r.2 == "autoscaling/v1"),
            "kubectl {version} api-resources shows autoscaling/v1:\n{stdout}"
        );
    }
}

#[test]
fn api_versions_are_the_served_group_versions() {
    let cluster = Cluster::start();
    let mut expected: Vec<String> = resources::groups()
        .iter()
        .flat_map(|g| {
            g.versions.iter().map(move |v| match g.group {
                "" => v.to_string(),
                group => format!("{group}/{v}"),
            })
        })
        .collect();
    expected.sort();
    for must in [
        "v1",
        "apps/v1",
        "autoscaling/v1",
        "autoscaling/v2",
        "batch/v1",
    ] {
        assert!(expected.iter().any(|e| e == must), "table lacks {must}");
    }
    for version in KUBECTL_VERSIONS {
        let stdout = cluster.ok(version, &["api-versions"]);
        assert_eq!(
            lines(&stdout),
            expected,
            "kubectl {version} api-versions printed:\n{stdout}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// 2. apply of every common kind, and get in every output format
// ---------------------------------------------------------------------------------------

/// The table kubectl prints for one object: a header whose first column is NAME and one
/// row naming the object. Core Events are upstream's exception: their table starts with
/// LAST SEEN and names the involved object; `-o wide` adds NAME as the last column.
fn check_table(sample: &manifests::Sample, stdout: &str, wide: bool) -> Result<(), String> {
    let rows = lines(stdout);
    let [header, row] = rows.as_slice() else {
        return Err(format!("expected a header and one row:\n{stdout}"));
    };
    let header_cells: Vec<&str> = header.split_whitespace().collect();
    let row_cells: Vec<&str> = row.split_whitespace().collect();
    if sample.kind == "Event" {
        if !header.starts_with("LAST SEEN") {
            return Err(format!("an Event table starts with LAST SEEN:\n{stdout}"));
        }
        if !row_cells.contains(&"pod/web-0") {
            return Err(format!(
                "the Event row names no OBJECT pod/web-0:\n{stdout}"
            ));
        }
        if wide
            && (header_cells.last() != Some(&"NAME")
                || row_cells.last() != Some(&sample.name.as_str()))
        {
            return Err(format!(
                "the wide Event table ends with NAME {}:\n{stdout}",
                sample.name
            ));
        }
        return Ok(());
    }
    if header_cells.first() != Some(&"NAME") {
        return Err(format!("the header does not start with NAME:\n{stdout}"));
    }
    if row_cells.first() != Some(&sample.name.as_str()) {
        return Err(format!(
            "the row does not start with {}:\n{stdout}",
            sample.name
        ));
    }
    Ok(())
}

/// The item of a List for `sample`.
fn find_item<'a>(list: &'a Value, sample: &manifests::Sample) -> Option<&'a Value> {
    list["items"].as_array()?.iter().find(|item| {
        item["kind"] == sample.kind
            && item["metadata"]["name"] == sample.name.as_str()
            && item["apiVersion"] == sample.api_version
    })
}

fn check_object(sample: &manifests::Sample, object: &Value) -> Result<(), String> {
    let namespace = object["metadata"]["namespace"].as_str().map(str::to_string);
    if namespace != sample.namespace {
        return Err(format!(
            "namespace {namespace:?}, expected {:?}",
            sample.namespace
        ));
    }
    let (pointer, value) = &sample.field;
    if object.pointer(pointer) != Some(value) {
        return Err(format!(
            "{pointer} is {:?}, expected {value}",
            object.pointer(pointer)
        ));
    }
    for field in ["uid", "resourceVersion", "creationTimestamp"] {
        if !object["metadata"][field].is_string() {
            return Err(format!("metadata.{field} is missing"));
        }
    }
    Ok(())
}

/// Failures gathered along a test that checks many objects, reported together.
#[derive(Default)]
struct Failures(Vec<String>);

impl Failures {
    fn check(&mut self, result: Result<(), String>) {
        if let Err(e) = result {
            self.0.push(e);
        }
    }

    fn assert_none(self, what: &str) {
        assert!(
            self.0.is_empty(),
            "{what}: {} failures\n\n{}",
            self.0.len(),
            self.0.join("\n\n")
        );
    }
}

#[test]
fn apply_creates_every_common_kind_and_get_prints_each_in_every_format() {
    let cluster = Cluster::start();
    let mut failures = Failures::default();
    for version in KUBECTL_VERSIONS {
        let ns = namespace_for("kinds", version);
        let samples = manifests::all_kinds(&ns);
        assert_eq!(samples.len(), 28);
        let path = cluster.write(&format!("{ns}.yaml"), &manifests::manifest(&samples));

        let stdout = cluster.ok(version, &["apply", "-f", &path]);
        let expected: Vec<String> = samples
            .iter()
            .map(|s| format!("{} created", s.printed()))
            .collect();
        assert_eq!(
            lines(&stdout),
            expected,
            "kubectl {version} apply -f (first time) printed:\n{stdout}"
        );

        let stdout = cluster.ok(version, &["apply", "-f", &path]);
        let again = lines(&stdout);
        assert_eq!(
            again.len(),
            samples.len(),
            "kubectl {version} apply -f (again) printed:\n{stdout}"
        );
        for (line, sample) in again.iter().zip(&samples) {
            let printed = sample.printed();
            let fine =
                *line == format!("{printed} unchanged") || *line == format!("{printed} configured");
            failures.check(fine.then_some(()).ok_or_else(|| {
                format!(
                    "kubectl {version} apply -f (again): expected {printed} unchanged (or \
                     configured), got {line:?}"
                )
            }));
        }

        // -o json and -o yaml of the whole file: a List with every object as written.
        let list = cluster.json(version, &["get", "-f", &path]);
        let yaml = cluster.ok(version, &["get", "-f", &path, "-o", "yaml"]);
        let yaml_list: Value = serde_saphyr::from_str(&yaml).unwrap_or_else(|e| {
            panic!("kubectl {version} get -f -o yaml printed no YAML ({e}):\n{yaml}")
        });
        for sample in &samples {
            for (format, list) in [("json", &list), ("yaml", &yaml_list)] {
                failures.check(match find_item(list, sample) {
                    None => Err(format!(
                        "kubectl {version} get -f -o {format} lacks {} {}",
                        sample.kind, sample.name
                    )),
                    Some(item) => check_object(sample, item).map_err(|e| {
                        format!(
                            "kubectl {version} get -f -o {format}: {} {}: {e}\n{item:#}",
                            sample.kind, sample.name
                        )
                    }),
                });
            }
        }

        // -o name of the whole file, in file order.
        let stdout = cluster.ok(version, &["get", "-f", &path, "-o", "name"]);
        let expected: Vec<String> = samples.iter().map(|s| s.printed()).collect();
        assert_eq!(
            lines(&stdout),
            expected,
            "kubectl {version} get -f -o name printed:\n{stdout}"
        );

        // Each object alone: table, wide, name and jsonpath.
        for sample in &samples {
            let args = sample.get_args();
            let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
            args.insert(0, "get");

            let stdout = cluster.ok(version, &args);
            failures.check(
                check_table(sample, &stdout, false)
                    .map_err(|e| format!("kubectl {version} {args:?}: {e}")),
            );
            let wide = [args.as_slice(), &["-o", "wide"]].concat();
            let stdout = cluster.ok(version, &wide);
            failures.check(
                check_table(sample, &stdout, true)
                    .map_err(|e| format!("kubectl {version} {wide:?}: {e}")),
            );
            let name = [args.as_slice(), &["-o", "name"]].concat();
            let stdout = cluster.ok(version, &name);
            failures.check(
                (stdout.trim_end() == sample.printed())
                    .then_some(())
                    .ok_or_else(|| {
                        format!(
                            "kubectl {version} {name:?} printed {stdout:?}, expected {}",
                            sample.printed()
                        )
                    }),
            );
            let jsonpath = [
                args.as_slice(),
                &[
                    "-o",
                    "jsonpath={.kind}/{.metadata.name}/{.metadata.namespace}",
                ],
            ]
            .concat();
            let stdout = cluster.ok(version, &jsonpath);
            let expected = format!(
                "{}/{}/{}",
                sample.kind,
                sample.name,
                sample.namespace.as_deref().unwrap_or("")
            );
            failures.check((stdout == expected).then_some(()).ok_or_else(|| {
                format!("kubectl {version} {jsonpath:?} printed {stdout:?}, expected {expected:?}")
            }));
        }
    }
    failures.assert_none("apply and get of every common kind");
}

// ---------------------------------------------------------------------------------------
// 3. Watch
// ---------------------------------------------------------------------------------------

/// `kubectl get cm -w --output-watch-events` running in the background; killed on drop.
struct BackgroundWatch {
    child: std::process::Child,
    lines: Arc<Mutex<Vec<String>>>,
    stderr: PathBuf,
}

impl BackgroundWatch {
    fn start(cluster: &Cluster, version: &str, args: &[&str]) -> Self {
        let stderr = cluster
            .files
            .join(format!("watch-{}.stderr", version.replace('.', "")));
        let stderr_file = std::fs::File::create(&stderr).expect("creating the watch stderr file");
        let mut child = std::process::Command::new(kubectl_binary(version))
            .arg(format!(
                "--kubeconfig={}",
                cluster.ironkube.kubeconfig.display()
            ))
            .arg(format!(
                "--cache-dir={}",
                cluster.ironkube.cache_dir.display()
            ))
            .arg("--request-timeout=120s")
            .args(args)
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr_file)
            .spawn()
            .unwrap_or_else(|e| panic!("starting kubectl {version} {args:?}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                sink.lock().expect("watch lines").push(line);
            }
        });
        BackgroundWatch {
            child,
            lines,
            stderr,
        }
    }

    /// (EVENT, NAME) of every row printed so far.
    fn events(&self) -> Vec<(String, String)> {
        self.lines
            .lock()
            .expect("watch lines")
            .iter()
            .filter(|l| !l.starts_with("EVENT"))
            .filter_map(|l| {
                let mut cells = l.split_whitespace();
                Some((cells.next()?.to_string(), cells.next()?.to_string()))
            })
            .collect()
    }

    fn printed(&self) -> String {
        format!(
            "--- stdout\n{}\n--- stderr\n{}",
            self.lines.lock().expect("watch lines").join("\n"),
            std::fs::read_to_string(&self.stderr).unwrap_or_default()
        )
    }
}

impl Drop for BackgroundWatch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn watch_with_output_watch_events_sees_added_modified_deleted() {
    let cluster = Cluster::start();
    for version in KUBECTL_VERSIONS {
        let ns = namespace_for("watch", version);
        cluster.namespace(version, &ns);
        cluster.config_map(version, &ns, "anchor", "data:\n  role: anchor\n");

        let watch = BackgroundWatch::start(
            &cluster,
            version,
            &[
                "get",
                "configmaps",
                "-n",
                &ns,
                "-w",
                "--output-watch-events",
            ],
        );
        eventually(
            &format!("kubectl {version} get -w lists the anchor"),
            || {
                let events = watch.events();
                if events.contains(&("ADDED".into(), "anchor".into())) {
                    Ok(())
                } else {
                    Err(watch.printed())
                }
            },
        );

        let path = cluster.write(
            &format!("{ns}-watched.yaml"),
            &config_map_yaml(&ns, "watched", "data:\n  a: b\n"),
        );
        let other = KUBECTL_VERSIONS
            .iter()
            .find(|v| **v != version)
            .copied()
            .unwrap_or(version);
        cluster.ok(other, &["create", "-f", &path]);
        cluster.ok(
            other,
            &["label", "configmap", "watched", "-n", &ns, "stage=labelled"],
        );
        cluster.ok(other, &["delete", "configmap", "watched", "-n", &ns]);

        eventually(&format!("kubectl {version} get -w sees the delete"), || {
            let events = watch.events();
            if events.contains(&("DELETED".into(), "watched".into())) {
                Ok(())
            } else {
                Err(watch.printed())
            }
        });
        let watched: Vec<String> = watch
            .events()
            .into_iter()
            .filter(|(_, name)| name == "watched")
            .map(|(event, _)| event)
            .collect();
        assert_eq!(
            watched,
            ["ADDED", "MODIFIED", "DELETED"],
            "kubectl {version} get -w --output-watch-events printed:\n{}",
            watch.printed()
        );
        let anchor = watch
            .events()
            .into_iter()
            .filter(|(_, name)| name == "anchor")
            .count();
        assert_eq!(
            anchor,
            1,
            "the anchor was listed {anchor} times:\n{}",
            watch.printed()
        );
    }
}

// ---------------------------------------------------------------------------------------
// 4. Write verbs
// ---------------------------------------------------------------------------------------

/// `kubectl <verb> configmap tagged -n <ns> <extra>...`
fn on_tagged<'a>(verb: &'a str, ns: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    [&[verb, "configmap", "tagged", "-n", ns][..], extra].concat()
}

#[test]
fn label_and_annotate_with_overwrite_and_removal() {
    let cluster = Cluster::start();
    let mut failures = Failures::default();
    for version in KUBECTL_VERSIONS {
        let ns = namespace_for("labels", version);
        cluster.namespace(version, &ns);
        cluster.config_map(version, &ns, "tagged", "data:\n  a: b\n");
        let run = |verb: &str, extra: &[&str]| -> String {
            cluster.ok(version, &on_tagged(verb, &ns, extra))
        };
        let get = || cluster.json(version, &["get", "configmap", "tagged", "-n", &ns]);

        assert_eq!(
            run("label", &["app=x"]).trim_end(),
            "configmap/tagged labeled"
        );
        assert_eq!(get()["metadata"]["labels"], json!({"app": "x"}));
        cluster.fails(
            version,
            &on_tagged("label", &ns, &["app=y"]),
            "error: 'app' already has a value (x), and --overwrite is false",
        );
        assert_eq!(
            run("label", &["app=y", "--overwrite"]).trim_end(),
            "configmap/tagged labeled"
        );
        assert_eq!(get()["metadata"]["labels"], json!({"app": "y"}));
        assert_eq!(
            run("label", &["app-"]).trim_end(),
            "configmap/tagged unlabeled"
        );
        let object = get();
        assert!(
            object["metadata"]["labels"].get("app").is_none(),
            "kubectl {version} label app- left the label: {object:#}"
        );
        failures.check(
            object["metadata"]
                .get("labels")
                .is_none()
                .then_some(())
                .ok_or_else(|| {
                    format!(
                        "after the last label is removed upstream omits metadata.labels (an \
                         empty map), kubectl {version} get -o json printed: {object:#}"
                    )
                }),
        );

        assert_eq!(
            run("annotate", &["note=one"]).trim_end(),
            "configmap/tagged annotated"
        );
        assert_eq!(get()["metadata"]["annotations"], json!({"note": "one"}));
        cluster.fails(
            version,
            &on_tagged("annotate", &ns, &["note=two"]),
            "error: --overwrite is false but found the following declared annotation(s): \
             'note' already has a value (one)",
        );
        assert_eq!(
            run("annotate", &["note=two", "--overwrite"]).trim_end(),
            "configmap/tagged annotated"
        );
        assert_eq!(get()["metadata"]["annotations"], json!({"note": "two"}));
        assert_eq!(
            run("annotate", &["note-"]).trim_end(),
            "configmap/tagged annotated"
        );
        let object = get();
        failures.check(
            object["metadata"]
                .get("annotations")
                .is_none()
                .then_some(())
                .ok_or_else(|| {
                    format!(
                        "after the last annotation is removed upstream omits \
                         metadata.annotations, kubectl {version} get -o json printed: \
                         {object:#}"
                    )
                }),
        );
        assert_eq!(
            object["data"],
            json!({"a": "b"}),
            "the data changed: {object:#}"
        );
    }
    failures.assert_none("label and annotate");
}

fn container_names(deployment: &Value) -> Vec<String> {
    deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn deployment_yaml(ns: &str, name: &str, replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: {ns}\n\
         spec:\n  replicas: {replicas}\n  selector:\n    matchLabels:\n      app: {name}\n  \
         template:\n    metadata:\n      labels:\n        app: {name}\n    spec:\n      \
         containers:\n      - name: main\n        image: busybox:1.36\n        command: \
         [\"sleep\", \"3600\"]\n"
    )
}

#[test]
fn patch_json_merge_and_strategic() {
    let cluster = Cluster::start();
    for version in KUBECTL_VERSIONS {
        let ns = namespace_for("patch", version);
        cluster.namespace(version, &ns);
        cluster.config_map(version, &ns, "patched", "data:\n  a: \"1\"\n");
        let get = || cluster.json(version, &["get", "configmap", "patched", "-n", &ns]);
        let patch = |kind: &str, name: &str, args: &[&str]| -> String {
            let mut all = vec!["patch", kind, name, "-n", ns.as_str()];
            all.extend(args);
            cluster.ok(version, &all)
        };

        let stdout = patch(
            "configmap",
            "patched",
            &[
                "--type=json",
                "-p",
                r#"[{"op":"add","path":"/data/b","value":"2"},{"op":"replace","path":"/data/a","value":"one"}]"#,
            ],
        );
        assert_eq!(stdout.trim_end(), "configmap/patched patched");
        assert_eq!(
            get()["data"],
            json!({"a": "one", "b": "2"}),
            "after the JSON patch"
        );

        let stdout = patch(
            "configmap",
            "patched",
            &["--type=merge", "-p", r#"{"data":{"b":null,"c":"3"}}"#],
        );
        assert_eq!(stdout.trim_end(), "configmap/patched patched");
        assert_eq!(
            get()["data"],
            json!({"a": "one", "c": "3"}),
            "after the merge patch"
        );

        let stdout = patch("configmap", "patched", &["-p", r#"{"data":{"d":"4"}}"#]);
        assert_eq!(stdout.trim_end(), "configmap/patched patched");
        let before = get();
        assert_eq!(
            before["data"],
            json!({"a": "one", "c": "3", "d": "4"}),
            "after the strategic merge patch"
        );
        // A patch that changes nothing writes nothing.
        let stdout = patch("configmap", "patched", &["-p", r#"{"data":{"d":"4"}}"#]);
        assert_eq!(
            stdout.trim_end(),
            "configmap/patched patched (no change)",
            "kubectl {version}: a no-op patch must leave the object as it was"
        );
        let after = get();
        assert_eq!(
            after["metadata"]["resourceVersion"], before["metadata"]["resourceVersion"],
            "a no-op patch changed the resourceVersion"
        );

        // Strategic merge patch merges containers by name; a merge patch replaces the list.
        let path = cluster.write(
            &format!("{ns}-deploy.yaml"),
            &deployment_yaml(&ns, "web", 1),
        );
        cluster.ok(version, &["create", "-f", &path]);
        let stdout = patch(
            "deployment",
            "web",
            &[
                "-p",
                r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox:sidecar"}]}}}}"#,
            ],
        );
        assert_eq!(stdout.trim_end(), "deployment.apps/web patched");
        let deployment = cluster.json(version, &["get", "deployment", "web", "-n", &ns]);
        let mut names = container_names(&deployment);
        names.sort();
        assert_eq!(
            names,
            ["main", "sidecar"],
            "a strategic merge patch must merge containers by name: {deployment:#}"
        );
        assert_eq!(
            deployment["spec"]["template"]["spec"]["containers"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["name"] == "main"))
                .map(|c| c["command"].clone()),
            Some(json!(["sleep", "3600"])),
            "the strategic merge patch lost main's command: {deployment:#}"
        );

        let stdout = patch(
            "deployment",
            "web",
            &[
                "--type=merge",
                "-p",
                r#"{"spec":{"template":{"spec":{"containers":[{"name":"only","image":"busybox:only"}]}}}}"#,
            ],
        );
        assert_eq!(stdout.trim_end(), "deployment.apps/web patched");
        let deployment = cluster.json(version, &["get", "deployment", "web", "-n", &ns]);
        assert_eq!(
            container_names(&deployment),
            ["only"],
            "a merge patch must replace the containers list: {deployment:#}"
        );

        let stdout = patch(
            "deployment",
            "web",
            &[
                "--type=json",
                "-p",
                r#"[{"op":"replace","path":"/spec/replicas","value":3}]"#,
            ],
        );
        assert_eq!(stdout.trim_end(), "deployment.apps/web patched");
        let deployment = cluster.json(version, &["get", "deployment", "web", "-n", &ns]);
        assert_eq!(deployment["spec"]["replicas"], 3, "{deployment:#}");
    }
}

#[test]
fn scale_sets_spec_replicas() {
    let cluster = Cluster::start();
    for version in KUBECTL_VERSIONS {
        let ns = namespace_for("scale", version);
        cluster.namespace(version, &ns);
        let path = cluster.write(
            &format!("{ns}-deploy.yaml"),
            &deployment_yaml(&ns, "web", 1),
        );
        cluster.ok(version, &["create", "-f", &path]);
        for replicas in ["4", "0", "2"] {
            let stdout = cluster.ok(
                version,
                &[
                    "scale",
                    "deployment",
                    "web",
                    "-n",
                    &ns,
                    &format!("--replicas={replicas}"),
                ],
            );
            assert_eq!(stdout.trim_end(), "deployment.apps/web scaled");
            let stdout = cluster.ok(
                version,
                &[
                    "get",
                    "deployment",
                    "web",
                    "-n",
                    &ns,
                    "-o",
                    "jsonpath={.spec.replicas}",
                ],
            );
            assert_eq!(
                stdout, replicas,
                "kubectl {version}: .spec.replicas after scale"
            );
        }
        // The precondition kubectl checks against the scale subresource.
        cluster.fails(
            version,
            &[
                "scale",
                "deployment",
                "web",
                "-n",
                &ns,
                "--current-replicas=3",
                "--replicas=5",
            ],
            "error: Expected replicas to be 3, was 2",
        );
    }
}

#[test]
fn delete_by_label_selector_and_all() {
    let cluster = Cluster::start();
    for version in KUBECTL_VERSIONS {
        let ns = namespace_for("delete", version);
        cluster.namespace(version, &ns);
        let docs = [
            config_map_yaml(&ns, "a", "  labels:\n    app: x\n"),
            config_map_yaml(&ns, "b", "  labels:\n    app: x\n"),
            config_map_yaml(&ns, "c", "  labels:\n    app: other\n"),
            config_map_yaml(&ns, "d", ""),
        ];
        let path = cluster.write(&format!("{ns}.yaml"), &docs.join("---\n"));
        cluster.ok(version, &["create", "-f", &path]);
        let names = || -> BTreeSet<String> {
            let stdout = cluster.ok(version, &["get", "configmaps", "-n", &ns, "-o", "name"]);
            lines(&stdout).into_iter().map(str::to_string).collect()
        };
        let ours = |set: BTreeSet<String>| -> BTreeSet<String> {
            set.into_iter()
                .filter(|n| {
                    ["configmap/a", "configmap/b", "configmap/c", "configmap/d"]
                        .contains(&n.as_str())
                })
                .collect()
        };
        assert_eq!(
            ours(names()),
            BTreeSet::from(
                ["configmap/a", "configmap/b", "configmap/c", "configmap/d"].map(String::from)
            )
        );

        let stdout = cluster.ok(version, &["delete", "configmaps", "-n", &ns, "-l", "app=x"]);
        let mut deleted = lines(&stdout);
        deleted.sort();
        assert_eq!(
            deleted,
            [r#"configmap "a" deleted"#, r#"configmap "b" deleted"#],
            "kubectl {version} delete -l app=x printed:\n{stdout}"
        );
        assert_eq!(
            ours(names()),
            BTreeSet::from(["configmap/c", "configmap/d"].map(String::from)),
            "kubectl {version} delete -l app=x deleted the wrong objects"
        );

        let stdout = cluster.ok(version, &["delete", "configmaps", "-n", &ns, "--all"]);
        for name in ["c", "d"] {
            assert!(
                lines(&stdout).contains(&format!(r#"configmap "{name}" deleted"#).as_str()),
                "kubectl {version} delete --all printed:\n{stdout}"
            );
        }
        assert_eq!(
            ours(names()),
            BTreeSet::new(),
            "kubectl {version} delete --all left objects"
        );
    }
}

#[test]
fn server_dry_run_leaves_etcd_unchanged() {
    let cluster = Cluster::start();
    for version in KUBECTL_VERSIONS {
        let ns = namespace_for("dryrun", version);
        cluster.namespace(version, &ns);
        let path = cluster.write(
            &format!("{ns}-dry.yaml"),
            &config_map_yaml(&ns, "dry", "data:\n  a: b\n"),
        );
        let changed = cluster.write(
            &format!("{ns}-dry-changed.yaml"),
            &config_map_yaml(&ns, "dry", "data:\n  a: changed\n"),
        );
        let not_found = r#"Error from server (NotFound): configmaps "dry" not found"#;
        let get = ["get", "configmap", "dry", "-n", ns.as_str()];

        let stdout = cluster.ok(version, &["create", "-f", &path, "--dry-run=server"]);
        assert_eq!(stdout.trim_end(), "configmap/dry created (server dry run)");
        cluster.fails(version, &get, not_found);

        let stdout = cluster.ok(version, &["apply", "-f", &path, "--dry-run=server"]);
        assert_eq!(stdout.trim_end(), "configmap/dry created (server dry run)");
        cluster.fails(version, &get, not_found);

        cluster.ok(version, &["apply", "-f", &path]);
        let before = cluster.json(version, &get);

        let stdout = cluster.ok(version, &["apply", "-f", &changed, "--dry-run=server"]);
        assert_eq!(
            stdout.trim_end(),
            "configmap/dry configured (server dry run)"
        );
        let stdout = cluster.ok(
            version,
            &[
                "apply",
                "-f",
                &changed,
                "--dry-run=server",
                "-o",
                "jsonpath={.data.a}",
            ],
        );
        assert_eq!(
            stdout, "changed",
            "the dry-run apply answers with the would-be object"
        );
        assert_eq!(
            cluster.json(version, &get),
            before,
            "a dry-run apply changed the object"
        );

        let stdout = cluster.ok(
            version,
            &["delete", "configmap", "dry", "-n", &ns, "--dry-run=server"],
        );
        assert_eq!(
            stdout.trim_end(),
            r#"configmap "dry" deleted (server dry run)"#
        );
        assert_eq!(
            cluster.json(version, &get),
            before,
            "a dry-run delete changed the object"
        );

        let stdout = cluster.ok(
            version,
            &[
                "label",
                "configmap",
                "dry",
                "-n",
                &ns,
                "dry=run",
                "--dry-run=server",
            ],
        );
        assert_eq!(stdout.trim_end(), "configmap/dry labeled (server dry run)");
        assert_eq!(
            cluster.json(version, &get),
            before,
            "a dry-run label changed the object"
        );
    }
}

#[test]
fn create_validate_strict_rejects_unknown_fields_and_warn_creates() {
    let cluster = Cluster::start();
    for version in KUBECTL_VERSIONS {
        let ns = namespace_for("validate", version);
        cluster.namespace(version, &ns);
        let strict = cluster.write(
            &format!("{ns}-strict.yaml"),
            &config_map_yaml(&ns, "strict", "data:\n  a: b\nbogus: 1\n"),
        );
        cluster.fails(
            version,
            &["create", "--validate=strict", "-f", &strict],
            &format!(
                r#"Error from server (BadRequest): error when creating "{strict}": ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: unknown field "bogus""#
            ),
        );
        cluster.fails(
            version,
            &["get", "configmap", "strict", "-n", &ns],
            r#"Error from server (NotFound): configmaps "strict" not found"#,
        );

        let lenient = cluster.write(
            &format!("{ns}-lenient.yaml"),
            &config_map_yaml(&ns, "lenient", "data:\n  a: b\nbogus: 1\n"),
        );
        let output = cluster.run(version, &["create", "--validate=warn", "-f", &lenient]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success()
                && stdout.trim_end() == "configmap/lenient created"
                && lines(&stderr).contains(&r#"Warning: unknown field "bogus""#),
            "kubectl {version} create --validate=warn: expected a warning and the object \
             created, got {}",
            describe(&output)
        );
        let object = cluster.json(version, &["get", "configmap", "lenient", "-n", &ns]);
        assert_eq!(object["data"], json!({"a": "b"}));
        assert!(
            object.get("bogus").is_none(),
            "the unknown field was kept: {object:#}"
        );

        let ignored = cluster.write(
            &format!("{ns}-ignored.yaml"),
            &config_map_yaml(&ns, "ignored", "data:\n  a: b\nbogus: 1\n"),
        );
        let output = cluster.run(version, &["create", "--validate=false", "-f", &ignored]);
        assert!(
            output.status.success() && output.stderr.is_empty(),
            "kubectl {version} create --validate=false: expected no warning, got {}",
            describe(&output)
        );
    }
}

// ---------------------------------------------------------------------------------------
// 5. Error texts
// ---------------------------------------------------------------------------------------

#[test]
fn already_exists_errors() {
    let cluster = Cluster::start();
    let mut failures = Failures::default();
    for version in KUBECTL_VERSIONS {
        let ns = namespace_for("exists", version);
        cluster.namespace(version, &ns);
        let path = cluster.config_map(version, &ns, "x", "data:\n  a: b\n");
        cluster.fails(
            version,
            &["create", "-f", &path],
            &format!(
                r#"Error from server (AlreadyExists): error when creating "{path}": configmaps "x" already exists"#
            ),
        );

        // `kubectl create configmap` and `create namespace` send protobuf bodies.
        for (args, expected) in [
            (
                vec!["create", "namespace", ns.as_str()],
                format!(r#"Error from server (AlreadyExists): namespaces "{ns}" already exists"#),
            ),
            (
                vec![
                    "create",
                    "configmap",
                    "x",
                    "-n",
                    ns.as_str(),
                    "--from-literal=a=b",
                ],
                // create configmap wraps the server's error in its own message.
                r#"error: failed to create configmap: configmaps "x" already exists"#.to_string(),
            ),
        ] {
            let output = cluster.run(version, &args);
            let stderr = String::from_utf8_lossy(&output.stderr);
            failures.check(
                (!stderr.contains("the body of the request was in an unknown format"))
                    .then_some(())
                    .ok_or_else(|| {
                        format!(
                            "kubectl {version} {args:?} sends a protobuf body and the server \
                             answered 415 Unsupported Media Type (protobuf request bodies are \
                             not served yet): {}",
                            describe(&output)
                        )
                    })
                    .and_then(|()| {
                        (output.status.code() == Some(1) && stderr.trim_end() == expected)
                            .then_some(())
                            .ok_or_else(|| {
                                format!(
                                    "kubectl {version} {args:?}: expected exit code 1 and \
                                     stderr\n{expected}\ngot {}",
                                    describe(&output)
                                )
                            })
                    }),
            );
        }
    }
    failures.assert_none("AlreadyExists from kubectl's create subcommands");
}

#[test]
fn not_found_errors() {
    let cluster = Cluster::start();
    for version in KUBECTL_VERSIONS {
        let ns = namespace_for("missing", version);
        cluster.namespace(version, &ns);
        let expected = r#"Error from server (NotFound): configmaps "nope" not found"#;
        cluster.fails(version, &["get", "configmap", "nope", "-n", &ns], expected);
        cluster.fails(
            version,
            &["delete", "configmap", "nope", "-n", &ns],
            expected,
        );
        cluster.fails(
            version,
            &["label", "configmap", "nope", "-n", &ns, "a=b"],
            expected,
        );
        cluster.fails(
            version,
            &["get", "deployment", "nope", "-n", &ns],
            r#"Error from server (NotFound): deployments.apps "nope" not found"#,
        );
        cluster.fails(
            version,
            &["get", "clusterrole", "nope"],
            r#"Error from server (NotFound): clusterroles.rbac.authorization.k8s.io "nope" not found"#,
        );
    }
}

#[test]
fn invalid_errors() {
    let cluster = Cluster::start();
    for version in KUBECTL_VERSIONS {
        let ns = namespace_for("invalid", version);
        cluster.namespace(version, &ns);
        let path = cluster.write(
            &format!("{ns}-bad-name.yaml"),
            &config_map_yaml(&ns, "Bad_Name", "data:\n  a: b\n"),
        );
        cluster.fails(
            version,
            &["create", "-f", &path],
            r#"The ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#,
        );
        let path = cluster.write(
            &format!("{ns}-bad-key.yaml"),
            &config_map_yaml(&ns, "bad-key", "data:\n  \"bad key\": b\n"),
        );
        cluster.fails(
            version,
            &["apply", "-f", &path],
            r#"The ConfigMap "bad-key" is invalid: data[bad key]: Invalid value: "bad key": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"#,
        );
    }
}

#[test]
fn conflict_error_on_replace_with_a_stale_resource_version() {
    let cluster = Cluster::start();
    for version in KUBECTL_VERSIONS {
        let ns = namespace_for("conflict", version);
        cluster.namespace(version, &ns);
        cluster.config_map(version, &ns, "x", "data:\n  a: b\n");
        let stale = cluster.ok(version, &["get", "configmap", "x", "-n", &ns, "-o", "yaml"]);
        let stale = stale.replace("a: b", "a: stale");
        let path = cluster.write(&format!("{ns}-stale.yaml"), &stale);
        cluster.ok(version, &["label", "configmap", "x", "-n", &ns, "bump=1"]);
        cluster.fails(
            version,
            &["replace", "-f", &path],
            &format!(
                r#"Error from server (Conflict): error when replacing "{path}": Operation cannot be fulfilled on configmaps "x": the object has been modified; please apply your changes to the latest version and try again"#
            ),
        );
        let object = cluster.json(version, &["get", "configmap", "x", "-n", &ns]);
        assert_eq!(
            object["data"],
            json!({"a": "b"}),
            "the stale replace was written: {object:#}"
        );
        assert_eq!(object["metadata"]["labels"], json!({"bump": "1"}));
    }
}

/// events.k8s.io/v1 Events are stored as core Events: validated in that shape (in any
/// namespace), read back through both versions, with managedFields naming the fields of
/// the version the client wrote.
#[test]
fn events_k8s_io_events_are_stored_as_core_events() {
    let cluster = Cluster::start();
    for version in KUBECTL_VERSIONS {
        let ns = namespace_for("events", version);
        cluster.namespace(version, &ns);
        let event = |name: &str, controller: &str| {
            format!(
                "apiVersion: events.k8s.io/v1\nkind: Event\nmetadata: {{name: {name}, namespace: {ns}}}\n\
                 eventTime: \"2026-12-02T07:00:00.000000Z\"\nreportingController: \"{controller}\"\n\
                 reportingInstance: r-1\naction: Binding\nreason: Scheduled\nnote: hello\ntype: Normal\n\
                 regarding: {{kind: Pod, namespace: {ns}, name: p, apiVersion: v1}}\n"
            )
        };
        let path = cluster.write(&format!("{ns}-event.yaml"), &event("e1", "example.com/c"));
        let stdout = cluster.ok(version, &["create", "-f", &path]);
        assert_eq!(stdout.trim_end(), "event.events.k8s.io/e1 created");

        let core = cluster.json(version, &["get", "events.v1.", "e1", "-n", &ns, "--show-managed-fields"]);
        assert_eq!(core["apiVersion"], "v1", "{core}");
        assert_eq!(core["message"], "hello", "{core}");
        assert_eq!(core["reportingComponent"], "example.com/c", "{core}");
        assert_eq!(core["involvedObject"]["namespace"], ns.as_str(), "{core}");
        let fields = &core["metadata"]["managedFields"][0];
        assert_eq!(fields["apiVersion"], "events.k8s.io/v1", "{core}");
        for f in ["f:note", "f:regarding", "f:reportingController"] {
            assert!(fields["fieldsV1"].get(f).is_some(), "managedFields lack {f}: {core}");
        }
        let served = cluster.json(version, &["get", "events.v1.events.k8s.io", "e1", "-n", &ns]);
        assert_eq!(served["note"], "hello", "{served}");
        assert_eq!(served["regarding"]["name"], "p", "{served}");

        let path = cluster.write(&format!("{ns}-bad-event.yaml"), &event("e2", ""));
        cluster.fails(
            version,
            &["create", "-f", &path],
            "The Event \"e2\" is invalid: \n* reportingController: Required value\n\
             * reportingController: Invalid value: \"\": name part must be non-empty\n\
             * reportingController: Invalid value: \"\": name part must consist of alphanumeric characters, '-', '_' or '.', \
             and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', \
             regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
        );
    }
}

/// Kinds deprecated in v1.33 warn on every request, as upstream's endpoint-level
/// deprecation warnings do; kubectl prints them on stderr.
#[test]
fn deprecated_kinds_warn_on_every_request() {
    let cluster = Cluster::start();
    for version in KUBECTL_VERSIONS {
        for (args, warning) in [
            (vec!["get", "endpoints", "-A"], "Warning: v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice"),
            (vec!["get", "endpoints", "missing"], "Warning: v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice"),
            (vec!["get", "componentstatuses"], "Warning: v1 ComponentStatus is deprecated in v1.19+"),
        ] {
            let output = cluster.run(version, &args);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(stderr.lines().next(), Some(warning), "kubectl {version} {args:?}: {}", describe(&output));
        }
        let output = cluster.run(version, &["get", "configmaps", "-A"]);
        assert!(!String::from_utf8_lossy(&output.stderr).contains("Warning"), "{}", describe(&output));
    }
}
