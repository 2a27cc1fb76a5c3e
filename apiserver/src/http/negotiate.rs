//! Content negotiation: which representation the client accepts, and rendering it.

use bytes::Bytes;
use ironkube_machinery::ApiError;
use serde_json::Value;

/// What the response body should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Json,
    Yaml,
    /// `as=Table;g=meta.k8s.io;v=v1` (or v1beta1).
    Table { v1beta1: bool },
    /// `as=PartialObjectMetadata` / `as=PartialObjectMetadataList`.
    Metadata { v1beta1: bool },
    /// `as=APIGroupDiscoveryList;g=apidiscovery.k8s.io;v=v2`.
    AggregatedDiscovery,
    /// `application/vnd.kubernetes.protobuf` (objects of built-in kinds; JSON otherwise).
    Protobuf,
}

pub const ACCEPTED: &str = "application/json, application/yaml, application/vnd.kubernetes.protobuf";

struct MediaRange<'a> {
    mime: &'a str,
    params: Vec<(&'a str, &'a str)>,
}

impl<'a> MediaRange<'a> {
    fn parse(s: &'a str) -> MediaRange<'a> {
        let mut parts = s.split(';').map(str::trim);
        let mime = parts.next().unwrap_or("");
        let params = parts
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.trim(), v.trim().trim_matches('"')))
            .collect();
        MediaRange { mime, params }
    }

    fn param(&self, name: &str) -> Option<&'a str> {
        self.params.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| *v)
    }
}

/// Picks the first representation in `accept` the server can produce.
pub fn negotiate(accept: Option<&str>, discovery: bool) -> Result<Output, ApiError> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Ok(Output::Json);
    };
    for range in accept.split(',').map(MediaRange::parse) {
        if range.param("q").is_some_and(|q| q.parse::<f32>().is_ok_and(|q| q == 0.0)) {
            continue;
        }
        if range.mime == "application/vnd.kubernetes.protobuf" && range.param("as").is_none() && !discovery {
            return Ok(Output::Protobuf);
        }
        let json_like = matches!(range.mime, "application/json" | "*/*" | "application/*" | "application/json-seq");
        let yaml = range.mime == "application/yaml";
        if !(json_like || yaml) {
            continue;
        }
        match (range.param("as"), range.param("g"), range.param("v")) {
            (None, _, _) => return Ok(if yaml { Output::Yaml } else { Output::Json }),
            (Some("Table"), Some("meta.k8s.io"), Some(v @ ("v1" | "v1beta1"))) if json_like => {
                return Ok(Output::Table { v1beta1: v == "v1beta1" });
            }
            (Some("PartialObjectMetadata" | "PartialObjectMetadataList"), Some("meta.k8s.io"), Some(v @ ("v1" | "v1beta1")))
                if json_like =>
            {
                return Ok(Output::Metadata { v1beta1: v == "v1beta1" });
            }
            (Some("APIGroupDiscoveryList"), Some("apidiscovery.k8s.io"), Some("v2")) if discovery && json_like => {
                return Ok(Output::AggregatedDiscovery);
            }
            _ => continue,
        }
    }
    Err(ApiError::not_acceptable(ACCEPTED))
}

/// Serializes `value` as JSON, YAML or protobuf; returns the Content-Type and bytes.
/// Kinds protobuf cannot express (tables, custom resources) fall back to JSON.
pub fn encode(value: &Value, output: Output) -> (&'static str, Bytes) {
    if output == Output::Protobuf {
        let api_version = value["apiVersion"].as_str().unwrap_or("");
        let kind = value["kind"].as_str().unwrap_or("");
        if ironkube_machinery::proto::supports(api_version, kind)
            && let Ok(bytes) = ironkube_machinery::proto::encode(value)
        {
            return (ironkube_machinery::proto::CONTENT_TYPE, Bytes::from(bytes));
        }
    }
    if output == Output::Yaml
        && let Ok(s) = serde_saphyr::to_string(value)
    {
        return ("application/yaml", Bytes::from(s));
    }
    ("application/json", Bytes::from(json_line(value)))
}

/// JSON followed by a newline, as Go's `json.Encoder` (upstream's serializer) writes it.
pub fn json_line(value: &Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(value).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_accept_headers() {
        let get = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(negotiate(Some(get), false), Ok(Output::Table { v1beta1: false }));
        let disc = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(negotiate(Some(disc), true), Ok(Output::AggregatedDiscovery));
        assert_eq!(negotiate(Some(disc), false), Ok(Output::Json));
        assert_eq!(negotiate(Some("application/vnd.kubernetes.protobuf, */*"), false), Ok(Output::Protobuf));
        assert_eq!(negotiate(Some("application/vnd.kubernetes.protobuf, */*"), true), Ok(Output::Json));
        assert_eq!(negotiate(Some("application/yaml"), false), Ok(Output::Yaml));
        assert!(negotiate(Some("text/html"), false).is_err());
    }
}
