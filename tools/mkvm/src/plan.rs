//! The plan: every libvirt object mkvm wants, rendered as XML from the document alone, before
//! libvirt is asked anything. `--dry-run` prints it; `up` compares it with what exists.
//!
//! The network and domain XML carry mkvm's ownership marks ([`crate::mark`]).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use hardway::doc::{Document, HypervisorHost, Node};
use ipnet::IpNet;

use crate::error::MkvmError;
use crate::image::BaseImage;
use crate::mark::{NS, NS_PREFIX};
use crate::seed::{self, Seed, SeedInput};

pub const DEFAULT_URI: &str = "qemu:///system";
pub const DEFAULT_POOL: &str = "hardway";

/// Options of `up` that shape the plan.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub connect: Option<String>,
    pub pool: Option<String>,
    pub pool_dir: Option<String>,
    pub image: PathBuf,
    pub base: BaseImage,
    pub ssh_public_key: String,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub cluster: String,
    /// The libvirt network each hypervisor gets, by URI ([`Plan::network_of`]): the same one
    /// on every host for a document without several `hypervisors`, else each one's own.
    pub networks: BTreeMap<String, NetworkPlan>,
    /// Whether each hypervisor serves its own slice (a document with several `hypervisors`).
    pub per_hypervisor: bool,
    pub pool: PoolPlan,
    pub nodes: Vec<NodePlan>,
}

#[derive(Debug, Clone)]
pub struct NetworkPlan {
    pub name: String,
    /// The node networks (one per family) the libvirt network serves.
    pub ranges: Vec<IpNet>,
    /// sha256 of the network's XML without its metadata: what "differs" means.
    pub spec: String,
    base: String,
    /// (gateway, prefix) of each `<ip>` element.
    ips: Vec<(IpAddr, u8)>,
    pub dns_hosts: Vec<DnsHost>,
    pub dhcp_hosts: Vec<DhcpHost>,
}

#[derive(Debug, Clone)]
pub struct PoolPlan {
    pub name: String,
    pub dir: String,
    pub xml: String,
}

#[derive(Debug, Clone)]
pub struct NodePlan {
    pub index: usize,
    pub name: String,
    pub uri: String,
    pub vcpus: u32,
    pub memory_mib: u64,
    pub disk_gib: u64,
    pub mac: String,
    pub ip: IpAddr,
    pub overlay: String,
    pub seed_volume: String,
    pub seed: Seed,
    pub overlay_xml: String,
    /// sha256 of everything the domain is made from (sizes, MAC, network, seed, base image).
    pub spec: String,
}

pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&apos;")
        .replace('"', "&quot;")
}

/// The libvirt URI a node lives on: its `host`, else [`default_uri`].
pub fn node_uri(doc: &Document, connect: Option<&str>, node: &Node) -> String {
    node.host
        .clone()
        .unwrap_or_else(|| default_uri(doc, connect))
}

/// The URI of a node without `host`: `--connect`, else `hypervisor.uri`, else qemu:///system.
pub fn default_uri(doc: &Document, connect: Option<&str>) -> String {
    connect
        .map(str::to_string)
        .or_else(|| doc.hypervisor.as_ref().map(|h| h.uri.clone()))
        .unwrap_or_else(|| DEFAULT_URI.to_string())
}

/// The distinct hypervisors the document's nodes live on, in the nodes' order.
pub fn node_uris(doc: &Document, connect: Option<&str>) -> Vec<String> {
    let mut uris: Vec<String> = Vec::new();
    for node in &doc.nodes {
        let uri = node_uri(doc, connect, node);
        if !uris.contains(&uri) {
            uris.push(uri);
        }
    }
    uris
}

pub fn network_name(doc: &Document) -> String {
    doc.hypervisor
        .as_ref()
        .map(|h| h.network.clone())
        .unwrap_or_else(|| doc.cluster.name.clone())
}

pub fn pool_name(doc: &Document, pool: Option<&str>) -> String {
    pool.map(str::to_string)
        .or_else(|| doc.hypervisor.as_ref().map(|h| h.pool.clone()))
        .unwrap_or_else(|| DEFAULT_POOL.to_string())
}

pub fn overlay_name(cluster: &str, node: &str) -> String {
    format!("{cluster}-{node}.qcow2")
}

pub fn seed_name(cluster: &str, node: &str) -> String {
    format!("{cluster}-{node}-seed.iso")
}

