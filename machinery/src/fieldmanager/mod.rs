//! Field ownership (`metadata.managedFields`) and server-side apply, as upstream's field
//! manager does them: which manager owns which field, how an Update moves ownership, how
//! an Apply merges a configuration, removes what its manager stopped applying, and
//! refuses to change fields other managers own unless forced.
//!
//! The schema-aware walks are in [`typed`]; paths and sets in [`path`] and [`set`]. This
//! module is the manager bookkeeping: entries, their identities, order, and the two
//! operations, [`update`] and [`apply`].

pub mod path;
pub mod set;
pub mod typed;

use serde_json::{Value, json};

pub use path::{Path, PathElement, path_string};
pub use set::Set;
pub use typed::Ty;

/// The operation a managedFields entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    Apply,
    Update,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// One managedFields entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub manager: String,
    pub operation: Operation,
    pub api_version: String,
    pub subresource: String,
    pub time: Option<String>,
    pub set: Set,
}

impl Entry {
    /// Upstream identifies Apply entries without their apiVersion.
    fn same_owner(&self, manager: &str, op: Operation, api_version: &str, subresource: &str) -> bool {
        self.manager == manager
            && self.operation == op
            && self.subresource == subresource
            && (op == Operation::Apply || self.api_version == api_version)
    }

    /// How conflicts name the manager: `"kubectl" using apps/v1`.
    fn describe(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == Operation::Update {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }
}

/// The managedFields of one object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Managed {
    pub entries: Vec<Entry>,
}

impl Managed {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Reads `metadata.managedFields`; errors name what upstream's decoder refuses.
    pub fn decode(mf: Option<&Value>) -> Result<Managed, String> {
        let Some(items) = mf.and_then(Value::as_array) else {
            return Ok(Managed::default());
        };
        let mut entries = Vec::with_capacity(items.len());
        for (i, e) in items.iter().enumerate() {
            let operation = match e["operation"].as_str() {
                Some("Apply") => Operation::Apply,
                Some("Update") => Operation::Update,
                _ => return Err("operation must be `Apply` or `Update`".into()),
            };
            let api_version = e["apiVersion"].as_str().unwrap_or("");
            if api_version.is_empty() {
                return Err("apiVersion must not be empty".into());
            }
            match e["fieldsType"].as_str() {
                Some("FieldsV1") => {}
                None | Some("") => return Err(format!("missing fieldsType in managed fields entry {i}")),
                Some(other) => return Err(format!("invalid fieldsType {other:?} in managed fields entry {i}")),
            }
            let set = match e.get("fieldsV1") {
                Some(v) if !v.is_null() => Set::from_fields_v1(v).map_err(|err| format!("error decoding set: {err}"))?,
                _ => Set::new(),
            };
            let entry = Entry {
                manager: e["manager"].as_str().unwrap_or("").to_string(),
                operation,
                api_version: api_version.to_string(),
                subresource: e["subresource"].as_str().unwrap_or("").to_string(),
                time: e["time"].as_str().map(str::to_string),
                set,
            };
            // A later entry of the same owner replaces an earlier one, as in upstream's map.
            entries.retain(|x: &Entry| !x.same_owner(&entry.manager, entry.operation, &entry.api_version, &entry.subresource));
            entries.push(entry);
        }
        Ok(Managed { entries })
    }

    /// `metadata.managedFields`, sorted as upstream sorts it; `None` when nothing is owned.
    pub fn encode(&self) -> Option<Value> {
        if self.entries.is_empty() {
            return None;
        }
        let mut entries: Vec<&Entry> = self.entries.iter().collect();
        entries.sort_by(|p, q| {
            p.operation
                .as_str()
                .cmp(q.operation.as_str())
                .then_with(|| p.time.as_deref().unwrap_or("").cmp(q.time.as_deref().unwrap_or("")))
                .then_with(|| p.manager.cmp(&q.manager))
                .then_with(|| p.api_version.cmp(&q.api_version))
                .then_with(|| p.subresource.cmp(&q.subresource))
        });
        Some(Value::Array(
            entries
                .into_iter()
                .map(|e| {
                    let mut v = json!({"manager": e.manager, "operation": e.operation.as_str(), "apiVersion": e.api_version});
                    if let Some(t) = &e.time {
                        v["time"] = json!(t);
                    }
                    v["fieldsType"] = json!("FieldsV1");
                    v["fieldsV1"] = e.set.to_fields_v1();
                    if !e.subresource.is_empty() {
                        v["subresource"] = json!(e.subresource);
                    }
                    v
                })
                .collect(),
        ))
    }

