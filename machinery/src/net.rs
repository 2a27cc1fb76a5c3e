//! IP networks (CIDRs) for service ranges and pod subnets.

use std::net::IpAddr;

/// An IPv4 or IPv6 network in CIDR form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `10.96.0.0/12`; the address is masked to its network.
    pub fn parse(s: &str) -> Option<Cidr> {
        let (addr, prefix) = s.trim().split_once('/')?;
        let addr: IpAddr = addr.parse().ok()?;
        let prefix: u8 = prefix.parse().ok()?;
        let bits = Self::bits_of(&addr);
        if prefix > bits {
            return None;
        }
        let network = Self::from_u128(&addr, Self::to_u128(&addr) & Self::mask(bits, prefix));
        Some(Cidr { network, prefix })
    }

    fn bits_of(addr: &IpAddr) -> u8 {
        if addr.is_ipv4() { 32 } else { 128 }
    }

    fn mask(bits: u8, prefix: u8) -> u128 {
        let all: u128 = if bits == 32 { u32::MAX as u128 } else { u128::MAX };
        if prefix == 0 { 0 } else { all & !(all >> prefix) }
    }

    fn to_u128(addr: &IpAddr) -> u128 {
        match addr {
            IpAddr::V4(v4) => u32::from(*v4) as u128,
            IpAddr::V6(v6) => u128::from(*v6),
        }
    }

    fn from_u128(like: &IpAddr, v: u128) -> IpAddr {
        match like {
            IpAddr::V4(_) => IpAddr::from(std::net::Ipv4Addr::from(v as u32)),
            IpAddr::V6(_) => IpAddr::from(std::net::Ipv6Addr::from(v)),
        }
    }

    pub fn network(&self) -> IpAddr {
        self.network
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn is_ipv4(&self) -> bool {
        self.network.is_ipv4()
    }

    /// Number of addresses in the network (saturating for huge IPv6 ranges).
    pub fn size(&self) -> u128 {
        let host_bits = Self::bits_of(&self.network) - self.prefix;
        if host_bits >= 127 { u128::MAX } else { 1u128 << host_bits }
    }

    pub fn contains(&self, ip: &IpAddr) -> bool {
        ip.is_ipv4() == self.network.is_ipv4()
            && Self::to_u128(ip) & Self::mask(Self::bits_of(ip), self.prefix) == Self::to_u128(&self.network)
    }

    /// The address at `offset` from the network address.
    pub fn nth(&self, offset: u128) -> Option<IpAddr> {
        (offset < self.size()).then(|| Self::from_u128(&self.network, Self::to_u128(&self.network) + offset))
    }

    /// Offset of `ip` from the network address.
    pub fn offset_of(&self, ip: &IpAddr) -> Option<u128> {
        self.contains(ip).then(|| Self::to_u128(ip) - Self::to_u128(&self.network))
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_range() {
        let c = Cidr::parse("10.96.0.0/12").expect("valid");
        assert_eq!(c.size(), 1 << 20);
        assert_eq!(c.nth(1), Some("10.96.0.1".parse().expect("ip")));
        assert!(c.contains(&"10.111.255.254".parse().expect("ip")));
        assert!(!c.contains(&"10.112.0.1".parse().expect("ip")));
        assert_eq!(Cidr::parse("10.96.1.0/12"), Some(c));
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        let v6 = Cidr::parse("fd00::/108").expect("valid");
        assert_eq!(v6.size(), 1 << 20);
    }
}