/// The first host address of a range: the gateway libvirt's bridge takes.
/// Builds the plan from the document; checks every field it needs and names the JSON path.
pub fn build(doc: &Document, options: &PlanOptions) -> Result<Plan, MkvmError> {
    let cluster = doc.cluster.name.clone();
    hardway::validate::node_name(&cluster)
        .map_err(|why| MkvmError::preflight("cluster.name", why))?;
    let ranges = doc.cluster.networks.node.clone();
    if ranges.is_empty() {
        return Err(MkvmError::preflight(
            "cluster.networks.node",
            "no node network: run mkcluster/cidr-alloc first",
        ));
    }
    let sites = Sites::of(doc, ranges)?;
    let hosts = etc_hosts(doc)?;
    let pool = pool_plan(doc, options)?;
    let common = Common {
        doc,
        options,
        hosts,
        image: options
            .image
            .canonicalize()
            .unwrap_or(options.image.clone()),
        sites,
        network_name: network_name(doc),
    };
    let nodes = doc
        .nodes
        .iter()
        .enumerate()
        .map(|(i, node)| node_plan(&common, i, node))
        .collect::<Result<Vec<_>, _>>()?;
    let networks = networks_of(&common, &nodes);
    Ok(Plan {
        cluster,
        networks,
        per_hypervisor: matches!(common.sites, Sites::PerHypervisor(_)),
        pool,
        nodes,
    })
}

/// Each hypervisor's network: one shared plan on every URI the nodes use (as before several
/// hypervisors), or each hypervisor's own, on its slice, leasing only its own nodes.
fn networks_of(common: &Common, nodes: &[NodePlan]) -> BTreeMap<String, NetworkPlan> {
    let doc = common.doc;
    let connect = common.options.connect.as_deref();
    match &common.sites {
        Sites::Shared(site) => {
            let network = network_plan(doc, site, Forward::Nat, |_| true);
            let mut uris: Vec<String> = nodes.iter().map(|n| n.uri.clone()).collect();
            if uris.is_empty() {
                // No node, no host to make it on; `--dry-run` still shows the network, as before.
                uris.push(default_uri(doc, connect));
            }
            uris.into_iter().map(|uri| (uri, network.clone())).collect()
        }
        Sites::PerHypervisor(sites) => sites
            .iter()
            .filter(|(uri, _)| nodes.iter().any(|n| &n.uri == *uri))
            .map(|(uri, site)| {
                let on_it = |node: &Node| node_uri(doc, connect, node) == *uri;
                (uri.clone(), network_plan(doc, site, Forward::Open, on_it))
            })
            .collect(),
    }
}

/// The node ranges one libvirt network serves and its gateways.
struct Site {
    ranges: Vec<IpNet>,
    gateways: Gateways,
}

/// One site for every hypervisor, or one per hypervisor (by URI) on its `node_slice`.
enum Sites {
    Shared(Site),
    PerHypervisor(BTreeMap<String, Site>),
}

impl Sites {
    /// Several `hypervisors` give each its slice; none or one keep the whole node network, so
    /// such a document plans byte for byte as before hypervisors were listed.
    fn of(doc: &Document, ranges: Vec<IpNet>) -> Result<Sites, MkvmError> {
        if doc.hypervisors.len() < 2 {
            let gateways = Gateways::of(doc, &ranges)?;
            return Ok(Sites::Shared(Site { ranges, gateways }));
        }
        let mut sites = BTreeMap::new();
        for (i, host) in doc.hypervisors.iter().enumerate() {
            sites.insert(host.uri.clone(), Site::of_slice(i, host)?);
        }
        Ok(Sites::PerHypervisor(sites))
    }

    /// The site of the node on `uri`. With several hypervisors every node's `host` is one of
    /// theirs: `Document::validate` refuses the document otherwise, when it is read.
    fn of_node(&self, uri: &str) -> &Site {
        match self {
            Sites::Shared(site) => site,
            Sites::PerHypervisor(sites) => &sites[uri],
        }
    }
}

impl Site {
    /// A hypervisor's slice, its gateway the first host of each range (cidr-alloc reserves it).
    fn of_slice(i: usize, host: &HypervisorHost) -> Result<Site, MkvmError> {
        if host.node_slice.is_empty() {
            return Err(MkvmError::preflight(
                format!("hypervisors[{i}].node_slice"),
                "no node slice: run cidr-alloc first",
            ));
        }
        let ranges = host.node_slice.clone();
        let first = |v6: bool| {
            ranges
                .iter()
                .find(|r| r.addr().is_ipv6() == v6)
                .and_then(hardway::validate::first_host)
        };
        let v4 = first(false);
        let all = v4.into_iter().chain(first(true)).collect();
        Ok(Site {
            ranges,
            gateways: Gateways { v4, all },
        })
    }
}

/// The gateways of the node networks: `hypervisor.gateway` or the first host of the IPv4
/// range, and the first host of the IPv6 range.
struct Gateways {
    v4: Option<IpAddr>,
    all: Vec<IpAddr>,
}