    /// The managed fields an Update starts from: the request's own when it carries any (an
    /// empty list or one empty entry resets them), else the live object's. Subresource
    /// updates always start from the live object's.
    pub fn for_update(live: Option<&Value>, request: Option<&Value>, subresource: bool) -> Managed {
        let decode = |v: Option<&Value>| Managed::decode(v).unwrap_or_default();
        if subresource {
            return decode(live);
        }
        if let Some(Value::Array(items)) = request {
            let reset = items.is_empty() || (items.len() == 1 && items[0].as_object().is_some_and(serde_json::Map::is_empty));
            if reset {
                return Managed::default();
            }
            if let Ok(m) = Managed::decode(request)
                && !m.is_empty()
            {
                return m;
            }
        }
        decode(live)
    }

    fn position(&self, manager: &str, op: Operation, api_version: &str, subresource: &str) -> Option<usize> {
        self.entries.iter().position(|e| e.same_owner(manager, op, api_version, subresource))
    }

    fn drop_empty(&mut self) {
        self.entries.retain(|e| !e.set.is_empty());
    }

    /// At most ten Update entries: the oldest fold into `ancient-changes`, per apiVersion.
    fn cap_updaters(&mut self) {
        const MAX: usize = 10;
        let mut updaters: Vec<usize> = (0..self.entries.len()).filter(|&i| self.entries[i].operation == Operation::Update).collect();
        if updaters.len() <= MAX {
            return;
        }
        updaters.sort_by(|&a, &b| {
            let (p, q) = (&self.entries[a], &self.entries[b]);
            p.time.as_deref().unwrap_or("").cmp(q.time.as_deref().unwrap_or("")).then_with(|| p.manager.cmp(&q.manager))
        });
        let mut length = updaters.len();
        let mut first_of_version: Vec<(String, usize)> = Vec::new();
        let mut remove = Vec::new();
        for &i in &updaters {
            if length <= MAX {
                break;
            }
            let version = self.entries[i].api_version.clone();
            match first_of_version.iter().find(|(v, _)| *v == version).map(|(_, j)| *j) {
                Some(first) => {
                    let folded = self.entries[i].set.clone();
                    let time = self.entries[i].time.clone();
                    let bucket = &mut self.entries[first];
                    bucket.manager = "ancient-changes".into();
                    bucket.subresource.clear();
                    bucket.set = bucket.set.union(&folded);
                    bucket.time = time;
                    remove.push(i);
                    length -= 1;
                }
                None => first_of_version.push((version, i)),
            }
        }
        remove.sort_unstable();
        for i in remove.into_iter().rev() {
            self.entries.remove(i);
        }
    }
}

/// The paths no manager owns: the object's identity and bookkeeping.
fn strip_set() -> Set {
    let mut s = Set::new();
    let f = |n: &str| PathElement::Field(n.to_string());
    for top in ["apiVersion", "kind", "metadata"] {
        s.insert(&[f(top)]);
    }
    for m in ["name", "namespace", "creationTimestamp", "selfLink", "uid", "clusterName", "generation", "managedFields", "resourceVersion"] {
        s.insert(&[f("metadata"), f(m)]);
    }
    s
}

/// What one write is about.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub ty: Ty,
    /// The group/version the request was made in (`apps/v1`).
    pub api_version: &'a str,
    /// `""` for the main resource, else `status`, `scale`, ...
    pub subresource: &'a str,
    /// Fields the endpoint resets (the main resource's `status`, a status endpoint's
    /// `spec`): nobody takes ownership of them through this endpoint.
    pub reset: &'a Set,
    /// RFC 3339, seconds.
    pub now: &'a str,
}

/// Records an Update by `manager` that turned `live` into `new`: the manager owns what it
/// changed or added, other managers lose what was changed, everyone loses what was removed.
pub fn update(live: &Value, new: &Value, mut managed: Managed, manager: &str, ctx: &Context<'_>) -> Managed {
    let manager = if manager.is_empty() { "unknown" } else { manager };
    let cmp = typed::compare(live, new, &ctx.ty).exclude(ctx.reset);
    let changed = cmp.modified.union(&cmp.added);
    for e in &mut managed.entries {
        e.set = e.set.difference(&changed).difference(&cmp.removed);
    }
    managed.drop_empty();
    let mine = changed.recursive_difference(ctx.reset).difference(&strip_set());
    if !mine.is_empty() {
        match managed.position(manager, Operation::Update, ctx.api_version, ctx.subresource) {
            Some(i) => {
                let e = &mut managed.entries[i];
                e.set = mine.union(&e.set);
                e.time = Some(ctx.now.to_string());
            }
            None => managed.entries.push(Entry {
                manager: manager.to_string(),
                operation: Operation::Update,
                api_version: ctx.api_version.to_string(),
                subresource: ctx.subresource.to_string(),
                time: Some(ctx.now.to_string()),
                set: mine,
            }),
        }
    }
    managed.cap_updaters();
    managed
}

