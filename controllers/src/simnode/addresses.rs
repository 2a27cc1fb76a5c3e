//! Addresses of simulated nodes and their pods. They are only data: nothing listens on them
//! and nothing should send traffic there.
//!
//! - node `i` has InternalIP `10.244.<i / 254>.<i % 254 + 1>`;
//! - node `i` owns the pod CIDR `10.<128 + i / 256>.<i % 256>.0/24` and gives its pods
//!   `.2` to `.254` of it (`.1` is the bridge's, as with most CNI plugins).

use std::collections::HashMap;
use std::net::Ipv4Addr;

/// How many nodes the address plan has room for.
pub const MAX_NODES: usize = 64 * 256;

/// The InternalIP of node `index`.
pub fn node_ip(index: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 244, (index / 254) as u8, (index % 254 + 1) as u8)
}

/// The base address of node `index`'s pod CIDR (a /24).
pub fn pod_cidr_base(index: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, (128 + index / 256) as u8, (index % 256) as u8, 0)
}

/// Node `index`'s pod CIDR as a string.
pub fn pod_cidr(index: usize) -> String {
    format!("{}/24", pod_cidr_base(index))
}

const FIRST_HOST: u8 = 2;
const LAST_HOST: u8 = 254;

/// Hands out the pod IPs of one node's /24 to pod UIDs.
#[derive(Debug)]
pub struct PodIps {
    base: [u8; 3],
    by_uid: HashMap<String, u8>,
    used: [bool; 256],
    next: u8,
}

impl PodIps {
    pub fn new(base: Ipv4Addr) -> Self {
        let [a, b, c, _] = base.octets();
        PodIps { base: [a, b, c], by_uid: HashMap::new(), used: [false; 256], next: FIRST_HOST }
    }

    fn addr(&self, host: u8) -> Ipv4Addr {
        Ipv4Addr::new(self.base[0], self.base[1], self.base[2], host)
    }

    /// Whether `ip` is in this node's range.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let [a, b, c, d] = ip.octets();
        [a, b, c] == self.base && (FIRST_HOST..=LAST_HOST).contains(&d)
    }

    /// Records an address a pod already has (after a restart of the simulator).
    pub fn claim(&mut self, uid: &str, ip: Ipv4Addr) {
        if self.contains(ip) && !self.by_uid.contains_key(uid) {
            let host = ip.octets()[3];
            self.used[host as usize] = true;
            self.by_uid.insert(uid.to_string(), host);
        }
    }

    /// The pod's address, allocating one (round robin, so addresses are not reused at once).
    /// `None` when all 253 are taken.
    pub fn allocate(&mut self, uid: &str) -> Option<Ipv4Addr> {
        if let Some(host) = self.by_uid.get(uid) {
            return Some(self.addr(*host));
        }
        for _ in FIRST_HOST..=LAST_HOST {
            let host = self.next;
            self.next = if host >= LAST_HOST { FIRST_HOST } else { host + 1 };
            if !self.used[host as usize] {
                self.used[host as usize] = true;
                self.by_uid.insert(uid.to_string(), host);
                return Some(self.addr(host));
            }
        }
        None
    }

    /// Frees the address of a pod that is gone.
    pub fn release(&mut self, uid: &str) {
        if let Some(host) = self.by_uid.remove(uid) {
            self.used[host as usize] = false;
        }
    }

    /// Frees the addresses of every pod not in `live`.
    pub fn retain(&mut self, live: &dyn Fn(&str) -> bool) {
        let gone: Vec<String> = self.by_uid.keys().filter(|uid| !live(uid)).cloned().collect();
        for uid in gone {
            self.release(&uid);
        }
    }

    pub fn len(&self) -> usize {
        self.by_uid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_uid.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_addresses_do_not_collide() {
        assert_eq!(node_ip(0), Ipv4Addr::new(10, 244, 0, 1));
        assert_eq!(node_ip(253), Ipv4Addr::new(10, 244, 0, 254));
        assert_eq!(node_ip(254), Ipv4Addr::new(10, 244, 1, 1));
        assert_eq!(pod_cidr(0), "10.128.0.0/24");
        assert_eq!(pod_cidr(257), "10.129.1.0/24");
        assert_eq!(pod_cidr(MAX_NODES - 1), "10.191.255.0/24");
        let ips: std::collections::HashSet<_> = (0..MAX_NODES).map(node_ip).collect();
        assert_eq!(ips.len(), MAX_NODES);
    }

    #[test]
    fn pod_ips_are_unique_reused_late_and_released() {
        let mut ips = PodIps::new(pod_cidr_base(3));
        let a = ips.allocate("a").expect("room");
        assert_eq!(a, Ipv4Addr::new(10, 128, 3, 2));
        assert_eq!(ips.allocate("a"), Some(a));
        let b = ips.allocate("b").expect("room");
        assert_ne!(a, b);
        ips.release("a");
        assert_eq!(ips.allocate("c"), Some(Ipv4Addr::new(10, 128, 3, 4)), "a's address is not reused at once");
        for i in 0..251 {
            ips.allocate(&format!("p{i}"));
        }
        assert_eq!(ips.len(), 253);
        assert_eq!(ips.allocate("full"), None);
        ips.retain(&|uid| uid == "b");
        assert_eq!(ips.len(), 1);
        ips.claim("old", Ipv4Addr::new(10, 128, 3, 9));
        assert!(ips.allocate("new").is_some_and(|ip| ip != Ipv4Addr::new(10, 128, 3, 9)));
        ips.claim("elsewhere", Ipv4Addr::new(10, 1, 1, 1));
        assert_eq!(ips.len(), 3);
    }
}