impl Gateways {
    fn of(doc: &Document, ranges: &[IpNet]) -> Result<Gateways, MkvmError> {
        let v4 = match doc.hypervisor.as_ref().and_then(|h| h.gateway) {
            Some(gateway) => Some(gateway),
            None => ranges
                .iter()
                .find(|r| r.addr().is_ipv4())
                .and_then(hardway::validate::first_host),
        };
        let v6 = ranges
            .iter()
            .find(|r| r.addr().is_ipv6())
            .and_then(hardway::validate::first_host);
        let all: Vec<IpAddr> = v4.into_iter().chain(v6).collect();
        if let Some(gateway) = all.iter().find(|g| !ranges.iter().any(|r| r.contains(*g))) {
            return Err(MkvmError::preflight(
                "hypervisor.gateway",
                format!("{gateway} is outside the node networks"),
            ));
        }
        Ok(Gateways { v4, all })
    }
}

/// What every node's plan shares.
struct Common<'a> {
    doc: &'a Document,
    options: &'a PlanOptions,
    /// Every node as (primary ip, fqdn, name), for each node's /etc/hosts.
    hosts: Vec<(IpAddr, String, String)>,
    /// The base image, canonical, as the overlays name it.
    image: PathBuf,
    sites: Sites,
    network_name: String,
}

/// Every node's primary address, FQDN and name; refuses a node without an address.
fn etc_hosts(doc: &Document) -> Result<Vec<(IpAddr, String, String)>, MkvmError> {
    doc.nodes
        .iter()
        .enumerate()
        .map(|(i, node)| {
            let ip = node.primary_ip().ok_or_else(|| {
                MkvmError::preflight(
                    format!("nodes[{i}].ips"),
                    "no address: run cidr-alloc first",
                )
            })?;
            Ok((ip, fqdn(doc, node), node.name.clone()))
        })
        .collect()
}

/// The dir pool: `--pool`, `hypervisor.pool` or `hardway`, under `--pool-dir`.
fn pool_plan(doc: &Document, options: &PlanOptions) -> Result<PoolPlan, MkvmError> {
    let name = pool_name(doc, options.pool.as_deref());
    hardway::validate::node_name(&name)
        .map_err(|why| MkvmError::preflight("--pool", format!("pool name: {why}")))?;
    let dir = options
        .pool_dir
        .clone()
        .unwrap_or_else(|| format!("/var/lib/libvirt/images/{name}"));
    let xml = format!(
        "<pool type='dir'>\n  <name>{}</name>\n  <target>\n    <path>{}</path>\n  </target>\n</pool>\n",
        escape(&name),
        escape(&dir)
    );
    Ok(PoolPlan { name, dir, xml })
}

/// One node: its checked MAC, addresses and sizes, its seed, overlay and spec.
fn node_plan(common: &Common, i: usize, node: &Node) -> Result<NodePlan, MkvmError> {
    let doc = common.doc;
    let cluster = &doc.cluster.name;
    let mac = node_mac(i, node)?;
    let uri = node_uri(doc, common.options.connect.as_deref(), node);
    let site = common.sites.of_node(&uri);
    let addresses = node_addresses(i, node, &site.ranges)?;
    check_size(i, node, &common.options.base)?;
    let seed = seed::render(&SeedInput {
        cluster: cluster.clone(),
        hostname: node.name.clone(),
        fqdn: fqdn(doc, node),
        mac: mac.clone(),
        addresses,
        gateways: site.gateways.all.clone(),
        dns: site.gateways.v4.into_iter().collect(),
        search: Some(doc.cluster.domain.clone()),
        ssh_public_key: common.options.ssh_public_key.clone(),
        hosts: common.hosts.clone(),
    });
    let overlay = overlay_name(cluster, &node.name);
    let overlay_xml = overlay_xml(&overlay, node.disk_gib, &common.image, &common.options.base);
    Ok(NodePlan {
        index: i,
        name: node.name.clone(),
        spec: node_spec(common, site, node, &mac),
        uri,
        vcpus: node.vcpus,
        memory_mib: node.memory_mib,
        disk_gib: node.disk_gib,
        mac,
        ip: node
            .primary_ip()
            .expect("etc_hosts checked every node's address"),
        seed_volume: seed_name(cluster, &node.name),
        overlay,
        seed,
        overlay_xml,
    })
}

/// The node's MAC, lower case; refuses a missing or malformed one.
fn node_mac(i: usize, node: &Node) -> Result<String, MkvmError> {
    let at = format!("nodes[{i}].mac");
    let mac = node
        .mac
        .clone()
        .ok_or_else(|| MkvmError::preflight(&at, "no MAC: run cidr-alloc first"))?
        .to_ascii_lowercase();
    if !is_mac(&mac) {
        return Err(MkvmError::preflight(
            at,
            format!("{} is not a MAC address", hardway::error::quote(&mac)),
        ));
    }
    Ok(mac)
}