/// One field another manager owns and an Apply would change.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    /// How the error names the owner: `"kubectl-client-side-apply" using apps/v1`.
    pub manager: String,
    pub path: Path,
}

/// Why an Apply failed.
#[derive(Debug, Clone, PartialEq)]
pub enum ApplyError {
    /// 409: fields owned by other managers would change.
    Conflicts(Vec<Conflict>),
    /// 400 or 500 upstream: the configuration does not fit the schema.
    Invalid(String),
}

impl ApplyError {
    /// Upstream's message: `Apply failed with 1 conflict: conflict with "x" using v1: .data.a`.
    pub fn conflict_message(conflicts: &[Conflict]) -> String {
        if let [one] = conflicts {
            return format!("Apply failed with 1 conflict: conflict with {}: {}", one.manager, path_string(&one.path));
        }
        let mut managers: Vec<&str> = conflicts.iter().map(|c| c.manager.as_str()).collect();
        managers.sort_unstable();
        managers.dedup();
        let mut lines = Vec::new();
        for m in managers {
            lines.push(format!("conflicts with {m}:"));
            for c in conflicts.iter().filter(|c| c.manager == m) {
                lines.push(format!("- {}", path_string(&c.path)));
            }
        }
        format!("Apply failed with {} conflicts: {}", conflicts.len(), lines.join("\n"))
    }
}

/// The annotation client-side apply keeps its configuration in.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Applies `config` for `manager` to `live` (the zero object when creating; `zero` is the
/// kind's zero value). Returns the new object (`None`: nothing changed) and the managed
/// fields after the apply.
pub fn apply(
    live: &Value,
    config: &Value,
    managed: Managed,
    manager: &str,
    force: bool,
    zero: &Value,
    ctx: &Context<'_>,
) -> Result<(Option<Value>, Managed), ApplyError> {
    let result = apply_once(live, config, managed.clone(), manager, force, zero, ctx);
    let result = match result {
        // kubectl moving from client-side to server-side apply: conflicts on fields whose
        // live value is what the last client-side apply set are not conflicts.
        Err(ApplyError::Conflicts(conflicts)) if manager == "kubectl" => {
            match allowed_from_last_applied(live, ctx) {
                Some(allowed) => {
                    let rest: Vec<Conflict> = conflicts.iter().filter(|c| !allowed.has(&c.path)).cloned().collect();
                    if rest.is_empty() {
                        apply_once(live, config, managed, manager, true, zero, ctx)
                    } else {
                        Err(ApplyError::Conflicts(rest))
                    }
                }
                None => Err(ApplyError::Conflicts(conflicts)),
            }
        }
        other => other,
    };
    let (obj, managed) = result?;
    // kubectl's server-side apply keeps a client-side last-applied annotation current,
    // whether or not the apply changed anything else.
    if manager == "kubectl" {
        let current = obj.as_ref().unwrap_or(live);
        if has_last_applied(current) {
            let mut last = config.clone();
            // As upstream: the annotation leaves the configuration; an emptied map stays.
            if let Some(a) = last.pointer_mut("/metadata/annotations").and_then(Value::as_object_mut) {
                a.remove(LAST_APPLIED);
            }
            let mut out = current.clone();
            out["metadata"]["annotations"][LAST_APPLIED] = json!(format!("{}\n", sorted_json(&last)));
            return Ok((Some(out), managed));
        }
    }
    Ok((obj, managed))
}

/// JSON with object keys sorted, as Go's encoder writes maps.
fn sorted_json(v: &Value) -> String {
    fn sort(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Value::Object(keys.into_iter().map(|k| (k.clone(), sort(&m[k]))).collect())
            }
            Value::Array(a) => Value::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    sort(v).to_string()
}

fn has_last_applied(obj: &Value) -> bool {
    obj["metadata"]["annotations"][LAST_APPLIED].as_str().is_some_and(|s| !s.is_empty())
}

