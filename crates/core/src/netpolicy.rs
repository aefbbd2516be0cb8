//! Which network addresses deliveries may reach. Endpoint URLs come from customers, so by default hookrelay
//! refuses to connect to anything that is not a public unicast address (SSRF protection); an operator may allow
//! private ranges they trust (`HOOKRELAY_WHITELIST_SUBNETS`) or, for development, every address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub use ipnet::IpNet;

/// Which addresses deliveries may connect to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    allow_private: bool,
    whitelist: Vec<IpNet>,
}

impl AddressPolicy {
    /// Public addresses, plus every address when `allow_private` is set, plus the `whitelist`ed ranges.
    pub fn new(allow_private: bool, whitelist: Vec<IpNet>) -> Self {
        Self { allow_private, whitelist }
    }

    /// Whether a delivery may connect to `ip`.
    pub fn allows(&self, ip: IpAddr) -> bool {
        // An IPv4-mapped IPv6 address reaches the IPv4 host, so it is judged as that host.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.allow_private || is_public(ip) || self.whitelist.iter().any(|net| net.contains(&ip))
    }

    /// Whether every address is allowed (no check needed at all).
    pub fn allows_everything(&self) -> bool {
        self.allow_private
    }
}

/// A whitelist entry that is not a CIDR range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a CIDR range such as 10.0.0.0/8, 127.0.0.1/32 or fd00::/8")]
pub struct InvalidSubnet(String);

/// Reads a comma-separated list of CIDR ranges (a bare address stands for itself alone).
pub fn parse_subnets(text: &str) -> Result<Vec<IpNet>, InvalidSubnet> {
    text.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| InvalidSubnet(entry.to_owned()))
        })
        .collect()
}

/// Whether `ip` is a public unicast address that an outbound delivery may connect to.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let blocked = ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64.0.0/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240; // reserved
    !blocked
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let seg = ip.segments();
    let blocked = ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (seg[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (seg[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || seg[0] == 0x2002 // 6to4
        || (seg[0] == 0x64 && seg[1] == 0xff9b) // NAT64
        || (seg[0] == 0x2001 && seg[1] == 0x0db8) // documentation
        || (seg[0] == 0x2001 && seg[1] < 0x200); // Teredo, benchmarking and other IETF assignments
    !blocked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(addr: &str, expected: bool) {
        let ip: IpAddr = addr.parse().unwrap();
        assert_eq!(is_public(ip), expected, "{addr}");
    }

    #[test]
    fn address_policy() {
        check("93.184.216.34", true);
        check("8.8.8.8", true);
        check("127.0.0.1", false);
        check("10.1.2.3", false);
        check("172.16.0.1", false);
        check("192.168.1.1", false);
        check("169.254.169.254", false);
        check("100.64.0.1", false);
        check("0.0.0.0", false);
        check("255.255.255.255", false);
        check("224.0.0.1", false);
        check("2606:4700::1111", true);
        check("::1", false);
        check("::", false);
        check("fd00::1", false);
        check("fe80::1", false);
        check("::ffff:127.0.0.1", false);
        check("::ffff:8.8.8.8", true);
        check("64:ff9b::a00:1", false);
    }

    #[test]
    fn whitelisted_ranges_are_allowed_and_nothing_else_private() {
        let policy = AddressPolicy::new(false, parse_subnets("10.0.0.0/8, 127.0.0.1/32,fd00::/8").unwrap());
        let allows = |addr: &str| policy.allows(addr.parse().unwrap());
        assert!(allows("10.20.30.40"));
        assert!(allows("127.0.0.1"));
        assert!(allows("::ffff:10.1.1.1"), "mapped IPv4 is judged as IPv4");
        assert!(allows("fd00::5"));
        assert!(allows("8.8.8.8"));
        assert!(!allows("127.0.0.2"));
        assert!(!allows("192.168.1.1"));
        assert!(!allows("169.254.169.254"));
        assert!(AddressPolicy::new(true, Vec::new()).allows("169.254.169.254".parse().unwrap()));
        assert!(!AddressPolicy::default().allows("::ffff:127.0.0.1".parse().unwrap()));
        assert_eq!(parse_subnets("192.168.1.7").unwrap(), vec!["192.168.1.7/32".parse::<IpNet>().unwrap()]);
        assert!(parse_subnets("").unwrap().is_empty());
        for bad in ["10.0.0.0/33", "localhost", "10.0.0.0/8,nope"] {
            assert!(parse_subnets(bad).is_err(), "{bad}");
        }
    }
}