/// Each of the node's addresses with the prefix of the node network that holds it.
fn node_addresses(i: usize, node: &Node, ranges: &[IpNet]) -> Result<Vec<IpNet>, MkvmError> {
    let mut addresses = Vec::new();
    for (j, ip) in node.ips.iter().enumerate() {
        let range = ranges.iter().find(|r| r.contains(ip)).ok_or_else(|| {
            MkvmError::preflight(
                format!("nodes[{i}].ips[{j}]"),
                format!("{ip} is outside the node networks {ranges:?}"),
            )
        })?;
        addresses.push(IpNet::new(*ip, range.prefix_len()).expect("prefix from a valid range"));
    }
    Ok(addresses)
}

/// Refuses a node too small to boot, or a disk smaller than the base image.
fn check_size(i: usize, node: &Node, base: &BaseImage) -> Result<(), MkvmError> {
    if node.vcpus == 0 || node.memory_mib < 128 || node.disk_gib == 0 {
        return Err(MkvmError::preflight(
            format!("nodes[{i}].memory_mib"),
            "a node needs at least 1 vCPU, 128 MiB and 1 GiB of disk",
        ));
    }
    if node.disk_gib << 30 < base.virtual_size {
        return Err(MkvmError::preflight(
            format!("nodes[{i}].disk_gib"),
            format!(
                "{} GiB is smaller than the base image ({} bytes)",
                node.disk_gib, base.virtual_size
            ),
        ));
    }
    Ok(())
}

/// The node's qcow2 overlay volume, backed by the base image.
fn overlay_xml(name: &str, disk_gib: u64, image: &Path, base: &BaseImage) -> String {
    format!(
        "<volume>\n  <name>{}</name>\n  <capacity unit='bytes'>{}</capacity>\n  <target>\n    <format type='qcow2'/>\n    <permissions><mode>0600</mode></permissions>\n  </target>\n  <backingStore>\n    <path>{}</path>\n    <format type='{}'/>\n  </backingStore>\n</volume>\n",
        escape(name),
        disk_gib << 30,
        escape(&image.display().to_string()),
        base.format.as_str()
    )
}

/// What the node is made of, leaving out the cluster-wide /etc/hosts list: adding a node to the
/// cluster must not make every other node "changed".
fn node_spec(common: &Common, site: &Site, node: &Node, mac: &str) -> String {
    hardway::fsutil::sha256_hex(
        format!(
            "{}|{}|{}|{mac}|{:?}|{}|{}|{}|{:?}|{}",
            node.vcpus,
            node.memory_mib,
            node.disk_gib,
            node.ips,
            common.network_name,
            fqdn(common.doc, node),
            common.image.display(),
            site.gateways.all,
            common.options.ssh_public_key,
        )
        .as_bytes(),
    )
}

fn fqdn(doc: &Document, node: &Node) -> String {
    node.fqdn
        .clone()
        .unwrap_or_else(|| format!("{}.{}", node.name, doc.cluster.domain))
}

fn is_mac(mac: &str) -> bool {
    let parts: Vec<&str> = mac.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// How a libvirt network forwards what leaves its bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Forward {
    /// One hypervisor: libvirt masquerades everything leaving the node network.
    Nat,
    /// Several: each hypervisor's slice is routed to the others with node and pod source
    /// addresses kept. Not `nat`: libvirt masquerades every packet from the network's subnet to
    /// any address outside that subnet, exempting only 224.0.0.0/24 and 255.255.255.255/32, so
    /// the other slice would see the hypervisor's address; and it accepts only replies into the
    /// bridge (networkAddMasqueradingFirewallRules, libvirt/libvirt
    /// src/network/bridge_driver_linux.c in v9.x, the release Debian 12 ships; in
    /// src/network/network_iptables.c since the nftables backend). Not `route`: its rules accept out of the bridge
    /// only sources in the network's own subnet and reject the rest (networkAddRoutingFirewallRules
    /// and the catch-all rejects of networkAddGeneralIPv4FirewallRules, same file), which drops
    /// the pods' addresses. `open` adds no firewall rule at all (libvirt formatnetwork.html,
    /// "open", since 2.2.0): routing is the kernel's, and masquerading what leaves the cluster
    /// is one rule on each hypervisor (README "## Two hypervisors").
    Open,
}

impl Forward {
    fn mode(self) -> &'static str {
        match self {
            Forward::Nat => "nat",
            Forward::Open => "open",
        }
    }
}

