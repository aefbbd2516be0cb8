//! Which network addresses deliveries may reach. Endpoint URLs come from customers, so by default hookrelay
//! refuses to connect to anything that is not a public unicast address (SSRF protection).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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
}
