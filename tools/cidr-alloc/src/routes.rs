//! The host's own routes, read from /proc/net/route and /proc/net/ipv6_route (the main table as
//! the kernel lists it) for `--avoid-host-routes`: a cluster range that overlaps a network the
//! host already reaches would make those addresses unreachable from it, or the cluster's.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use crate::error::Error;

/// A route the host has: its destination and the interface it leaves by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRoute {
    pub dest: IpNet,
    pub dev: String,
}

const RTF_UP: u32 = 0x1;

/// Reads both tables of the calling process's network namespace.
pub fn read() -> Result<Vec<HostRoute>, Error> {
    let v4 = std::fs::read_to_string("/proc/net/route").map_err(|source| Error::Routes {
        path: "/proc/net/route",
        source,
    })?;
    let mut routes = parse_v4(&v4);
    // A kernel without IPv6 has no ipv6_route: it then has no IPv6 routes to avoid.
    match std::fs::read_to_string("/proc/net/ipv6_route") {
        Ok(v6) => routes.extend(parse_v6(&v6)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(Error::Routes {
                path: "/proc/net/ipv6_route",
                source,
            })
        }
    }
    Ok(routes)
}

/// `Iface Destination Gateway Flags RefCnt Use Metric Mask …`, addresses as hex in the kernel's
/// byte order. Default routes are skipped: every range "overlaps" them.
pub fn parse_v4(text: &str) -> Vec<HostRoute> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let hex = |s: &str| u32::from_str_radix(s, 16).ok();
            let (dev, dest, flags, mask) = (
                f.first()?,
                hex(f.get(1)?)?,
                hex(f.get(3)?)?,
                hex(f.get(7)?)?,
            );
            let prefix = mask.count_ones() as u8;
            if flags & RTF_UP == 0 || prefix == 0 {
                return None;
            }
            let dest = Ipv4Addr::from(dest.to_ne_bytes());
            Some(HostRoute {
                dest: IpNet::new(IpAddr::V4(dest), prefix).ok()?.trunc(),
                dev: dev.to_string(),
            })
        })
        .collect()
}

/// `dest plen src plen nexthop metric refcnt use flags dev`, hex. Default, loopback-device
/// (local addresses), link-local and multicast routes are skipped: they are not networks.
pub fn parse_v6(text: &str) -> Vec<HostRoute> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 {
                return None;
            }
            let dest = Ipv6Addr::from(u128::from_str_radix(f[0], 16).ok()?);
            let prefix = u8::from_str_radix(f[1], 16).ok()?;
            let flags = u32::from_str_radix(f[8], 16).ok()?;
            let dev = f[9];
            let link_local = dest.segments()[0] & 0xffc0 == 0xfe80;
            let multicast = dest.segments()[0] & 0xff00 == 0xff00;
            if flags & RTF_UP == 0 || prefix == 0 || dev == "lo" || link_local || multicast {
                return None;
            }
            Some(HostRoute {
                dest: IpNet::new(IpAddr::V6(dest), prefix).ok()?.trunc(),
                dev: dev.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_net_route() {
        let text =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                    eth0\t00000000\t0100A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n\
                    eth0\t0000A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n";
        let routes = parse_v4(text);
        if cfg!(target_endian = "little") {
            assert_eq!(routes.len(), 1);
            assert_eq!(routes[0].dest.to_string(), "192.168.0.0/24");
            assert_eq!(routes[0].dev, "eth0");
        }
    }

    #[test]
    fn parses_proc_net_ipv6_route() {
        let text = "fd00001002400000000000000000000040 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     br0\n\
                    fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n\
                    fd000010024000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000002 00000000 80200001       lo\n";
        let routes = parse_v6(text);
        assert_eq!(routes.len(), 0, "{routes:?}");
        let text = "fd000010024000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     br0\n";
        let routes = parse_v6(text);
        assert_eq!(routes[0].dest.to_string(), "fd00:10:240::/64");
    }
}