/// The fields of the last client-side apply whose live values it set.
fn allowed_from_last_applied(live: &Value, ctx: &Context<'_>) -> Option<Set> {
    let text = live["metadata"]["annotations"][LAST_APPLIED].as_str().filter(|s| !s.is_empty())?;
    let last: Value = serde_json::from_str(text).ok()?;
    if last["apiVersion"].as_str() != Some(ctx.api_version) {
        return None;
    }
    let set = typed::to_field_set(&last, &ctx.ty).ok()?;
    let cmp = typed::compare(&last, live, &ctx.ty);
    Some(set.difference(&cmp.modified).difference(&cmp.added).difference(&cmp.removed))
}

fn apply_once(
    live: &Value,
    config: &Value,
    mut managed: Managed,
    manager: &str,
    force: bool,
    zero: &Value,
    ctx: &Context<'_>,
) -> Result<(Option<Value>, Managed), ApplyError> {
    if managed.is_empty() {
        // Whatever exists before the first apply belongs to "before-first-apply".
        managed = update(zero, live, managed, "before-first-apply", ctx);
    }
    let ty = &ctx.ty;
    typed::validate(config, ty).map_err(ApplyError::Invalid)?;
    let merged = typed::merge(live, config, ty).map_err(ApplyError::Invalid)?;
    let mine = managed.position(manager, Operation::Apply, ctx.api_version, ctx.subresource);
    let last = mine.map(|i| managed.entries[i].set.clone());
    let set = typed::to_field_set(config, ty).map_err(ApplyError::Invalid)?.recursive_difference(ctx.reset);
    let entry = Entry {
        manager: manager.to_string(),
        operation: Operation::Apply,
        api_version: ctx.api_version.to_string(),
        subresource: ctx.subresource.to_string(),
        time: mine.and_then(|i| managed.entries[i].time.clone()),
        set,
    };
    match mine {
        Some(i) => managed.entries[i] = entry,
        None => managed.entries.push(entry),
    }
    let new = match &last {
        Some(last) if !last.is_empty() => prune(&merged, &managed, last, ty),
        _ => merged,
    };

    // Ownership: conflicts with every other manager whose fields change.
    let cmp = typed::compare(live, &new, ty).exclude(ctx.reset);
    let changed = cmp.modified.union(&cmp.added);
    let mut conflicts = Vec::new();
    for e in &managed.entries {
        if e.same_owner(manager, Operation::Apply, ctx.api_version, ctx.subresource) {
            continue;
        }
        for path in e.set.intersection(&changed).paths() {
            conflicts.push(Conflict { manager: e.describe(), path });
        }
    }
    if !force && !conflicts.is_empty() {
        conflicts.sort_by(|a, b| a.manager.cmp(&b.manager));
        return Err(ApplyError::Conflicts(conflicts));
    }
    let strip = strip_set();
    for e in &mut managed.entries {
        if e.same_owner(manager, Operation::Apply, ctx.api_version, ctx.subresource) {
            e.set = e.set.difference(&strip);
        } else {
            e.set = e.set.difference(&changed).difference(&cmp.removed);
        }
    }
    managed.drop_empty();
    if path::compare_values(live, &new) == std::cmp::Ordering::Equal {
        return Ok((None, managed));
    }
    if let Some(i) = managed.position(manager, Operation::Apply, ctx.api_version, ctx.subresource) {
        managed.entries[i].time = Some(ctx.now.to_string());
    }
    Ok((Some(new), managed))
}

/// Removes from `merged` what the manager applied last time and no longer applies, unless
/// another manager (or its new configuration) owns it.
fn prune(merged: &Value, managed: &Managed, last: &Set, ty: &Ty) -> Value {
    let named = |s: &Set| typed::ensure_named_fields_are_members(s, ty);
    let fields = |v: &Value| typed::to_field_set(v, ty).unwrap_or_default();
    let last = named(last);
    let pruned = typed::remove_items(merged, &last, ty);
    let owned = managed.entries.iter().fold(Set::new(), |acc, e| acc.union(&e.set));
    let merged_set = named(&fields(merged));
    let keep = named(&fields(&pruned)).union(&named(&owned));
    let pruned = typed::remove_items(merged, &merged_set.difference(&keep), ty);
    let pruned_set = named(&fields(&pruned));
    typed::remove_items(merged, &merged_set.difference(&pruned_set).intersection(&last), ty)
}

#[cfg(test)]
mod tests;