/// The libvirt network of a site: DHCP leases for the nodes `leases_for` accepts (those on its
/// hypervisor), a DNS record for every node of the cluster.
fn network_plan(
    doc: &Document,
    site: &Site,
    forward: Forward,
    leases_for: impl Fn(&Node) -> bool,
) -> NetworkPlan {
    let name = network_name(doc);
    let (ranges, gateways) = (&site.ranges, &site.gateways.all);
    let mut dns_hosts = Vec::new();
    let mut dhcp_hosts = Vec::new();
    for node in &doc.nodes {
        for ip in &node.ips {
            dns_hosts.push(DnsHost {
                ip: *ip,
                hostnames: vec![fqdn(doc, node), node.name.clone()],
            });
        }
        if !leases_for(node) {
            continue;
        }
        if let (Some(mac), Some(ip)) = (&node.mac, node.ip_of_family(false)) {
            dhcp_hosts.push(DhcpHost {
                mac: mac.to_ascii_lowercase(),
                name: node.name.clone(),
                ip,
            });
        }
    }
    let mut base = String::new();
    base.push_str(&format!("  <forward mode='{}'/>\n", forward.mode()));
    base.push_str(&format!(
        "  <domain name='{}' localOnly='yes'/>\n",
        escape(&doc.cluster.domain)
    ));
    let mut ips = Vec::new();
    for range in ranges {
        if let Some(gateway) = gateways.iter().find(|g| range.contains(*g)) {
            ips.push((*gateway, range.prefix_len()));
        }
    }
    // Only the base (forwarding, domain, addresses) decides whether the network "differs"; host
    // entries follow the nodes and are updated in place (virNetworkUpdate) as nodes come and go.
    let spec = hardway::fsutil::sha256_hex(format!("{name}\n{base}{ips:?}").as_bytes());
    NetworkPlan {
        name,
        ranges: ranges.clone(),
        spec,
        base,
        ips,
        dns_hosts,
        dhcp_hosts,
    }
}

/// A DHCP host entry: the node's MAC gets its IPv4 address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DhcpHost {
    pub mac: String,
    pub name: String,
    pub ip: IpAddr,
}

/// A DNS host record: the node's FQDN and short name for one of its addresses.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DnsHost {
    pub ip: IpAddr,
    pub hostnames: Vec<String>,
}

impl DhcpHost {
    pub fn xml(&self) -> String {
        format!(
            "<host mac='{}' name='{}' ip='{}'/>",
            escape(&self.mac),
            escape(&self.name),
            self.ip
        )
    }
}

impl DnsHost {
    pub fn xml(&self) -> String {
        let names: String = self
            .hostnames
            .iter()
            .map(|h| format!("<hostname>{}</hostname>", escape(h)))
            .collect();
        format!("<host ip='{}'>{names}</host>", self.ip)
    }
}

/// The DHCP and DNS host entries in a libvirt network's XML.
pub fn network_hosts(xml: &str) -> (Vec<DhcpHost>, Vec<DnsHost>) {
    let Ok(doc) = roxmltree::Document::parse(xml) else {
        return (Vec::new(), Vec::new());
    };
    let mut dhcp = Vec::new();
    let mut dns = Vec::new();
    for node in doc.descendants().filter(|n| n.has_tag_name("host")) {
        let parent = node.parent().map(|p| p.tag_name().name()).unwrap_or("");
        let Some(ip) = node.attribute("ip").and_then(|i| i.parse().ok()) else {
            continue;
        };
        if parent == "dhcp" {
            dhcp.push(DhcpHost {
                mac: node.attribute("mac").unwrap_or("").to_ascii_lowercase(),
                name: node.attribute("name").unwrap_or("").to_string(),
                ip,
            });
        } else if parent == "dns" {
            dns.push(DnsHost {
                ip,
                hostnames: node
                    .children()
                    .filter(|c| c.has_tag_name("hostname"))
                    .filter_map(|c| c.text().map(str::to_string))
                    .collect(),
            });
        }
    }
    (dhcp, dns)
}

impl Plan {
    /// The network planned for the hypervisor at `uri` (one of [`Plan::uris`]).
    pub fn network_of(&self, uri: &str) -> &NetworkPlan {
        &self.networks[uri]
    }

    /// The part of the plan one hypervisor carries out: its nodes and its network.
    pub fn on_host(&self, uri: &str) -> Plan {
        Plan {
            cluster: self.cluster.clone(),
            networks: self
                .networks
                .iter()
                .filter(|(u, _)| *u == uri)
                .map(|(u, n)| (u.clone(), n.clone()))
                .collect(),
            per_hypervisor: self.per_hypervisor,
            pool: self.pool.clone(),
            nodes: self
                .nodes
                .iter()
                .filter(|n| n.uri == uri)
                .cloned()
                .collect(),
        }
    }

    /// The distinct hypervisors of the plan, in the nodes' order.
    pub fn uris(&self) -> Vec<String> {
        let mut uris: Vec<String> = Vec::new();
        for node in &self.nodes {
            if !uris.contains(&node.uri) {
                uris.push(node.uri.clone());
            }
        }
        uris
    }
}

