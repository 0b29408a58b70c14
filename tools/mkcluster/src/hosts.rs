//! Several hypervisors (issue 19): `--hypervisor NAME=URI,ADDRESS`, once per machine, and the
//! inventory's `host` column naming the one each node runs on.
//!
//! The shape kcli users know: hypervisors are declared once by name (kcli's `~/.kcli/config.yml`
//! clients) and each VM names its hypervisor (`client:`), rather than repeating a URI per node.
//! The document keeps a node's `host` as the libvirt URI mkvm connects to (what it always meant),
//! so the name is resolved here, once; a row may also give the URI of a declared hypervisor. A
//! row with an empty `host` goes on the first `--hypervisor`, as a kcli VM without `client:` goes
//! on the default client. Without `--hypervisor` the `host` column is a URI, as before.

use std::net::IpAddr;

use clap::ArgMatches;
use hardway::doc::{Extra, HypervisorHost};
use hardway::{validate, Node};

use crate::error::Error;
use crate::inventory::Entry;

/// Every `--hypervisor`, checked: names, URIs and addresses well-formed and unique.
pub fn from_matches(matches: &ArgMatches) -> Result<Vec<HypervisorHost>, Error> {
    let flag = |message: String| Error::Flag {
        flag: crate::cli::options::HYPERVISOR,
        message,
    };
    let mut hosts: Vec<HypervisorHost> = Vec::new();
    for text in matches
        .get_many::<String>(crate::cli::options::HYPERVISOR)
        .into_iter()
        .flatten()
    {
        let host = parse(text).map_err(flag)?;
        if let Some((other, what)) = clash(&hosts, &host) {
            return Err(flag(format!(
                "{} has the {what} of hypervisor {}: each hypervisor needs its own",
                hardway::error::quote(text),
                other.name
            )));
        }
        hosts.push(host);
    }
    Ok(hosts)
}

/// The hypervisor already declared with the same name, URI or address, and which of them.
fn clash<'a>(
    hosts: &'a [HypervisorHost],
    host: &HypervisorHost,
) -> Option<(&'a HypervisorHost, &'static str)> {
    hosts.iter().find_map(|h| {
        let what = if h.name == host.name {
            "name"
        } else if h.uri == host.uri {
            "URI"
        } else if h.address == host.address {
            "address"
        } else {
            return None;
        };
        Some((h, what))
    })
}

/// Parses `NAME=URI,ADDRESS`.
pub fn parse(text: &str) -> Result<HypervisorHost, String> {
    let shape = || {
        format!(
            "{} is not NAME=URI,ADDRESS (like hv-a=qemu+ssh://root@hv-a/system,192.168.50.1)",
            hardway::error::quote(text)
        )
    };
    let (name, rest) = text.split_once('=').ok_or_else(shape)?;
    // The address holds no comma; a URI might (in a socket path), so split at the last one.
    let (uri, address) = rest.rsplit_once(',').ok_or_else(shape)?;
    validate::hypervisor_name(name)?;
    hardway::uri::libvirt(uri)?;
    let address: IpAddr = validate::ip(address)?;
    Ok(HypervisorHost {
        name: name.to_string(),
        uri: uri.to_string(),
        address,
        node_slice: Vec::new(),
        extra: Extra::new(),
    })
}

/// Puts each node on its hypervisor: its `host` becomes that hypervisor's URI. A no-op without
/// `--hypervisor`. `entries` are the inventory rows the nodes came from, in the same order.
pub fn place(
    nodes: &mut [Node],
    entries: &[Entry],
    hosts: &[HypervisorHost],
    source: &str,
) -> Result<(), Error> {
    let Some(first) = hosts.first() else {
        return Ok(());
    };
    for (node, entry) in nodes.iter_mut().zip(entries) {
        let host = match entry.host.as_deref() {
            None | Some("") => first,
            Some(given) => hosts
                .iter()
                .find(|h| h.name == given || h.uri == given)
                .ok_or_else(|| {
                    let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
                    entry.at.error(
                        source,
                        format!(
                            "host {} of node {} is not a --hypervisor: name one of {}",
                            hardway::error::quote(given),
                            entry.name,
                            names.join(", ")
                        ),
                    )
                })?,
        };
        node.host = Some(host.uri.clone());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_flag() {
        let host =
            parse("hv-b=qemu+ssh://root@10.0.0.2/system?keyfile=/root/.ssh/id,a,10.0.0.2").unwrap();
        assert_eq!(host.name, "hv-b");
        assert_eq!(
            host.uri,
            "qemu+ssh://root@10.0.0.2/system?keyfile=/root/.ssh/id,a"
        );
        assert_eq!(host.address.to_string(), "10.0.0.2");
        let host = parse("hv-6=qemu+tls://[fd00::2]/system,fd00::2").unwrap();
        assert_eq!(host.address.to_string(), "fd00::2");
        for bad in [
            "hv-a",
            "hv-a=qemu:///system",
            "HV=qemu:///system,10.0.0.1",
            "hv-a=qemu+ext:///system?command=/x,10.0.0.1",
            "hv-a=qemu:///system,10.0.0",
            "=qemu:///system,10.0.0.1",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
