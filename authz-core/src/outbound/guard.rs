//! The SSRF guard of the metadata fetch: which addresses a client-supplied URL may make this
//! server connect to. Everything that is not a globally routable unicast address is refused:
//! loopback, private (RFC 1918, RFC 4193), link-local, CGNAT (RFC 6598), multicast,
//! unspecified, broadcast and reserved, documentation and benchmarking ranges (RFC 5737,
//! RFC 3849, RFC 2544), and IPv6 forms that embed an IPv4 address (IPv4-mapped, IPv4-compatible,
//! NAT64, 6to4), judged by the address they embed. Teredo is refused outright: it tunnels to
//! an address the server cannot judge.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why `ip` may not be fetched from, or `None` when it may.
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, _, _) => "an unspecified (0.0.0.0/8) address",
        (127, _, _) => "a loopback address",
        (10, _, _) => "a private (RFC 1918) address",
        (172, 16..=31, _) => "a private (RFC 1918) address",
        (192, 168, _) => "a private (RFC 1918) address",
        (169, 254, _) => "a link-local address",
        (100, 64..=127, _) => "a shared (CGNAT, RFC 6598) address",
        (192, 0, 0) => "an IETF protocol assignment (192.0.0.0/24)",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "a documentation (RFC 5737) address",
        (198, 18..=19, _) => "a benchmarking (RFC 2544) address",
        (224..=239, _, _) => "a multicast address",
        (240..=255, _, _) => "a reserved or broadcast address",
        _ => return None,
    })
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if ip.is_unspecified() {
        return Some("the unspecified address");
    }
    if ip.is_loopback() {
        return Some("a loopback address");
    }
    let s = ip.segments();
    // Forms that embed an IPv4 address: judged by that address.
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match s {
        // ::ffff:a.b.c.d (IPv4-mapped), ::ffff:0:a.b.c.d (IPv4-translated, RFC 2765 SIIT)
        // and ::a.b.c.d (IPv4-compatible, deprecated).
        [0, 0, 0, 0, 0, 0xffff, hi, lo]
        | [0, 0, 0, 0, 0xffff, 0, hi, lo]
        | [0, 0, 0, 0, 0, 0, hi, lo] => {
            return forbidden_v4(embedded(hi, lo));
        }
        // 64:ff9b::a.b.c.d (NAT64, RFC 6052).
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => return forbidden_v4(embedded(hi, lo)),
        // 64:ff9b:1::/48 (local-use NAT64, RFC 8215): never global, and where the IPv4 address
        // sits depends on the operator's prefix length, so the whole range is refused.
        [0x64, 0xff9b, 1, ..] => return Some("a local-use NAT64 (RFC 8215) address"),
        // 2002:aabb:ccdd::/48 (6to4, RFC 3056).
        [0x2002, hi, lo, ..] => return forbidden_v4(embedded(hi, lo)),
        _ => {}
    }
    // Only global unicast is fetched (2000::/3, RFC 4291 §2.4): everything else is reserved,
    // local or multicast (an allow-list, so a range assigned later is refused, not passed).
    if s[0] & 0xe000 != 0x2000 {
        return Some(match s[0] {
            0xfc00..=0xfdff => "a unique-local (RFC 4193) address",
            0xfe80..=0xfebf => "a link-local address",
            0xfec0..=0xfeff => "a site-local address",
            0xff00..=0xffff => "a multicast address",
            _ => "an address outside global unicast (2000::/3)",
        });
    }
    // Within it, the special-purpose blocks that are not globally reachable (IANA registry).
    Some(match (s[0], s[1]) {
        (0x2001, 0) => "a Teredo address",
        (0x2001, 0xdb8) => "a documentation (RFC 3849) address",
        (0x3fff, 0..=0x0fff) => "a documentation (RFC 9637) address",
        (0x2001, 2) if s[2] == 0 => "a benchmarking (RFC 5180) address",
        (0x2001, 0x10..=0x2f) => "an ORCHID (RFC 7343) address",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_global_unicast_addresses_pass() {
        for bad in [
            "0.0.0.0",
            "127.0.0.1",
            "127.255.0.9",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.254",
            "192.0.0.8",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "198.18.0.1",
            "224.0.0.1",
            "239.1.1.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            // Review 5 (second round) F2: IPv4-translated (SIIT) and local-use NAT64.
            "::ffff:0:7f00:1",
            "::ffff:0:a00:1",
            "64:ff9b:1::7f00:1",
            "64:ff9b:1:7f00:1::",
            "2002:7f00:1::1",
            // Review 5 (third round): only global unicast (2000::/3) passes, and within it
            // not the special-purpose blocks.
            "::2:7f00:1",
            "::1:0:7f00:1",
            "::ffff:1:7f00:1",
            "64:ff9b::1:7f00:1",
            "64:ff9b:0:7f00:1::",
            "4000::1",
            "5f00::1",
            "3fff::1",
            "3fff:fff::1",
            "2001:2::1",
            "2001:10::1",
            "2001:2f::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001::1",
            "2001:db8::1",
            "100::1",
        ] {
            let ip: IpAddr = bad.parse().unwrap();
            assert!(forbidden(ip).is_some(), "{bad} passed");
        }
        for good in [
            "1.1.1.1",
            "8.8.8.8",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "192.0.1.1",
            "198.17.255.255",
            "223.255.255.255",
            "::ffff:8.8.8.8",
            "::ffff:0:808:808",
            "64:ff9b::808:808",
            "2002:0808:0808::1",
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
        ] {
            let ip: IpAddr = good.parse().unwrap();
            assert_eq!(forbidden(ip), None, "{good} refused");
        }
    }
}
