//! LimitRanges: upstream's SetDefaults_LimitRangeItem for `Container` items — the default
//! limit falls back to the max, the default request to the default limit, then to the min.

use serde_json::{Value, json};

use super::Strategy;

pub struct LimitRangeStrategy;

fn default_item(item: &mut Value) {
    if item["type"] != "Container" {
        return;
    }
    for (into, from) in [("default", "max"), ("defaultRequest", "default"), ("defaultRequest", "min")] {
        let source = item[from].as_object().cloned().unwrap_or_default();
        if !item[into].is_object() {
            item[into] = json!({});
        }
        for (k, v) in source {
            if item[into].get(&k).is_none() {
                item[into][k.as_str()] = v;
            }
        }
    }
    // Upstream leaves empty maps out of the stored object.
    for field in ["default", "defaultRequest"] {
        if item[field].as_object().is_some_and(|m| m.is_empty())
            && let Some(o) = item.as_object_mut()
        {
            o.remove(field);
        }
    }
}

impl Strategy for LimitRangeStrategy {
    fn default(&self, obj: &mut Value) {
        if let Some(limits) = obj.pointer_mut("/spec/limits").and_then(Value::as_array_mut) {
            limits.iter_mut().for_each(default_item);
        }
    }

    fn allow_create_on_update(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_items_get_upstreams_defaults() {
        let mut lr = json!({"spec": {"limits": [
            {"type": "Container", "max": {"cpu": "1", "memory": "1Gi"}, "default": {"memory": "512Mi"}, "min": {"cpu": "100m", "ephemeral-storage": "1Gi"}},
            {"type": "Pod", "max": {"cpu": "2"}},
        ]}});
        LimitRangeStrategy.default(&mut lr);
        assert_eq!(lr["spec"]["limits"][0]["default"], json!({"cpu": "1", "memory": "512Mi"}));
        assert_eq!(lr["spec"]["limits"][0]["defaultRequest"], json!({"cpu": "1", "memory": "512Mi", "ephemeral-storage": "1Gi"}));
        assert_eq!(lr["spec"]["limits"][1], json!({"type": "Pod", "max": {"cpu": "2"}}));
    }
}
