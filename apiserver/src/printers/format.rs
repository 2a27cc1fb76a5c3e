//! Cell formatting shared by many kinds: label maps and selectors, container lists,
//! quantities, optional booleans, shortened lists.

use ironkube_machinery::selectors::label::Selector;
use ironkube_machinery::validation::quantity::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::view::View;

/// Upstream's `labels.FormatLabels`: `k=v` pairs sorted as strings, joined by commas, or
/// `<none>`.
pub fn labels(map: View<'_>) -> String {
    let mut pairs: Vec<String> = map
        .entries()
        .map(|(k, v)| format!("{k}={}", v.str()))
        .collect();
    pairs.sort();
    if pairs.is_empty() {
        "<none>".into()
    } else {
        pairs.join(",")
    }
}

/// `metav1.LabelSelectorAsSelector(...).String()`: `None` when the selector is invalid. A
/// missing selector selects nothing and an empty one everything; both render as `""`.
fn selector_string(selector: View<'_>) -> Option<String> {
    let Some(value) = selector.value() else {
        return Some(String::new());
    };
    let parsed: LabelSelector = serde_json::from_value(value.clone()).ok()?;
    Selector::from_label_selector(Some(&parsed))
        .ok()
        .map(|s| s.to_string())
}

/// Upstream's `metav1.FormatLabelSelector`: the selector string, `<none>` when it is empty,
/// `<error>` when it is invalid.
pub fn label_selector(selector: View<'_>) -> String {
    match selector_string(selector) {
        Some(s) if s.is_empty() => "<none>".into(),
        Some(s) => s,
        None => "<error>".into(),
    }
}

/// The selector string as deployments print it: `""` when empty, `<invalid>` when invalid.
pub fn label_selector_or_invalid(selector: View<'_>) -> String {
    selector_string(selector).unwrap_or_else(|| "<invalid>".into())
}

/// The Go (gogo-protobuf) `String()` of a `*metav1.LabelSelector`, which upstream prints for
/// a policy binding's parameter selector.
pub fn label_selector_go_repr(selector: View<'_>) -> String {
    if !selector.is_set() {
        return "nil".into();
    }
    let mut keys: Vec<(&str, &str)> = selector
        .at("matchLabels")
        .entries()
        .map(|(k, v)| (k, v.str()))
        .collect();
    keys.sort();
    let labels: String = keys.iter().map(|(k, v)| format!("{k}: {v},")).collect();
    let expressions: String = selector
        .at("matchExpressions")
        .items()
        .map(|e| {
            let values: Vec<&str> = e.at("values").items().map(View::str).collect();
            format!(
                "LabelSelectorRequirement{{Key:{},Operator:{},Values:[{}],}},",
                e.at("key").str(),
                e.at("operator").str(),
                values.join(" ")
            )
        })
        .collect();
    format!(
        "&LabelSelector{{MatchLabels:map[string]string{{{labels}}},MatchExpressions:[]LabelSelectorRequirement{{{expressions}}},}}"
    )
}

/// Upstream's `layoutContainerCells`: the names and the images of `containers`, each list
/// joined by commas.
pub fn containers(containers: View<'_>) -> (String, String) {
    let names: Vec<&str> = containers.items().map(|c| c.at("name").str()).collect();
    let images: Vec<&str> = containers.items().map(|c| c.at("image").str()).collect();
    (names.join(","), images.join(","))
}

/// A `resource.Quantity` in canonical form (`String()`); a missing one is `0`.
pub fn quantity(q: View<'_>) -> String {
    match q.value() {
        None => "0".into(),
        Some(v) => {
            let raw = match v.as_str() {
                Some(s) => s.to_string(),
                None => v.to_string(),
            };
            Quantity::parse(&raw).map(|q| q.to_string()).unwrap_or(raw)
        }
    }
}

/// A `*resource.Quantity` in canonical form; a missing one is `<nil>`.
pub fn quantity_ptr(q: View<'_>) -> String {
    if q.is_set() {
        quantity(q)
    } else {
        "<nil>".into()
    }
}

/// Upstream's `printBoolPtr`: `True`, `False`, or `<unset>`.
pub fn bool_ptr(b: View<'_>) -> String {
    match b.opt_bool() {
        Some(true) => "True".into(),
        Some(false) => "False".into(),
        None => "<unset>".into(),
    }
}

/// Upstream's `listWithMoreString`: `a,b,c + N more...`, or `<unset>` for nothing.
pub fn list_with_more(list: &[String], more: bool, count: usize, max: usize) -> String {
    let joined = list.join(",");
    if more {
        format!("{joined} + {} more...", count - max)
    } else if joined.is_empty() {
        "<unset>".into()
    } else {
        joined
    }
}

/// Go's `net.JoinHostPort`: brackets around a host that contains a colon.
pub fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn labels_sort_as_pairs() {
        let m = json!({"app": "web", "a.b": "x", "tier": "front"});
        assert_eq!(labels(View::of(&m)), "a.b=x,app=web,tier=front");
        assert_eq!(labels(View::of(&json!({}))), "<none>");
        assert_eq!(labels(View::of(&json!(null))), "<none>");
    }

    #[test]
    fn selectors_render_like_upstream() {
        let s = json!({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]}]});
        assert_eq!(label_selector(View::of(&s)), "app=web,tier in (a,b)");
        assert_eq!(label_selector(View::of(&json!({}))), "<none>");
        assert_eq!(label_selector(View::of(&json!(null))), "<none>");
        let bad = json!({"matchExpressions": [{"key": "k", "operator": "Bogus"}]});
        assert_eq!(label_selector(View::of(&bad)), "<error>");
        assert_eq!(label_selector_or_invalid(View::of(&bad)), "<invalid>");
        assert_eq!(label_selector_or_invalid(View::of(&json!({}))), "");
    }

    #[test]
    fn go_repr_of_a_selector() {
        let s = json!({"matchLabels": {"b": "2", "a": "1"}, "matchExpressions": [{"key": "k", "operator": "In", "values": ["x", "y"]}]});
        assert_eq!(
            label_selector_go_repr(View::of(&s)),
            "&LabelSelector{MatchLabels:map[string]string{a: 1,b: 2,},MatchExpressions:[]LabelSelectorRequirement{LabelSelectorRequirement{Key:k,Operator:In,Values:[x y],},},}"
        );
    }

    #[test]
    fn quantities_are_canonical() {
        assert_eq!(quantity(View::of(&json!("1024Mi"))), "1Gi");
        assert_eq!(quantity(View::of(&json!("0.5"))), "500m");
        assert_eq!(quantity(View::of(&json!(null))), "0");
    }
}
