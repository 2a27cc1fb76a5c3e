//! ClusterIP and NodePort allocation for Services.
//!
//! ClusterIPs are allocated the v1.33 way: each allocated IP is an `IPAddress` object
//! (`networking.k8s.io/v1`, named by the IP, parentRef = the Service) created with etcd's
//! create-if-absent, so two API servers can never hand out the same IP. NodePorts live in
//! one `RangeAllocation` bitmap key updated with a guarded write, as upstream keeps them.

use std::net::IpAddr;

use base64::Engine;
use futures::FutureExt;
use futures::future::BoxFuture;
use ironkube_machinery::net::Cidr;
use ironkube_machinery::{ApiError, FieldError};
use rand::Rng;
use serde_json::{Value, json};
use tracing::warn;

use crate::storage::{Etcd3, Preconditions, StorageError};

/// What a write reserved, so it can be given back if the write fails.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub ips: Vec<IpAddr>,
    pub node_ports: Vec<u16>,
}

impl Reservation {
    fn is_empty(&self) -> bool {
        self.ips.is_empty() && self.node_ports.is_empty()
    }
}

/// Allocation hooks the store calls around writes of one resource.
pub trait StoreHooks: Send + Sync {
    /// Reserves what a new object needs, filling it in.
    fn before_create<'a>(&'a self, obj: &'a mut Value, dry_run: bool) -> BoxFuture<'a, Result<Reservation, ApiError>>;
    /// Reserves what an update newly needs; returns (reserved now, to release after success).
    fn before_update<'a>(&'a self, new: &'a mut Value, old: &'a Value, dry_run: bool) -> BoxFuture<'a, Result<(Reservation, Reservation), ApiError>>;
    /// Gives a reservation back.
    fn release(&self, r: Reservation) -> BoxFuture<'_, ()>;
    /// Everything a deleted object held.
    fn held_by(&self, obj: &Value) -> Reservation;
}

pub struct ServiceAllocator {
    etcd: Etcd3,
    ip_prefix: String,
    node_port_key: String,
    cidr: Cidr,
    ports: (u16, u16),
}

const MANAGED_BY: &str = "ipallocator.k8s.io";

fn needs_cluster_ip(svc: &Value) -> bool {
    svc["spec"]["type"].as_str().unwrap_or("ClusterIP") != "ExternalName"
}

fn needs_node_ports(svc: &Value) -> bool {
    matches!(svc["spec"]["type"].as_str(), Some("NodePort" | "LoadBalancer"))
}

fn invalid(svc: &Value, field: String, value: Value, detail: String) -> ApiError {
    let name = svc["metadata"]["name"].as_str().unwrap_or("");
    ApiError::invalid("", "Service", name, &[FieldError::invalid(field, value, detail)])
}

impl ServiceAllocator {
    /// `range` is `--service-cluster-ip-range`, `node_ports` `--service-node-port-range`.
    pub fn new(etcd: Etcd3, etcd_prefix: &str, range: &str, node_ports: &str) -> Option<Self> {
        let cidr = Cidr::parse(range.split(',').next()?)?;
        let (lo, hi) = node_ports.split_once('-').map(|(a, b)| (a.trim().parse().ok(), b.trim().parse().ok()))?;
        let (lo, hi): (u16, u16) = (lo?, hi?);
        let prefix = etcd_prefix.trim_end_matches('/');
        Some(ServiceAllocator {
            etcd,
            ip_prefix: format!("{prefix}/ipaddresses/"),
            node_port_key: format!("{prefix}/ranges/servicenodeports"),
            cidr,
            ports: (lo, hi.max(lo)),
        })
    }

    pub fn cidr(&self) -> Cidr {
        self.cidr
    }

