//! Which network addresses deliveries may reach. Endpoint URLs come from customers, so by default hookrelay
//! refuses to connect to anything that is not a public unicast address (SSRF protection); an operator may allow
//! private ranges they trust (`HOOKRELAY_WHITELIST_SUBNETS`) or, for development, every address.
//!
//! "Public" is read from two tables: the ranges of the IANA IPv4 and IPv6 special-purpose address registries
//! (RFC 6890 and its updates) plus multicast and reserved space, all refused; and the IPv6 ranges that carry an
//! IPv4 address a packet ends up at (IPv4-mapped, -compatible, -translated, NAT64, 6to4), judged as that
//! IPv4 address. Outside those tables an IPv6 address must also be global unicast (`2000::/3`): IANA has
//! assigned nothing else.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

pub use ipnet::IpNet;
use ipnet::Ipv6Net;

/// Ranges no delivery may reach unless allowed: each with what it is, so the table reads as its own
/// documentation. Some rows lie inside others (Teredo inside `2001::/23`); they are listed because people look
/// for them by name.
const REFUSED_RANGES: &[(&str, &str)] = &[
    // IPv4 special-purpose registry, multicast and reserved space.
    ("0.0.0.0/8", "\"this network\" (RFC 791); 0.0.0.0 reaches the local host on Linux"),
    ("10.0.0.0/8", "private (RFC 1918)"),
    ("100.64.0.0/10", "shared address space, carrier-grade NAT (RFC 6598)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local, where cloud metadata services answer (RFC 3927)"),
    ("172.16.0.0/12", "private (RFC 1918)"),
    ("192.0.0.0/24", "IETF protocol assignments: DS-Lite, NAT64 discovery, PCP and TURN anycast (RFC 6890)"),
    ("192.0.2.0/24", "documentation, TEST-NET-1 (RFC 5737)"),
    ("192.31.196.0/24", "AS112 DNS sink (RFC 7535)"),
    ("192.52.193.0/24", "AMT relay anycast (RFC 7450)"),
    ("192.88.99.0/24", "6to4 relay anycast, deprecated (RFC 7526)"),
    ("192.168.0.0/16", "private (RFC 1918)"),
    ("192.175.48.0/24", "AS112 direct delegation (RFC 7534)"),
    ("198.18.0.0/15", "benchmarking (RFC 2544)"),
    ("198.51.100.0/24", "documentation, TEST-NET-2 (RFC 5737)"),
    ("203.0.113.0/24", "documentation, TEST-NET-3 (RFC 5737)"),
    ("224.0.0.0/4", "multicast (RFC 5771)"),
    ("240.0.0.0/4", "reserved (RFC 1112), the broadcast address 255.255.255.255 included"),
    // IPv6 special-purpose registry, and the special ranges of the IPv6 address space.
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    // Outside its /96 form the place of the IPv4 address depends on the operator's prefix length (RFC 6052).
    ("64:ff9b:1::/48", "NAT64 local use (RFC 8215), beyond 64:ff9b:1::/96"),
    ("100::/64", "discard-only (RFC 6666)"),
    ("100:0:0:1::/64", "dummy prefix (RFC 9780)"),
    ("2001::/23", "IETF protocol assignments (RFC 2928): Teredo, benchmarking, AMT, AS112, ORCHID, DRIP"),
    ("2001::/32", "Teredo (RFC 4380), reached only through a tunnel relay"),
    ("2001:2::/48", "benchmarking (RFC 5180)"),
    ("2001:10::/28", "ORCHID, deprecated (RFC 4843)"),
    ("2001:20::/28", "ORCHIDv2 (RFC 7343)"),
    ("2001:db8::/32", "documentation (RFC 3849)"),
    ("2620:4f:8000::/48", "AS112 direct delegation (RFC 7534)"),
    ("3fff::/20", "documentation (RFC 9637)"),
    ("5f00::/16", "segment routing (SRv6) SIDs (RFC 9602)"),
    ("fc00::/7", "unique local, the IPv6 private range (RFC 4193)"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local, deprecated (RFC 3879)"),
    ("ff00::/8", "multicast"),
];

/// Where an IPv6 address carries the IPv4 address it stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Embedded {
    /// In its last 32 bits.
    Last32,
    /// In bits 16 to 47, after `2002:` (6to4: the IPv4 address of the site's relay, which the packet goes to).
    After16,
}

