//! Validation of names, addresses and ranges, checked on input by every tool because names become
//! file paths, certificate subjects and libvirt object names.

use std::net::IpAddr;

use ipnet::IpNet;

/// A DNS-1123 label: 1–63 of `a-z`, `0-9`, `-`, starting and ending with a letter or digit.
pub fn node_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("node name is empty".into());
    }
    if name.len() > 63 {
        return Err(format!("node name {name:?} is longer than 63 characters"));
    }
    let valid_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    if let Some(bad) = name.chars().find(|&c| !valid_char(c)) {
        return Err(format!(
            "node name {name:?} has {bad:?}: use lower-case letters, digits and '-' (a DNS-1123 label)"
        ));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err(format!(
            "node name {name:?} must start and end with a letter or digit"
        ));
    }
    Ok(())
}

/// A DNS name made of DNS-1123 labels joined by dots (a domain or an FQDN).
pub fn dns_name(name: &str) -> Result<(), String> {
    if name.len() > 253 {
        return Err(format!("DNS name {name:?} is longer than 253 characters"));
    }
    for label in name.split('.') {
        node_name(label).map_err(|_| format!("{name:?} is not a valid DNS name"))?;
    }
    Ok(())
}

/// Parses an IP address.
pub fn ip(text: &str) -> Result<IpAddr, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("{text:?} is not an IP address"))
}

/// Parses a network in CIDR form whose host bits are zero (`10.240.0.0/24`, not `10.240.0.5/24`).
pub fn network(text: &str) -> Result<IpNet, String> {
    let net: IpNet = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a CIDR range (like 10.240.0.0/24)"))?;
    if net.trunc() != net {
        return Err(format!(
            "{text:?} has host bits set: the range is {}",
            net.trunc()
        ));
    }
    Ok(net)
}

/// Checks a list of ranges holds at most one per family, the IPv4 one first.
pub fn one_per_family(nets: &[IpNet]) -> Result<(), String> {
    let v4 = nets.iter().filter(|n| matches!(n, IpNet::V4(_))).count();
    let v6 = nets.len() - v4;
    if v4 > 1 || v6 > 1 {
        return Err("give at most one IPv4 and one IPv6 range".into());
    }
    Ok(())
}

/// The family of an address or range, as people say it.
pub fn family(v6: bool) -> &'static str {
    if v6 {
        "IPv6"
    } else {
        "IPv4"
    }
}

/// The `n`th address of a range (0 = the network address), if it is inside it.
pub fn nth_host(net: IpNet, n: u128) -> Option<IpAddr> {
    match net {
        IpNet::V4(v4) => {
            let base = u32::from(v4.network()) as u128;
            let size = 1u128 << (32 - v4.prefix_len());
            (n < size).then(|| IpAddr::V4(((base + n) as u32).into()))
        }
        IpNet::V6(v6) => {
            let base = u128::from(v6.network());
            let bits = 128 - v6.prefix_len() as u32;
            let fits = bits == 128 || n < (1u128 << bits);
            fits.then(|| IpAddr::V6((base + n).into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names() {
        for good in ["a", "worker-1", "etcd3", &"x".repeat(63)] {
            assert!(node_name(good).is_ok(), "{good}");
        }
        for bad in ["", "-a", "a-", "Worker", "a_b", "a.b", &"x".repeat(64)] {
            assert!(node_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn networks_must_be_canonical() {
        assert!(network("10.240.0.0/24").is_ok());
        assert!(network("fd00:10:200::/56").is_ok());
        assert!(network("10.240.0.5/24")
            .unwrap_err()
            .contains("10.240.0.0/24"));
        assert!(network("10.240.0.0").is_err());
    }

    #[test]
    fn nth_host_stays_inside() {
        let net = network("10.32.0.0/24").unwrap();
        assert_eq!(nth_host(net, 1).unwrap().to_string(), "10.32.0.1");
        assert_eq!(nth_host(net, 10).unwrap().to_string(), "10.32.0.10");
        assert!(nth_host(net, 256).is_none());
        let v6 = network("fd00:10:32::/112").unwrap();
        assert_eq!(nth_host(v6, 10).unwrap().to_string(), "fd00:10:32::a");
    }
}
