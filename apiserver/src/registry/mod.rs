//! The registry: one generic [`Store`] per served resource, each with its strategy.
//!
//! Resources served at several versions share one watch cache per etcd prefix.

pub mod convert;
pub mod decode;
pub mod eviction;
pub mod managed_fields;
pub mod params;
pub mod service_alloc;
pub mod store;
pub mod strategy;
pub mod subresources;

use std::collections::HashMap;
use std::sync::Arc;

use ironkube_machinery::resources::{self, ResourceInfo};

use crate::storage::{Cacher, Etcd3};

pub use params::{DeleteOptions, ListParams, WriteOptions};
pub use store::Store;

/// Every store, by (group, version, plural).
pub struct Registry {
    stores: HashMap<(&'static str, &'static str, &'static str), Arc<Store>>,
    caches: HashMap<String, Arc<Cacher>>,
}

impl Registry {
    pub fn new(etcd: Etcd3, etcd_prefix: &str, services: Option<Arc<service_alloc::ServiceAllocator>>) -> Self {
        let prefix = etcd_prefix.trim_end_matches('/');
        let mut caches: HashMap<String, Arc<Cacher>> = HashMap::new();
        let mut stores = HashMap::new();
        for info in resources::all() {
            if info.etcd_resource.is_empty() {
                continue;
            }
            let key_prefix = format!("{prefix}/{}/", info.etcd_resource);
            let cache = caches
                .entry(key_prefix.clone())
                .or_insert_with(|| Cacher::new(etcd.clone(), key_prefix.clone()))
                .clone();
            let mut store = Store::new(info, strategy::for_resource(info), etcd.clone(), cache, key_prefix);
            if let (true, "services", Some(alloc)) = (info.group.is_empty(), info.plural, &services) {
                store = store.with_hooks(alloc.clone());
            }
            stores.insert((info.group, info.version, info.plural), Arc::new(store));
        }
        Registry { stores, caches }
    }

    pub fn store(&self, group: &str, version: &str, plural: &str) -> Option<&Arc<Store>> {
        let info = resources::lookup(group, version, plural)?;
        self.stores.get(&(info.group, info.version, info.plural))
    }

    pub fn store_for(&self, info: &ResourceInfo) -> Option<&Arc<Store>> {
        self.stores.get(&(info.group, info.version, info.plural))
    }

    /// Starts every watch cache, like upstream's cacher at start-up, so that a client's
    /// watch from any later resourceVersion is served from memory.
    pub async fn start_caches(&self) {
        for cache in self.caches.values() {
            if let Err(e) = cache.ensure_started().await {
                tracing::warn!(prefix = cache.prefix(), error = %e, "starting a watch cache");
            }
        }
    }

    /// Watch caches that have started (each holds exactly one etcd watch).
    pub fn started_caches(&self) -> usize {
        self.caches.values().filter(|c| c.is_started()).count()
    }
}