impl NetworkPlan {
    /// The network's XML, marked as this cluster's.
    pub fn xml(&self, cluster: &str, pool_created: Option<&str>) -> String {
        let pool_attr = pool_created
            .map(|p| format!(" pool-created='{}'", escape(p)))
            .unwrap_or_default();
        let mut body = self.base.clone();
        body.push_str("  <dns>\n");
        for host in &self.dns_hosts {
            body.push_str(&format!("    {}\n", host.xml()));
        }
        body.push_str("  </dns>\n");
        for (gateway, prefix) in &self.ips {
            if gateway.is_ipv4() {
                body.push_str(&format!(
                    "  <ip address='{gateway}' prefix='{prefix}'>\n    <dhcp>\n"
                ));
                for host in &self.dhcp_hosts {
                    body.push_str(&format!("      {}\n", host.xml()));
                }
                body.push_str("    </dhcp>\n  </ip>\n");
            } else {
                body.push_str(&format!(
                    "  <ip family='ipv6' address='{gateway}' prefix='{prefix}'/>\n"
                ));
            }
        }
        format!(
            "<network>\n  <name>{}</name>\n  <metadata>\n    <{NS_PREFIX}:network xmlns:{NS_PREFIX}='{NS}' cluster='{}' spec='{}'{pool_attr}/>\n  </metadata>\n{body}</network>\n",
            escape(&self.name),
            escape(cluster),
            self.spec,
        )
    }
}

impl NodePlan {
    /// The seed volume, sized to the ISO (libvirt rounds up to its allocation unit).
    pub fn seed_volume_xml(&self, iso_len: u64) -> String {
        format!(
            "<volume>\n  <name>{}</name>\n  <capacity unit='bytes'>{iso_len}</capacity>\n  <target>\n    <format type='raw'/>\n    <permissions><mode>0644</mode></permissions>\n  </target>\n</volume>\n",
            escape(&self.seed_volume)
        )
    }

    /// The domain, marked as this cluster's, with the volumes it owns. The seed is the first
    /// IDE CD-ROM (`hdc`, the guest's `/dev/sr0`): scripts/image.sh's initramfs carries its
    /// drivers and its cloud-init waits for `/dev/sr0` before looking for the seed, so moving
    /// the seed to another bus or device means changing the image too.
    pub fn domain_xml(
        &self,
        cluster: &str,
        network: &str,
        pool: &str,
        domain_type: &str,
    ) -> String {
        format!(
            "<domain type='{domain_type}'>
  <name>{name}</name>
  <title>hardway {cluster_e} {name}</title>
  <description>Made by mkvm for cluster {cluster_e}; `mkvm down` removes it with its volumes.</description>
  <metadata>
    <{NS_PREFIX}:vm xmlns:{NS_PREFIX}='{NS}' cluster='{cluster_e}' node='{name}' pool='{pool_e}' overlay='{overlay}' seed='{seed}' vcpus='{vcpus}' memory_mib='{memory}' disk_gib='{disk}' spec='{spec}'/>
  </metadata>
  <memory unit='MiB'>{memory}</memory>
  <currentMemory unit='MiB'>{memory}</currentMemory>
  <vcpu placement='static'>{vcpus}</vcpu>
  <os>
    <type arch='x86_64'>hvm</type>
    <boot dev='hd'/>
  </os>
  <features>
    <acpi/>
    <apic/>
  </features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='volume' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source pool='{pool_e}' volume='{overlay}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='volume' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source pool='{pool_e}' volume='{seed}'/>
      <target dev='hdc' bus='ide'/>
      <readonly/>
    </disk>
    <interface type='network'>
      <mac address='{mac}'/>
      <source network='{network_e}'/>
      <model type='virtio'/>
    </interface>
    <serial type='pty'>
      <target port='0'/>
    </serial>
    <console type='pty'>
      <target type='serial' port='0'/>
    </console>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
    <rng model='virtio'>
      <backend model='random'>/dev/urandom</backend>
    </rng>
  </devices>
</domain>
",
            name = escape(&self.name),
            cluster_e = escape(cluster),
            pool_e = escape(pool),
            network_e = escape(network),
            overlay = escape(&self.overlay),
            seed = escape(&self.seed_volume),
            vcpus = self.vcpus,
            memory = self.memory_mib,
            disk = self.disk_gib,
            spec = self.spec,
            mac = self.mac,
        )
    }
}