/// IPv6 ranges whose addresses reach (or are tunnelled or translated to) an IPv4 address: judged as that
/// address, so `[::ffff:127.0.0.1]` is as refused as `127.0.0.1`, and `64:ff9b::808:808` as allowed as 8.8.8.8.
const EMBEDDING_RANGES: &[(&str, Embedded, &str)] = &[
    ("::/96", Embedded::Last32, "IPv4-compatible, deprecated (RFC 4291)"),
    ("::ffff:0:0/96", Embedded::Last32, "IPv4-mapped (RFC 4291)"),
    ("::ffff:0:0:0/96", Embedded::Last32, "IPv4-translated (RFC 2765)"),
    ("64:ff9b::/96", Embedded::Last32, "NAT64 well-known prefix (RFC 6052)"),
    ("64:ff9b:1::/96", Embedded::Last32, "NAT64 local-use prefix in its /96 form (RFC 8215)"),
    ("2002::/16", Embedded::After16, "6to4 (RFC 3056)"),
];

/// Global unicast, the only IPv6 space IANA hands out (the rest is reserved by the IETF).
const GLOBAL_UNICAST_V6: &str = "2000::/3";

/// The tables parsed once. They are constants checked by the tests, so parsing cannot fail at run time.
static REFUSED: LazyLock<Vec<IpNet>> =
    LazyLock::new(|| REFUSED_RANGES.iter().map(|(net, _)| net.parse().expect("a CIDR range in the table")).collect());
static EMBEDDING: LazyLock<Vec<(Ipv6Net, Embedded)>> = LazyLock::new(|| {
    EMBEDDING_RANGES.iter().map(|(net, at, _)| (net.parse().expect("a CIDR range in the table"), *at)).collect()
});
static GLOBAL_UNICAST: LazyLock<Ipv6Net> =
    LazyLock::new(|| GLOBAL_UNICAST_V6.parse().expect("a CIDR range in the table"));

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

    /// Whether a delivery may connect to `ip`. A whitelisted range allows its addresses and the IPv6 addresses
    /// that embed them (`::ffff:10.1.1.1` when `10.0.0.0/8` is whitelisted), as it is their IPv4 host that is
    /// reached.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let embedded = match ip {
            IpAddr::V6(v6) => embedded_v4(v6).map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        let whitelisted = |ip: IpAddr| self.whitelist.iter().any(|net| net.contains(&ip));
        self.allow_private || is_public(ip) || whitelisted(ip) || embedded.is_some_and(whitelisted)
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
    let ip = IpAddr::V4(ip);
    !REFUSED.iter().any(|net| net.contains(&ip))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_v4(ip) {
        return is_public_v4(v4);
    }
    GLOBAL_UNICAST.contains(&ip) && !REFUSED.iter().any(|net| net.contains(&IpAddr::V6(ip)))
}

