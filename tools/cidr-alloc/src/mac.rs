//! MAC addresses derived from the cluster's and the node's name, so the same node gets the same
//! MAC on every run and on every machine, and libvirt's DHCP host entries can be written before
//! the VM exists. The prefix 52:54:00 is the one qemu and libvirt use for their guests.

use sha2::{Digest, Sha256};

pub const PREFIX: [u8; 3] = [0x52, 0x54, 0x00];

/// The 24 low bits for `node` in `cluster`: sha256("CLUSTER/NODE"), or sha256("CLUSTER/NODE/N")
/// for the N-th retry after a collision, first three bytes.
pub fn derive(cluster: &str, node: &str, attempt: u32) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(cluster.as_bytes());
    hasher.update(b"/");
    hasher.update(node.as_bytes());
    if attempt > 0 {
        hasher.update(format!("/{attempt}").as_bytes());
    }
    let digest = hasher.finalize();
    let prefix = PREFIX.iter().fold(0u64, |acc, b| acc << 8 | u64::from(*b));
    (prefix << 24) | u64::from(digest[0]) << 16 | u64::from(digest[1]) << 8 | u64::from(digest[2])
}

/// Parses `aa:bb:cc:dd:ee:ff` (either case); refuses multicast addresses.
pub fn parse(text: &str) -> Result<u64, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let bad = || {
        format!(
            "{} is not a MAC address like 52:54:00:12:34:56",
            hardway::error::quote(text)
        )
    };
    if parts.len() != 6 || parts.iter().any(|p| p.len() != 2) {
        return Err(bad());
    }
    let mut value = 0u64;
    for part in parts {
        value = value << 8 | u64::from(u8::from_str_radix(part, 16).map_err(|_| bad())?);
    }
    if (value >> 40) & 1 == 1 {
        return Err(format!(
            "{} is a multicast MAC address: a NIC needs a unicast one",
            hardway::error::quote(text)
        ));
    }
    Ok(value)
}

pub fn format(value: u64) -> String {
    let b = value.to_be_bytes();
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        b[2], b[3], b[4], b[5], b[6], b[7]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_macs_are_stable_and_prefixed() {
        let mac = format(derive("lab", "node-1", 0));
        assert!(mac.starts_with("52:54:00:"), "{mac}");
        assert_eq!(mac, format(derive("lab", "node-1", 0)));
        assert_ne!(mac, format(derive("lab", "node-1", 1)));
        assert_ne!(mac, format(derive("lab2", "node-1", 0)));
        assert_eq!(parse(&mac), Ok(derive("lab", "node-1", 0)));
    }

    #[test]
    fn parse_refuses_bad_macs() {
        for bad in [
            "",
            "52:54:00:12:34",
            "52:54:00:12:34:5g",
            "01:00:5e:00:00:01",
            "525400123456",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            format(parse("52:54:00:AB:cd:01").unwrap()),
            "52:54:00:ab:cd:01"
        );
    }
}
