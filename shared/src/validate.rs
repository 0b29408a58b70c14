//! Validation of names, addresses and ranges, checked on input by every tool because names become
//! file paths, certificate subjects and libvirt object names.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::error::quote;

/// A DNS-1123 label: 1–63 of `a-z`, `0-9`, `-`, starting and ending with a letter or digit.
pub fn node_name(name: &str) -> Result<(), String> {
    dns_label("node name", name)
}

/// The cluster's name, a DNS-1123 label: it names certificates, libvirt objects and files.
pub fn cluster_name(name: &str) -> Result<(), String> {
    dns_label("cluster name", name)
}

/// A hypervisor's name in a document's `hypervisors` (issue 19), a DNS-1123 label: it names the
/// hypervisor in the inventory and in per-hypervisor libvirt objects.
pub fn hypervisor_name(name: &str) -> Result<(), String> {
    dns_label("hypervisor name", name)
}

fn dns_label(kind: &str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("{kind} is empty"));
    }
    if name.len() > 63 {
        return Err(format!(
            "{kind} {} is longer than 63 characters",
            quote(name)
        ));
    }
    let valid_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    if let Some(bad) = name.chars().find(|&c| !valid_char(c)) {
        return Err(format!(
            "{kind} {} has {bad:?}: use lower-case letters, digits and '-' (a DNS-1123 label)",
            quote(name)
        ));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err(format!(
            "{kind} {} must start and end with a letter or digit",
            quote(name)
        ));
    }
    Ok(())
}

/// A DNS name made of DNS-1123 labels joined by dots (a domain or an FQDN).
pub fn dns_name(name: &str) -> Result<(), String> {
    if name.len() > 253 {
        return Err(format!(
            "DNS name {} is longer than 253 characters",
            quote(name)
        ));
    }
    for label in name.split('.') {
        node_name(label).map_err(|_| {
            format!(
                "{} is not a valid DNS name (labels of lower-case letters, digits and '-', joined by '.')",
                quote(name)
            )
        })?;
    }
    Ok(())
}

/// True for a character that ends a line or hides text where people and parsers read it: every
/// Unicode control (C0 with NUL, CR and LF; DEL; C1 with NEL), the line and paragraph
/// separators U+2028/U+2029, and the bidirectional embedding, override and isolate controls.
pub(crate) fn is_hostile_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Checks a string holds no character of [`is_hostile_char`]: it may then go into a unit, a
/// config, a hosts file, XML or a URI as one line.
pub fn plain_text(text: &str) -> Result<(), String> {
    match text.char_indices().find(|(_, c)| is_hostile_char(*c)) {
        None => Ok(()),
        Some((at, c)) => Err(format!(
            "{} holds the control character U+{:04X} at byte {at}: no string in the document may",
            quote(text),
            c as u32
        )),
    }
}

/// The longest path accepted (Linux's PATH_MAX).
const PATH_MAX: usize = 4096;

/// Checks a normalized absolute path of a file: starts with `/`, no empty, `.` or `..`
/// component, no trailing `/`, no backslash, no control character.
pub fn absolute_path(path: &str) -> Result<(), String> {
    plain_text(path)?;
    let rest = path
        .strip_prefix('/')
        .ok_or_else(|| format!("{} is not an absolute path", quote(path)))?;
    path_components(path, rest)
}

/// Checks a relative path that stays inside the directory it is relative to: no leading `/`, no
/// empty, `.` or `..` component, no backslash, no control character.
pub fn relative_path(path: &str) -> Result<(), String> {
    plain_text(path)?;
    if path.starts_with('/') {
        return Err(format!("{} is not a relative path", quote(path)));
    }
    path_components(path, path)
}

/// Checks a relative directory inside the one it is relative to: [`relative_path`], or `.` for
/// that directory itself.
pub fn relative_dir(path: &str) -> Result<(), String> {
    match path {
        "." => Ok(()),
        path => relative_path(path),
    }
}

fn path_components(path: &str, rest: &str) -> Result<(), String> {
    if path.len() > PATH_MAX {
        return Err(format!("{} is longer than {PATH_MAX} bytes", quote(path)));
    }
    let normal = |c: &str| !c.is_empty() && c != "." && c != ".." && !c.contains('\\');
    if !rest.split('/').all(normal) {
        return Err(format!(
            "{} is not a normalized path (an empty, '.' or '..' component, or a backslash)",
            quote(path)
        ));
    }
    Ok(())
}

/// Checks a libvirt object name (network, pool): 1–64 of ASCII letters, digits, `_`, `.` and
/// `-`, not starting with `.` or `-`. libvirt itself takes almost anything, but these names go
/// into XML, file names under the pool and `virsh` command lines.
pub fn libvirt_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['.', '-'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{} is not a libvirt name: 1 to 64 of letters, digits, '_', '.' and '-'",
            quote(name)
        ))
    }
}