/// The IPv4 address an IPv6 address stands for, if it is of a kind that embeds one.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = ip.to_bits();
    EMBEDDING.iter().find(|(net, _)| net.contains(&ip)).map(|(_, at)| match at {
        Embedded::Last32 => Ipv4Addr::from_bits(bits as u32),
        Embedded::After16 => Ipv4Addr::from_bits((bits >> 80) as u32),
    })
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

    /// The first and last address of every refused range are refused, and the policy refuses them too.
    #[test]
    fn every_special_purpose_range_is_refused() {
        for (range, what) in REFUSED_RANGES {
            let net: IpNet = range.parse().unwrap_or_else(|_| panic!("{range} is not a CIDR range"));
            for ip in [net.network(), net.broadcast()] {
                assert!(!is_public(ip), "{ip} in {range} ({what}) is not refused");
                assert!(!AddressPolicy::default().allows(ip), "{ip} in {range} ({what})");
            }
        }
    }

    /// Addresses just outside the refused ranges stay public: the prefix lengths are not too wide.
    #[test]
    fn neighbours_of_refused_ranges_are_public() {
        for addr in [
            "1.0.0.0",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "191.255.255.255",
            "192.0.1.0",
            "192.0.3.0",
            "192.31.195.255",
            "192.31.197.0",
            "192.52.192.255",
            "192.52.194.0",
            "192.88.98.255",
            "192.88.100.0",
            "192.167.255.255",
            "192.169.0.0",
            "192.175.47.255",
            "192.175.49.0",
            "198.17.255.255",
            "198.20.0.0",
            "198.51.99.255",
            "198.51.101.0",
            "203.0.112.255",
            "203.0.114.0",
            "223.255.255.255",
            "2001:200::",
            "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff",
            "2001:db9::",
            "2003::1",
            "2620:4f:7fff:ffff:ffff:ffff:ffff:ffff",
            "2620:4f:8001::",
            "3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "3fff:1000::",
        ] {
            check(addr, true);
        }
        // Outside global unicast (2000::/3) nothing is assigned, so nothing there is public.
        for addr in ["1fff:ffff::1", "4000::1", "5f01::1", "e000::1", "fbff::1"] {
            check(addr, false);
        }
    }

    /// Every IPv6 form that embeds an IPv4 address is judged as that address: refused with a private, loopback
    /// or metadata address inside, allowed with a public one (here 8.8.8.8 and 93.184.216.34).
    #[test]
    fn ipv6_addresses_embedding_ipv4_are_judged_as_the_ipv4_address() {
        let embed = |range: &str, at: Embedded, v4: Ipv4Addr| -> IpAddr {
            let net: Ipv6Net = range.parse().expect("a range of the table");
            let bits = u128::from(v4.to_bits());
            let bits = match at {
                Embedded::Last32 => bits,
                Embedded::After16 => bits << 80 | 1,
            };
            IpAddr::V6(Ipv6Addr::from_bits(net.network().to_bits() | bits))
        };
        for (range, at, what) in EMBEDDING_RANGES {
            for public in ["8.8.8.8", "93.184.216.34"] {
                let ip = embed(range, *at, public.parse().expect("IPv4"));
                assert!(is_public(ip), "{ip} ({what}) embeds public {public}");
            }
            for refused in ["127.0.0.1", "10.1.2.3", "169.254.169.254", "0.0.0.0", "192.88.99.1", "100.64.0.1"] {
                let ip = embed(range, *at, refused.parse().expect("IPv4"));
                assert!(!is_public(ip), "{ip} ({what}) embeds refused {refused}");
                let whitelisted = AddressPolicy::new(false, vec![format!("{refused}/32").parse().expect("range")]);
                assert!(whitelisted.allows(ip), "{ip} ({what}): its IPv4 address {refused} is whitelisted");
            }
        }
        // The spellings of the finding: IPv4-compatible and IPv4-translated loopback.
        check("::127.0.0.1", false);
        check("::ffff:0:127.0.0.1", false);
        check("::ffff:0:8.8.8.8", true);
        check("64:ff9b::808:808", true);
        check("64:ff9b::a9fe:a9fe", false);
        check("2002:808:808::1", true);
        check("2002:7f00:1::1", false);
        check("2002:c0a8:101::1", false);
        // The local-use NAT64 prefix outside its /96 form: where the IPv4 address sits is unknown, so refused
        // (here 8.8.8.8 in the /64 layout of RFC 6052, which the /96 reading would take for 8.0.0.0).
        check("64:ff9b:1:0:8:808:800:0", false);
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