/// The address ranges a libvirt network's XML serves (its `<ip>` elements).
pub fn network_ranges(xml: &str) -> Vec<IpNet> {
    let Ok(doc) = roxmltree::Document::parse(xml) else {
        return Vec::new();
    };
    doc.descendants()
        .filter(|n| n.has_tag_name("ip") && n.parent().is_some_and(|p| p.has_tag_name("network")))
        .filter_map(|n| {
            let address: IpAddr = n.attribute("address")?.parse().ok()?;
            let prefix: u8 = match (n.attribute("prefix"), n.attribute("netmask")) {
                (Some(p), _) => p.parse().ok()?,
                (None, Some(mask)) => {
                    let mask: std::net::Ipv4Addr = mask.parse().ok()?;
                    u32::from(mask).count_ones() as u8
                }
                (None, None) => 24,
            };
            IpNet::new(address, prefix).ok().map(|n| n.trunc())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::Format;
    use crate::mark::{network_mark, vm_mark, NetworkMark};

    fn lab() -> Document {
        testkit::fixture_document("lab.json")
    }

    fn options() -> PlanOptions {
        PlanOptions {
            connect: Some("test:///default".into()),
            pool: None,
            pool_dir: None,
            image: "/img/base.qcow2".into(),
            base: BaseImage {
                format: Format::Qcow2,
                virtual_size: 2 << 30,
            },
            ssh_public_key: "ssh-ed25519 AAAA test".into(),
        }
    }

    #[test]
    fn the_plan_names_everything_after_the_cluster() {
        let plan = build(&lab(), &options()).unwrap();
        assert_eq!(plan.network_of("test:///default").name, "lab");
        assert_eq!(plan.pool.name, "hardway");
        assert_eq!(plan.nodes[0].overlay, "lab-node-1.qcow2");
        assert_eq!(plan.nodes[0].seed_volume, "lab-node-1-seed.iso");
        let xml = plan
            .network_of("test:///default")
            .xml("lab", Some("hardway"));
        assert_eq!(
            network_mark(&xml).unwrap(),
            NetworkMark {
                cluster: "lab".into(),
                spec: plan.network_of("test:///default").spec.clone(),
                pool_created: Some("hardway".into()),
            }
        );
        assert_eq!(
            network_ranges(&xml),
            vec!["10.240.0.0/24".parse::<IpNet>().unwrap()]
        );
        let mac = lab().nodes[0].mac.clone().unwrap();
        assert!(
            xml.contains(&format!(
                "<host mac='{mac}' name='node-1' ip='10.240.0.11'/>"
            )),
            "{xml}"
        );
        assert!(xml.contains("<hostname>node-2.example.com</hostname>"));
        let (dhcp, dns) = network_hosts(&xml);
        assert_eq!(dhcp, plan.network_of("test:///default").dhcp_hosts);
        assert_eq!(dns, plan.network_of("test:///default").dns_hosts);
        let dom = plan.nodes[1].domain_xml("lab", "lab", "hardway", "qemu");
        let mark = vm_mark(&dom).unwrap();
        assert_eq!(
            (mark.node.as_str(), mark.memory_mib, mark.disk_gib),
            ("node-2", 768, 8)
        );
        assert!(roxmltree::Document::parse(&dom).is_ok());
        // A foreign domain's XML has no mark.
        assert!(vm_mark("<domain type='qemu'><name>x</name></domain>").is_none());
    }

    #[test]
    fn missing_allocations_are_refused_with_their_json_path() {
        let mut doc = lab();
        doc.nodes[2].mac = None;
        let err = build(&doc, &options()).unwrap_err().to_string();
        assert!(err.starts_with("nodes[2].mac"), "{err}");
        let mut doc = lab();
        doc.nodes[0].ips = vec!["192.168.1.5".parse().unwrap()];
        assert!(build(&doc, &options())
            .unwrap_err()
            .to_string()
            .contains("nodes[0].ips[0]"));
    }

    /// Everything `--dry-run` prints for a plan, in one string: the network (per hypervisor),
    /// the pool, and each node's volumes, seed and domain.
    fn rendered(plan: &Plan) -> String {
        let mut all = String::new();
        for uri in plan.uris() {
            all.push_str(&plan.network_of(&uri).xml(&plan.cluster, Some("hardway")));
        }
        all.push_str(&plan.pool.xml);
        for n in &plan.nodes {
            let network = &plan.network_of(&n.uri).name;
            all.push_str(&n.overlay_xml);
            all.push_str(&n.seed_volume_xml(0));
            all.push_str(&n.seed.user_data);
            all.push_str(&n.seed.meta_data);
            all.push_str(&n.seed.network_config);
            all.push_str(&n.domain_xml(&plan.cluster, network, &plan.pool.name, "qemu"));
        }
        all
    }

    /// Every fixture's plan is byte for byte what mkvm made before it learnt several
    /// hypervisors (the sha256 of its rendering, recorded from commit 3aca838), and a document
    /// that lists one hypervisor plans exactly as one that lists none.
    #[test]
    fn documents_without_several_hypervisors_plan_as_before() {
        let before = [
            (
                "lab.json",
                "631621eb0856fccb0fe333e9cbd2d6c2c025707d8d923dcc78f6e35361c29fec",
            ),
            (
                "ebook-dualstack.json",
                "20ac9e72ec740aa6690c87ecfa7a7df6e06af300144b2b81d345f09d0dfe9315",
            ),
        ];
        let fixtures: Vec<String> =
            std::fs::read_dir(testkit::workspace_root().join("tests/fixtures"))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|name| name.ends_with(".json"))
                .collect();
        for fixture in &fixtures {
            assert!(
                before.iter().any(|(name, _)| name == fixture),
                "{fixture}: record its plan's sha256 from before several hypervisors"
            );
        }
        for (fixture, sha) in before {
            let doc = testkit::fixture_document(fixture);
            let plan = build(&doc, &options()).unwrap();
            let got = hardway::fsutil::sha256_hex(rendered(&plan).as_bytes());
            assert_eq!(got, sha, "{fixture}");
            let mut one = doc.clone();
            let uri = "test:///default".to_string();
            one.hypervisors = vec![hardway::doc::HypervisorHost {
                name: "hv-a".into(),
                uri: uri.clone(),
                address: "192.168.250.1".parse().unwrap(),
                node_slice: doc.cluster.networks.node.clone(),
                extra: Default::default(),
            }];
            for node in &mut one.nodes {
                node.host = Some(uri.clone());
            }
            let plan = build(&one, &options()).unwrap();
            assert_eq!(
                hardway::fsutil::sha256_hex(rendered(&plan).as_bytes()),
                sha,
                "{fixture} with one hypervisor"
            );
        }
    }

    /// lab.json on two hypervisors: node-1 and node-2 on hv-a (10.240.0.0/25), node-3 moved
    /// to hv-b (10.240.0.128/25), as `mkcluster --hypervisor … | cidr-alloc` would give them.
    fn two_hosts() -> Document {
        let mut doc = lab();
        let host =
            |name: &str, uri: &str, address: &str, slice: &str| hardway::doc::HypervisorHost {
                name: name.into(),
                uri: uri.into(),
                address: address.parse().unwrap(),
                node_slice: vec![slice.parse().unwrap()],
                extra: Default::default(),
            };
        doc.hypervisors = vec![
            host("hv-a", "test:///a", "192.168.250.1", "10.240.0.0/25"),
            host("hv-b", "test:///b", "192.168.250.2", "10.240.0.128/25"),
        ];
        for node in &mut doc.nodes[..2] {
            node.host = Some("test:///a".into());
        }
        doc.nodes[2].host = Some("test:///b".into());
        doc.nodes[2].ips = vec!["10.240.0.130".parse().unwrap()];
        doc
    }

    #[test]
    fn each_hypervisor_gets_its_own_open_network_on_its_slice() {
        let doc = two_hosts();
        let plan = build(&doc, &options()).unwrap();
        assert!(plan.per_hypervisor);
        assert_eq!(plan.uris(), ["test:///a", "test:///b"]);
        let mac = |i: usize| doc.nodes[i].mac.clone().unwrap().to_ascii_lowercase();
        for (uri, slice, leased) in [
            ("test:///a", "10.240.0.0/25", vec![0, 1]),
            ("test:///b", "10.240.0.128/25", vec![2]),
        ] {
            let network = plan.network_of(uri);
            let xml = network.xml("lab", None);
            let parsed = roxmltree::Document::parse(&xml).unwrap();
            let forward = parsed
                .descendants()
                .find(|n| n.has_tag_name("forward"))
                .unwrap();
            assert_eq!(forward.attribute("mode"), Some("open"), "{uri}");
            assert_eq!(network_ranges(&xml), vec![slice.parse::<IpNet>().unwrap()]);
            let (dhcp, dns) = network_hosts(&xml);
            let macs: Vec<String> = dhcp.iter().map(|h| h.mac.clone()).collect();
            assert_eq!(
                macs,
                leased.iter().map(|&i| mac(i)).collect::<Vec<_>>(),
                "{uri}"
            );
            // Every node of the cluster resolves on every hypervisor's network.
            assert_eq!(dns.len(), 3, "{uri}");
        }
        let gateway_of = |node: &NodePlan| {
            let net: serde_json::Value =
                serde_yaml_ng::from_str(&node.seed.network_config).unwrap();
            let eth0 = &net["ethernets"]["eth0"];
            (
                eth0["addresses"][0].as_str().unwrap().to_string(),
                eth0["gateway4"].as_str().unwrap().to_string(),
            )
        };
        assert_eq!(
            gateway_of(&plan.nodes[0]),
            ("10.240.0.11/25".into(), "10.240.0.1".into())
        );
        assert_eq!(
            gateway_of(&plan.nodes[2]),
            ("10.240.0.130/25".into(), "10.240.0.129".into())
        );
        // The per-host part carries only that host's nodes and network.
        let b = plan.on_host("test:///b");
        assert_eq!(b.nodes.len(), 1);
        assert_eq!(b.networks.keys().collect::<Vec<_>>(), ["test:///b"]);
    }

    #[test]
    fn a_node_outside_its_hypervisors_slice_is_refused() {
        let mut doc = two_hosts();
        doc.nodes[2].ips = vec!["10.240.0.13".parse().unwrap()];
        let err = build(&doc, &options()).unwrap_err().to_string();
        assert!(
            err.starts_with("nodes[2].ips[0]: 10.240.0.13 is outside"),
            "{err}"
        );
    }
}