/// Checks a MAC address written as six pairs of hex digits joined by `:`.
pub fn mac(text: &str) -> Result<(), String> {
    let parts: Vec<&str> = text.split(':').collect();
    let ok = parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{} is not a MAC address like 52:54:00:8e:1c:02",
            quote(text)
        ))
    }
}

/// The unit types systemd knows (systemd.unit(5), "DESCRIPTION").
const UNIT_SUFFIXES: [&str; 11] = [
    "service",
    "socket",
    "device",
    "mount",
    "automount",
    "swap",
    "target",
    "path",
    "timer",
    "slice",
    "scope",
];

/// Checks a systemd unit name: at most 255 of ASCII letters, digits, `:`, `-`, `_`, `.`, `\\` and
/// `@` (systemd.unit(5): "Valid unit names consist of a "name prefix" and a dot and a suffix"),
/// not starting with `-` (it would read as an option to systemctl), ending in a unit type.
pub fn unit_name(name: &str) -> Result<(), String> {
    let chars_ok = !name.is_empty()
        && name.len() <= 255
        && !name.starts_with(['-', '.'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":-_.\\@".contains(&b));
    let suffix_ok = name
        .rsplit_once('.')
        .is_some_and(|(prefix, suffix)| !prefix.is_empty() && UNIT_SUFFIXES.contains(&suffix));
    if chars_ok && suffix_ok {
        Ok(())
    } else {
        Err(format!(
            "{} is not a systemd unit name like etcd.service",
            quote(name)
        ))
    }
}

/// Parses a file mode in octal, as chmod takes it ("0644", "600"), at most 0o7777.
pub fn file_mode(mode: &str) -> Result<u32, String> {
    let ok = (3..=5).contains(&mode.len()) && mode.bytes().all(|b| (b'0'..=b'7').contains(&b));
    ok.then(|| u32::from_str_radix(mode, 8).ok())
        .flatten()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("{} is not an octal mode like \"0644\"", quote(mode)))
}

/// Checks a file owner, `USER` or `USER:GROUP`, each a name of letters, digits, `_`, `-` and `.`
/// not starting with `-` (so chown never takes it for an option), at most 32 long.
pub fn owner(owner: &str) -> Result<(), String> {
    let name_ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 32
            && !s.starts_with('-')
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
    };
    let ok = match owner.split_once(':') {
        Some((user, group)) => name_ok(user) && name_ok(group),
        None => name_ok(owner),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{} is not USER or USER:GROUP", quote(owner)))
    }
}

/// Checks a hex digest (a sha256 the tools write, or a UUID's digits): at most `max` hex digits.
pub fn hex_text(text: &str, max: usize) -> Result<(), String> {
    if text.len() <= max && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(format!("{} is not hex digits", quote(text)))
    }
}

/// Checks a short word a tool writes as a state or a name (`running`, `ecdsa-p256`): 1–64 of
/// letters, digits, `_`, `.`, `:` and `-`.
pub fn word(text: &str) -> Result<(), String> {
    let ok = !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{} is not a word of letters, digits, '_', '.', ':' and '-'",
            quote(text)
        ))
    }
}

/// Parses an IP address.
pub fn ip(text: &str) -> Result<IpAddr, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("{} is not an IP address", crate::error::quote(text)))
}