    fn ip_object(&self, ip: IpAddr, svc: &Value) -> Value {
        json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "IPAddress",
            "metadata": {
                "name": ip.to_string(),
                "uid": uuid::Uuid::new_v4().to_string(),
                "creationTimestamp": super::store::now_rfc3339(),
                "labels": {
                    "ipaddress.kubernetes.io/ip-family": if ip.is_ipv4() { "IPv4" } else { "IPv6" },
                    "ipaddress.kubernetes.io/managed-by": MANAGED_BY,
                },
            },
            "spec": {"parentRef": {
                "group": "",
                "resource": "services",
                "namespace": svc["metadata"]["namespace"],
                "name": svc["metadata"]["name"],
            }},
        })
    }

    /// Reserves `ip` for `svc`; `Ok(false)` when someone holds it.
    async fn reserve_ip(&self, ip: IpAddr, svc: &Value) -> Result<bool, ApiError> {
        let key = format!("{}{ip}", self.ip_prefix);
        match self.etcd.create(&key, &self.ip_object(ip, svc)).await {
            Ok(_) => Ok(true),
            Err(StorageError::KeyExists { .. }) => Ok(false),
            Err(e) => Err(ApiError::internal(format!("allocating IP {ip}: {e}"))),
        }
    }

    async fn allocate_ip(&self, svc: &Value, requested: Option<&str>, dry_run: bool) -> Result<IpAddr, ApiError> {
        if let Some(req) = requested {
            let field = "spec.clusterIPs[0]".to_string();
            let ip: IpAddr = req
                .parse()
                .map_err(|_| invalid(svc, field.clone(), json!(req), format!("failed to allocate IP {req}: the provided IP is not a valid IP address")))?;
            let size = self.cidr.size();
            let usable = self.cidr.offset_of(&ip).is_some_and(|o| o > 0 && (o < size - 1 || !self.cidr.is_ipv4()));
            if !usable {
                return Err(invalid(svc, field, json!(req), format!(
                    "failed to allocate IP {req}: the provided IP ({req}) is not in the valid range. The range of valid IPs is {}",
                    self.cidr
                )));
            }
            if dry_run {
                return Ok(ip);
            }
            if !self.reserve_ip(ip, svc).await? {
                return Err(invalid(svc, field, json!(req), format!("failed to allocate IP {req}: provided IP is already allocated")));
            }
            return Ok(ip);
        }
        // Random, above the lower band kept for static allocation (upstream: 1/16 of the
        // range, between 16 and 256 addresses).
        let size = self.cidr.size().min(1 << 24);
        let band = (size / 16).clamp(16, 256).min(size / 2);
        let last = if self.cidr.is_ipv4() { size - 1 } else { size };
        for _ in 0..64 {
            let offset = rand::rng().random_range(band.max(1)..last.max(band.max(1) + 1));
            let Some(ip) = self.cidr.nth(offset) else { continue };
            if dry_run || self.reserve_ip(ip, svc).await? {
                return Ok(ip);
            }
        }
        // Fall back to a scan (nearly full range).
        for offset in 1..last {
            let Some(ip) = self.cidr.nth(offset) else { break };
            if self.reserve_ip(ip, svc).await? {
                return Ok(ip);
            }
        }
        Err(ApiError::internal(format!("failed to allocate a serviceIP: range is full ({})", self.cidr)))
    }

    /// Reserves node ports: `wanted` are (port index, requested port or 0 for any).
    async fn allocate_ports(&self, svc: &Value, wanted: &[(usize, u16)], dry_run: bool) -> Result<Vec<(usize, u16)>, ApiError> {
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let (lo, hi) = self.ports;
        let span = (hi - lo) as usize + 1;
        for (i, p) in wanted {
            if *p != 0 && (*p < lo || *p > hi) {
                return Err(invalid(svc, format!("spec.ports[{i}].nodePort"), json!(p), format!(
                    "provided port is not in the valid range. The range of valid ports is {lo}-{hi}"
                )));
            }
        }
        let wanted = wanted.to_vec();
        let mut result = Vec::new();
        let mut conflict: Option<(usize, u16)> = None;
        let range_text = format!("{lo}-{hi}");
        let start = rand::rng().random_range(0..span);
        let update = |current: Option<Value>| -> Result<Value, StorageError> {
            let mut bits = current
                .as_ref()
                .and_then(|c| c["data"].as_str())
                .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
                .unwrap_or_default();
            bits.resize(span.div_ceil(8), 0);
            let taken = |bits: &[u8], o: usize| bits[o / 8] & (1 << (o % 8)) != 0;
            result.clear();
            conflict = None;
            for (i, p) in &wanted {
                let offset = if *p != 0 {
                    let o = (*p - lo) as usize;
                    if taken(&bits, o) {
                        conflict = Some((*i, *p));
                        return Err(StorageError::Rejected(ApiError::bad_request("conflict")));
                    }
                    o
                } else {
                    match (0..span).map(|k| (start + k) % span).find(|o| !taken(&bits, *o)) {
                        Some(o) => o,
                        None => return Err(StorageError::Rejected(ApiError::internal("range is full"))),
                    }
                };
                bits[offset / 8] |= 1 << (offset % 8);
                result.push((*i, lo + offset as u16));
            }
            let mut obj = current.unwrap_or_else(|| json!({"kind": "RangeAllocation", "apiVersion": "v1", "metadata": {"creationTimestamp": null}}));
            obj["range"] = json!(range_text);
            obj["data"] = json!(base64::engine::general_purpose::STANDARD.encode(&bits));
            Ok(obj)
        };
        let outcome = if dry_run {
            let current = self.etcd.get(&self.node_port_key).await.ok();
            let mut update = update;
            update(current).map(|_| ())
        } else {
            self.etcd.guaranteed_update(&self.node_port_key, &Preconditions::default(), update).await.map(|_| ())
        };
        match outcome {
            Ok(()) => Ok(result),
            Err(_) if conflict.is_some() => {
                let (i, p) = conflict.unwrap_or_default();
                Err(invalid(svc, format!("spec.ports[{i}].nodePort"), json!(p), "provided port is already allocated".into()))
            }
            Err(StorageError::Rejected(e)) => Err(ApiError::internal(format!("failed to allocate a nodePort: {}", e.message))),
            Err(e) => Err(ApiError::internal(format!("allocating node ports: {e}"))),
        }
    }

    async fn release_ports(&self, ports: &[u16]) {
        let (lo, hi) = self.ports;
        let span = (hi - lo) as usize + 1;
        let ports = ports.to_vec();
        let res = self
            .etcd
            .guaranteed_update(&self.node_port_key, &Preconditions::default(), |current| {
                let Some(mut obj) = current else {
                    return Err(StorageError::NotFound { key: String::new() });
                };
                let mut bits = obj["data"]
                    .as_str()
                    .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
                    .unwrap_or_default();
                bits.resize(span.div_ceil(8), 0);
                for p in &ports {
                    if *p >= lo && *p <= hi {
                        let o = (*p - lo) as usize;
                        bits[o / 8] &= !(1 << (o % 8));
                    }
                }
                obj["data"] = json!(base64::engine::general_purpose::STANDARD.encode(&bits));
                Ok(obj)
            })
            .await;
        if let Err(e) = res {
            warn!(error = %e, ?ports, "releasing node ports");
        }
    }

    async fn release_ips(&self, ips: &[IpAddr]) {
        for ip in ips {
            let key = format!("{}{ip}", self.ip_prefix);
            match self.etcd.delete(&key, &Preconditions::default()).await {
                Ok(_) | Err(StorageError::NotFound { .. }) => {}
                Err(e) => warn!(%ip, error = %e, "releasing a service IP"),
            }
        }
    }

    /// Node ports a service asks for: (index, requested or 0).
    fn wanted_ports(svc: &Value, keep_from: Option<&Value>) -> Vec<(usize, u16)> {
        let ports = svc["spec"]["ports"].as_array().cloned().unwrap_or_default();
        ports
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let requested = p["nodePort"].as_u64().unwrap_or(0) as u16;
                // An update keeps the old port of the same port number if none is given.
                let kept = keep_from.and_then(|old| {
                    old["spec"]["ports"].as_array()?.iter().find(|o| o["port"] == p["port"] && o["protocol"] == p["protocol"])?["nodePort"].as_u64()
                });
                (i, if requested == 0 { kept.unwrap_or(0) as u16 } else { requested })
            })
            .collect()
    }

    async fn create_inner(&self, svc: &mut Value, dry_run: bool) -> Result<Reservation, ApiError> {
        let mut reserved = Reservation::default();
        if needs_cluster_ip(svc) {
            let requested = svc["spec"]["clusterIP"].as_str().filter(|s| !s.is_empty()).map(str::to_string)
                .or_else(|| svc["spec"]["clusterIPs"][0].as_str().map(str::to_string));
            if requested.as_deref() != Some("None") {
                let ip = self.allocate_ip(svc, requested.as_deref(), dry_run).await?;
                if !dry_run {
                    reserved.ips.push(ip);
                }
                svc["spec"]["clusterIP"] = json!(ip.to_string());
                svc["spec"]["clusterIPs"] = json!([ip.to_string()]);
            } else {
                svc["spec"]["clusterIPs"] = json!(["None"]);
            }
            let family = if self.cidr.is_ipv4() { "IPv4" } else { "IPv6" };
            if svc["spec"].get("ipFamilies").is_none_or(Value::is_null) {
                svc["spec"]["ipFamilies"] = json!([family]);
            }
            if svc["spec"].get("ipFamilyPolicy").is_none_or(Value::is_null) {
                svc["spec"]["ipFamilyPolicy"] = json!("SingleStack");
            }
        }
        if needs_node_ports(svc) {
            let wanted = Self::wanted_ports(svc, None);
            let got = match self.allocate_ports(svc, &wanted, dry_run).await {
                Ok(g) => g,
                Err(e) => {
                    self.release_ips(&reserved.ips).await;
                    return Err(e);
                }
            };
            for (i, p) in got {
                svc["spec"]["ports"][i]["nodePort"] = json!(p);
                if !dry_run {
                    reserved.node_ports.push(p);
                }
            }
        }
        Ok(reserved)
    }

    async fn update_inner(&self, new: &mut Value, old: &Value, dry_run: bool) -> Result<(Reservation, Reservation), ApiError> {
        let mut reserved = Reservation::default();
        let mut release = Reservation::default();
        let held = self.held(old);
        // ClusterIPs are immutable: carry them over when the update leaves them out.
        if needs_cluster_ip(new) && needs_cluster_ip(old) {
            for f in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
                if new["spec"].get(f).is_none_or(Value::is_null) && let Some(v) = old["spec"].get(f) {
                    new["spec"][f] = v.clone();
                }
            }
        } else if needs_cluster_ip(new) {
            reserved = self.create_inner(new, dry_run).await?;
            if needs_node_ports(new) {
                return Ok((reserved, release));
            }
        } else {
            release.ips = held.ips.clone();
        }
        if needs_node_ports(new) {
            let wanted = Self::wanted_ports(new, needs_node_ports(old).then_some(old));
            let new_ones: Vec<(usize, u16)> = wanted.iter().copied().filter(|(_, p)| *p == 0 || !held.node_ports.contains(p)).collect();
            for (i, p) in &wanted {
                if *p != 0 && held.node_ports.contains(p) {
                    new["spec"]["ports"][*i]["nodePort"] = json!(p);
                }
            }
            let got = self.allocate_ports(new, &new_ones, dry_run).await?;
            for (i, p) in got {
                new["spec"]["ports"][i]["nodePort"] = json!(p);
                if !dry_run {
                    reserved.node_ports.push(p);
                }
            }
            let still: Vec<u16> = new["spec"]["ports"].as_array().map(|a| a.iter().filter_map(|p| p["nodePort"].as_u64().map(|n| n as u16)).collect()).unwrap_or_default();
            release.node_ports = held.node_ports.iter().copied().filter(|p| !still.contains(p)).collect();
        } else {
            release.node_ports = held.node_ports.clone();
            if let Some(ports) = new["spec"]["ports"].as_array_mut() {
                for p in ports {
                    if let Some(m) = p.as_object_mut() {
                        m.remove("nodePort");
                    }
                }
            }
        }
        Ok((reserved, release))
    }

    fn held(&self, svc: &Value) -> Reservation {
        let mut r = Reservation::default();
        if let Some(ips) = svc["spec"]["clusterIPs"].as_array() {
            r.ips = ips.iter().filter_map(|v| v.as_str()?.parse().ok()).filter(|ip| self.cidr.contains(ip)).collect();
        }
        if needs_node_ports(svc)
            && let Some(ports) = svc["spec"]["ports"].as_array()
        {
            r.node_ports = ports.iter().filter_map(|p| p["nodePort"].as_u64().map(|n| n as u16)).collect();
        }
        r
    }
}

impl StoreHooks for ServiceAllocator {
    fn before_create<'a>(&'a self, obj: &'a mut Value, dry_run: bool) -> BoxFuture<'a, Result<Reservation, ApiError>> {
        self.create_inner(obj, dry_run).boxed()
    }

    fn before_update<'a>(&'a self, new: &'a mut Value, old: &'a Value, dry_run: bool) -> BoxFuture<'a, Result<(Reservation, Reservation), ApiError>> {
        self.update_inner(new, old, dry_run).boxed()
    }

    fn release(&self, r: Reservation) -> BoxFuture<'_, ()> {
        async move {
            if r.is_empty() {
                return;
            }
            self.release_ips(&r.ips).await;
            if !r.node_ports.is_empty() {
                self.release_ports(&r.node_ports).await;
            }
        }
        .boxed()
    }

    fn held_by(&self, obj: &Value) -> Reservation {
        self.held(obj)
    }
}