/// Parses a network in CIDR form whose host bits are zero (`10.240.0.0/24`, not `10.240.0.5/24`).
pub fn network(text: &str) -> Result<IpNet, String> {
    let net: IpNet = text.trim().parse().map_err(|_| {
        format!(
            "{} is not a CIDR range (like 10.240.0.0/24)",
            crate::error::quote(text)
        )
    })?;
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

/// The first address of `net` (`IpNet::hosts`' first): what mkvm gives a libvirt network on
/// `net` as its gateway, so what route-sync routes a node's traffic to another hypervisor's
/// nodes through. One function, so the two can never disagree. ipnet begins an IPv6 range's
/// hosts at the network address itself; a single address has none.
pub fn first_host(net: &IpNet) -> Option<IpAddr> {
    net.hosts()
        .next()
        .filter(|_| net.prefix_len() < net.max_prefix_len())
}

/// True when two ranges share an address.
pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Ranges no pod network or pod CIDR may touch, with what they are: a route there would capture
/// the machine's own traffic (RFC 6890 special-purpose blocks that are never pod addresses).
const NOT_POD_RANGE_TEXTS: [(&str, &str); 9] = [
    ("0.0.0.0/8", "\"this network\" (unspecified)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved (with the broadcast address)"),
    ("::/127", "the unspecified and loopback addresses"),
    ("::ffff:0:0/96", "IPv4-mapped"),
    ("fe80::/10", "link-local"),
    ("ff00::/8", "multicast"),
];

/// NOT_POD_RANGE_TEXTS parsed once: every node's pod CIDR is checked against them when a
/// document is read, which for 10,000 nodes made re-parsing them a third of the read's checks.
static NOT_POD_RANGES: std::sync::LazyLock<Vec<(IpNet, &str)>> = std::sync::LazyLock::new(|| {
    NOT_POD_RANGE_TEXTS
        .iter()
        .map(|(text, what)| (text.parse().expect("a valid range"), *what))
        .collect()
});

/// Checks a range may carry pods: a pod network, or a node's pod CIDR that route-sync installs a
/// route to. Never a default route, never a special-purpose block (loopback, link-local,
/// multicast, unspecified, reserved), never overlapping a node network (a route there shadows
/// other nodes' addresses and gateways) or a service network (pods and ClusterIPs would share
/// addresses). cidr-alloc applies it when it decides pod CIDRs and every tool applies it when it
/// reads a document, so route-sync never installs anything else.
pub fn pod_range(net: &IpNet, nodes: &[IpNet], services: &[IpNet]) -> Result<(), String> {
    if net.prefix_len() == 0 {
        return Err(format!("{net} is a default route, not a pod range"));
    }
    for (special, what) in NOT_POD_RANGES.iter() {
        if overlaps(net, special) {
            return Err(format!(
                "{net} is inside or overlaps {special}, {what}: not a pod range"
            ));
        }
    }
    for (kind, nets) in [("node", nodes), ("service", services)] {
        if let Some(other) = nets.iter().find(|other| overlaps(net, other)) {
            return Err(format!(
                "{net} overlaps the {kind} network {other}: pod ranges must not share addresses with it"
            ));
        }
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
    fn pod_ranges_are_never_special_or_the_node_or_service_network() {
        let nodes = [
            network("10.240.0.0/24").unwrap(),
            network("fd00:10:240::/64").unwrap(),
        ];
        let services = [network("10.32.0.0/24").unwrap()];
        for good in ["10.200.0.0/24", "10.200.0.0/16", "fd00:10:200::/64"] {
            assert_eq!(
                pod_range(&network(good).unwrap(), &nodes, &services),
                Ok(()),
                "{good}"
            );
        }
        for bad in [
            "0.0.0.0/0",
            "::/0",
            "10.240.0.0/25",
            "10.0.0.0/8",
            "10.32.0.0/28",
            "127.0.0.0/8",
            "169.254.0.0/16",
            "fe80::/64",
            "224.0.0.0/4",
            "ff00::/8",
            "0.0.0.0/8",
            "::1/128",
            "255.255.255.255/32",
            "fd00:10:240::/80",
        ] {
            assert!(
                pod_range(&network(bad).unwrap(), &nodes, &services).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn strings_with_control_characters_are_refused() {
        for bad in [
            "a\nb",
            "a\rb",
            "a\0b",
            "a\u{7f}",
            "a\u{2028}b",
            "a\u{202e}b",
            "a\u{85}b",
        ] {
            assert!(plain_text(bad).is_err(), "{bad:?}");
        }
        assert!(plain_text("ok: spaces, ünïcode = fine").is_ok());
    }

    #[test]
    fn paths_units_modes_owners_macs() {
        assert!(absolute_path("/etc/systemd/system/etcd.service").is_ok());
        for bad in [
            "etc/x",
            "/etc/../x",
            "/etc//x",
            "/etc/x/",
            "/",
            "/a/./b",
            "/a\\b",
            "/a\nb",
        ] {
            assert!(absolute_path(bad).is_err(), "{bad:?}");
        }
        assert!(relative_path("pki/ca/ca.pem").is_ok());
        for bad in ["", "/pki", "../x", "pki/../../x", "pki//x", "a\0"] {
            assert!(relative_path(bad).is_err(), "{bad:?}");
        }
        for good in [
            "etcd.service",
            "kube-apiserver.service",
            "getty@tty1.service",
            "x.timer",
        ] {
            assert!(unit_name(good).is_ok(), "{good}");
        }
        for bad in [
            "etcd",
            "-x.service",
            ".service",
            "a b.service",
            "x.service\nExecStartPre=/x",
        ] {
            assert!(unit_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(file_mode("0644"), Ok(0o644));
        assert_eq!(file_mode("600"), Ok(0o600));
        for bad in ["", "0x644", "999", "77777", "+644"] {
            assert!(file_mode(bad).is_err(), "{bad:?}");
        }
        assert!(owner("root:root").is_ok() && owner("etcd").is_ok());
        assert!(owner("-r:root").is_err() && owner("a b").is_err() && owner("a:b:c").is_err());
        assert!(mac("52:54:00:8e:1c:02").is_ok());
        assert!(mac("52:54:00:8e:1c").is_err() && mac("52:54:00:8e:1c:0g").is_err());
        assert!(libvirt_name("kubernetes").is_ok() && libvirt_name("a/b").is_err());
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
