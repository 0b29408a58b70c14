//! Pictures of the plan as Graphviz DOT, the two pictures of the libvirt write-up (docs/sources.md#seed-000,
//! `k8sflat.svg` and `k8sflat_routes.svg`) drawn from the document for any cluster:
//! [`infra`] the hypervisors, their libvirt network and every node on it; [`routes`] the pod
//! CIDRs behind each node and one arrow per route (`ip route add CIDR via NODE-IP`).
//!
//! Pure functions over the document: no I/O, and the same document gives the same bytes
//! (nodes in document order, hosts and routes sorted). Every string from the document is
//! escaped — DOT IDs are always quoted, labels are HTML-like and HTML-escaped — because the
//! document is data (a network name or a libvirt URI may hold `"`, `<` or `\`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::{Document, Node, Role};

/// Where a route is installed: on the hypervisor (`route-sync --host`) or on a node
/// (`route-sync --node NAME`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Viewpoint {
    Host,
    Node(String),
}

/// One route: `ip route add DST via GATEWAY`, GATEWAY being `node`'s address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub dst: IpNet,
    pub gateway: IpAddr,
    pub node: String,
}

/// The routes installed at one viewpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routes {
    pub from: Viewpoint,
    pub routes: Vec<Route>,
}

/// The routes route-sync keeps at `from` (the rule of route-sync's `plan::wanted`, without its
/// error reporting: a pod CIDR whose node has no address of its family is left out): every pod
/// CIDR of every node but the viewpoint itself, via that node's address of the same family,
/// sorted by destination.
pub fn pod_routes(doc: &Document, from: &Viewpoint) -> Vec<Route> {
    let mut routes: Vec<Route> = doc
        .nodes
        .iter()
        .filter(|node| !matches!(from, Viewpoint::Node(me) if *me == node.name))
        .flat_map(|node| {
            node.pod_cidrs.iter().filter_map(|cidr| {
                Some(Route {
                    dst: *cidr,
                    gateway: node.ip_of_family(cidr.addr().is_ipv6())?,
                    node: node.name.clone(),
                })
            })
        })
        .collect();
    routes.sort_by_key(|r| r.dst);
    routes
}

/// The routes of the whole cluster: the hypervisor's, then each node's in document order.
pub fn cluster_routes(doc: &Document) -> Vec<Routes> {
    std::iter::once(Viewpoint::Host)
        .chain(doc.nodes.iter().map(|n| Viewpoint::Node(n.name.clone())))
        .map(|from| Routes {
            routes: pod_routes(doc, &from),
            from,
        })
        .collect()
}

/// Colour of each role, in legend order; a node shows one cell per role it has.
const ROLE_COLOURS: [(Role, &str); 4] = [
    (Role::Lb, "#dadaeb"),
    (Role::Controller, "#9ecae1"),
    (Role::Etcd, "#fdd0a2"),
    (Role::Worker, "#a1d99b"),
];
/// Text and arrow colour of each address family; IPv6 arrows are also dashed.
const V4_COLOUR: &str = "#08519c";
const V6_COLOUR: &str = "#a50f15";
const FONT: &str = "Helvetica";

/// The infrastructure picture: each hypervisor with its libvirt network (gateway, range) and
/// its nodes (name, roles, addresses, MAC, size, pod CIDRs), the API VIP and the load
/// balancers or controllers holding it, and the service range with its well-known IPs.
pub fn infra(doc: &Document) -> String {
    let mut out = header(doc, "infrastructure");
    for (i, (host, nodes)) in nodes_by_host(doc).iter().enumerate() {
        hypervisor(&mut out, doc, i, host, nodes);
    }
    vips(&mut out, doc);
    services(&mut out, doc);
    legend(&mut out, false);
    out.push_str("}\n");
    out
}

/// The routes picture: the hypervisor and every node, each node's pod CIDRs behind it, and an
/// arrow from each viewpoint to each pod CIDR it routes, labelled `CIDR via NODE-IP`. Route
/// arrows carry `class="route"` (in SVG and `dot -Tjson`) so they can be counted.
pub fn routes(doc: &Document, views: &[Routes]) -> String {
    let mut out = header(doc, "pod routes");
    let uri = doc
        .hypervisor
        .as_ref()
        .map_or("hypervisor", |h| h.uri.as_str());
    let _ = writeln!(
        out,
        "  {} [shape=box3d, style=filled, fillcolor=\"#f0f0f0\", label=<<b>hypervisor</b><br/>{}>];",
        id("hypervisor"),
        html(uri)
    );
    let _ = writeln!(out, "  {{ rank=same;");
    for node in &doc.nodes {
        let _ = writeln!(
            out,
            "    {} [{}];",
            node_id(&node.name),
            node_attrs(node, false)
        );
    }
    out.push_str("  }\n");
    for node in &doc.nodes {
        let _ = writeln!(
            out,
            "  {} -> {} [class=\"link\", arrowhead=none, color=gray];",
            id("hypervisor"),
            node_id(&node.name)
        );
        for cidr in &node.pod_cidrs {
            let _ = writeln!(
                out,
                "  {} [shape=note, style=filled, fillcolor=\"#ffffff\", color={}, fontcolor={}, label=<pods of {}<br/>{}>];",
                pod_id(cidr),
                id(family_colour(cidr.addr())),
                id(family_colour(cidr.addr())),
                html(&node.name),
                html(&cidr.to_string())
            );
            let _ = writeln!(
                out,
                "  {} -> {} [class=\"behind\", arrowhead=none, style=bold, color=gray];",
                node_id(&node.name),
                pod_id(cidr)
            );
        }
    }
    for view in views {
        route_edges(&mut out, view);
    }
    legend(&mut out, true);
    out.push_str("}\n");
    out
}

fn route_edges(out: &mut String, view: &Routes) {
    let from = match &view.from {
        Viewpoint::Host => id("hypervisor"),
        Viewpoint::Node(name) => node_id(name),
    };
    for route in &view.routes {
        let colour = id(family_colour(route.gateway));
        let style = if route.gateway.is_ipv6() {
            "dashed"
        } else {
            "solid"
        };
        let _ = writeln!(
            out,
            "  {from} -> {} [class=\"route\", color={colour}, fontcolor={colour}, style={style}, fontsize=9, label={}];",
            pod_id(&route.dst),
            id(&format!("{} via {}", route.dst, route.gateway))
        );
    }
}

fn header(doc: &Document, what: &str) -> String {
    let c = &doc.cluster;
    let title = format!(
        "cluster {} ({}), {what}; pod network: {}",
        c.name,
        c.domain,
        serde_json::to_value(c.pod_network)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default()
    );
    let mut out = String::from("digraph hardway {\n");
    let _ = writeln!(
        out,
        "  graph [fontname={f}, rankdir=LR, labelloc=t, fontsize=16, nodesep=0.3, ranksep=0.6, label={}];\n  node [fontname={f}, fontsize=10];\n  edge [fontname={f}, fontsize=9];",
        id(&title),
        f = id(FONT)
    );
    out
}

/// Nodes grouped by the hypervisor they run on (`host`, or `hypervisor.uri` when null),
/// hosts sorted by URI, nodes in document order.
fn nodes_by_host(doc: &Document) -> BTreeMap<String, Vec<&Node>> {
    let default = doc
        .hypervisor
        .as_ref()
        .map_or("qemu:///system", |h| h.uri.as_str());
    let mut hosts: BTreeMap<String, Vec<&Node>> = BTreeMap::new();
    for node in &doc.nodes {
        let host = node.host.as_deref().unwrap_or(default);
        hosts.entry(host.to_string()).or_default().push(node);
    }
    hosts
}

fn hypervisor(out: &mut String, doc: &Document, index: usize, host: &str, nodes: &[&Node]) {
    let network = doc
        .hypervisor
        .as_ref()
        .map_or("default", |h| h.network.as_str());
    let gateway = doc.hypervisor.as_ref().and_then(|h| h.gateway);
    let ranges = join(&doc.cluster.networks.node);
    let _ = writeln!(
        out,
        "  subgraph {} {{\n    label=<<b>hypervisor</b> {}>; style=rounded; color=\"#636363\";",
        id(&format!("cluster_host_{index}")),
        html(host)
    );
    let net = id(&format!("network/{index}"));
    let gateway_text = gateway.map_or(String::new(), |g| {
        format!("<br/>gateway {}", html(&g.to_string()))
    });
    let _ = writeln!(
        out,
        "    {net} [shape=box, style=\"rounded,filled\", fillcolor=\"#f0f0f0\", label=<libvirt network <b>{}</b> (NAT)<br/>{}{gateway_text}>];",
        html(network),
        html(&ranges)
    );
    out.push_str("    { rank=same;\n");
    for node in nodes {
        let _ = writeln!(
            out,
            "      {} [{}];",
            node_id(&node.name),
            node_attrs(node, true)
        );
    }
    out.push_str("    }\n");
    for node in nodes {
        let _ = writeln!(
            out,
            "    {net} -> {} [class=\"link\", arrowhead=none, color=gray];",
            node_id(&node.name)
        );
    }
    out.push_str("  }\n");
}

/// The API VIP (on the load balancers, or the controllers when there are none) and the
/// controllers' own VIP when the document has one.
fn vips(out: &mut String, doc: &Document) {
    let holders = |role: Role| doc.nodes.iter().filter(move |n| n.has_role(role));
    let api_role = if holders(Role::Lb).next().is_some() {
        Role::Lb
    } else {
        Role::Controller
    };
    let mut vip = |ip: &str, what: &str, role: Role| {
        let vip_id = id(&format!("vip/{ip}"));
        let _ = writeln!(
            out,
            "  {vip_id} [shape=ellipse, style=dashed, label=<{}<br/>{}>];",
            html(what),
            html(ip)
        );
        for node in holders(role) {
            let _ = writeln!(
                out,
                "  {vip_id} -> {} [class=\"vip\", style=dashed, arrowhead=none];",
                node_id(&node.name)
            );
        }
    };
    if let Some(ip) = doc.cluster.api.vip {
        let what = match &doc.cluster.api.endpoint {
            Some(endpoint) => format!("API VIP {endpoint}"),
            None => "API VIP".to_string(),
        };
        vip(&ip.to_string(), &what, api_role);
    }
    let controller_vip = doc
        .cluster
        .extra
        .get("controller_vip")
        .and_then(|v| v.as_str());
    if let Some(ip) = controller_vip
        .filter(|ip| doc.cluster.api.vip.map(|v| v.to_string()).as_deref() != Some(*ip))
    {
        vip(ip, "controller VIP", Role::Controller);
    }
}

fn services(out: &mut String, doc: &Document) {
    let c = &doc.cluster;
    let mut rows = vec![
        format!(
            "<b>service network</b> {}",
            html(&join(&c.networks.service))
        ),
        format!("pod network {}", html(&join(&c.networks.pod))),
    ];
    if let Some(ips) = &c.service_ips {
        rows.push(format!("kubernetes {}", html(&join(&ips.kubernetes))));
        rows.push(format!("dns {}", html(&join(&ips.dns))));
    }
    let _ = writeln!(
        out,
        "  {} [shape=component, style=filled, fillcolor=\"#ffffcc\", label=<{}>];",
        id("services"),
        rows.join("<br/>")
    );
}

/// A legend: the colour of each role, and the two families (text, or arrows for routes).
fn legend(out: &mut String, arrows: bool) {
    out.push_str(
        "  subgraph \"cluster_legend\" {\n    label=\"legend\"; style=dotted; fontsize=10;\n",
    );
    // The roles as the nodes show them: one table, one coloured cell per role.
    let cells: String = ROLE_COLOURS
        .iter()
        .map(|(role, colour)| format!("<td bgcolor=\"{colour}\">{role}</td>"))
        .collect();
    let families = if arrows {
        String::new()
    } else {
        format!(
            "<tr><td colspan=\"2\">{}</td><td colspan=\"2\">{}</td></tr>",
            coloured("0.0.0.0".parse().expect("an address"), "IPv4 address"),
            coloured("::".parse().expect("an address"), "IPv6 address")
        )
    };
    let _ = writeln!(
        out,
        "    {} [shape=plain, label=<<table border=\"0\" cellspacing=\"2\"><tr><td colspan=\"4\">roles</td></tr><tr>{cells}</tr>{families}</table>>];",
        id("legend/roles")
    );
    if arrows {
        for (family, colour, style) in [("IPv4", V4_COLOUR, "solid"), ("IPv6", V6_COLOUR, "dashed")]
        {
            let (tail, head, c) = (
                id(&format!("legend/{family}/from")),
                id(&format!("legend/{family}")),
                id(colour),
            );
            let _ = writeln!(
                out,
                "    {tail} [shape=point, width=0.05];\n    {head} [shape=plaintext, fontcolor={c}, label={}];\n    {tail} -> {head} [class=\"legend\", color={c}, style={style}];",
                id(&format!("{family} route"))
            );
        }
    }
    out.push_str("  }\n");
}

/// A node's box: a table whose top row is one cell per role in the role's colour (as in the
/// legend), the text below on white so every colour stays readable; for the infrastructure
/// picture also its MAC, size and pod CIDRs.
fn node_attrs(node: &Node, details: bool) -> String {
    let roles: Vec<String> = ROLE_COLOURS
        .iter()
        .filter(|(role, _)| node.has_role(*role))
        .map(|(role, colour)| format!("<td bgcolor=\"{colour}\">{role}</td>"))
        .collect();
    let mut rows = vec![format!("<b>{}</b>", html(&node.name))];
    for ip in &node.ips {
        rows.push(coloured(*ip, &ip.to_string()));
    }
    if details {
        rows.push(html(node.mac.as_deref().unwrap_or("no MAC yet")));
        rows.push(html(&format!(
            "{} vCPU, {} RAM, {} GiB disk",
            node.vcpus,
            mib(node.memory_mib),
            node.disk_gib
        )));
        for cidr in &node.pod_cidrs {
            rows.push(coloured(cidr.addr(), &format!("pods {cidr}")));
        }
    }
    let span = roles.len().max(1);
    let body: String = rows
        .iter()
        .map(|row| format!("<tr><td colspan=\"{span}\">{row}</td></tr>"))
        .collect();
    format!(
        "shape=plain, label=<<table border=\"1\" cellborder=\"0\" cellspacing=\"0\" \
         cellpadding=\"2\" bgcolor=\"#ffffff\"><tr>{}</tr>{body}</table>>",
        roles.concat()
    )
}

/// `text` in the colour of `ip`'s family.
fn coloured(ip: IpAddr, text: &str) -> String {
    format!(
        "<font color=\"{}\">{}</font>",
        family_colour(ip),
        html(text)
    )
}

fn mib(memory_mib: u64) -> String {
    if memory_mib % 1024 == 0 {
        format!("{} GiB", memory_mib / 1024)
    } else {
        format!("{memory_mib} MiB")
    }
}

fn family_colour(ip: IpAddr) -> &'static str {
    if ip.is_ipv6() {
        V6_COLOUR
    } else {
        V4_COLOUR
    }
}

fn join<T: ToString>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn node_id(name: &str) -> String {
    id(&format!("node/{name}"))
}

fn pod_id(cidr: &IpNet) -> String {
    id(&format!("pod/{cidr}"))
}

/// A quoted DOT ID: `"` and `\` escaped, line breaks (the document has none) made spaces.
pub fn id(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Text for an HTML-like label: the five XML specials as entities, and `\` doubled, because
/// Graphviz expands `\N`, `\G`, `\L`… in HTML labels too (after entities: `&#92;` would not do).
pub fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two workers, one dual-stack and one IPv4 only whose IPv6 pod CIDR has no gateway.
    fn doc() -> Document {
        serde_json::from_str(
            r#"{"version": 1,
            "cluster": {"name": "c", "domain": "example.com", "cluster_domain": "cluster.local",
              "kubernetes_version": "v1.37.2",
              "networks": {"node": ["10.0.0.0/24"], "pod": ["10.1.0.0/16"], "pod_prefix": [24],
                           "service": ["10.2.0.0/24"]},
              "api": {"port": 6443}, "pod_network": "routes"},
            "hypervisor": {"uri": "qemu:///system", "network": "n", "pool": "default"},
            "nodes": [
              {"name": "b", "roles": ["worker"], "ips": ["10.0.0.3", "fd00::3"],
               "pod_cidrs": ["10.1.1.0/24", "fd01:0:0:1::/64"], "vcpus": 1, "memory_mib": 1024, "disk_gib": 4},
              {"name": "a", "roles": ["worker", "controller"], "ips": ["10.0.0.2"],
               "pod_cidrs": ["10.1.0.0/24", "fd01::/64"], "vcpus": 1, "memory_mib": 1536, "disk_gib": 4}
            ]}"#,
        )
        .unwrap()
    }

    fn labels(routes: &[Route]) -> Vec<String> {
        routes
            .iter()
            .map(|r| format!("{} via {}", r.dst, r.gateway))
            .collect()
    }

    #[test]
    fn routes_skip_the_viewpoint_and_follow_the_family() {
        let doc = doc();
        assert_eq!(
            labels(&pod_routes(&doc, &Viewpoint::Host)),
            [
                "10.1.0.0/24 via 10.0.0.2",
                "10.1.1.0/24 via 10.0.0.3",
                "fd01:0:0:1::/64 via fd00::3"
            ]
        );
        assert_eq!(
            labels(&pod_routes(&doc, &Viewpoint::Node("a".into()))),
            ["10.1.1.0/24 via 10.0.0.3", "fd01:0:0:1::/64 via fd00::3"]
        );
        assert_eq!(
            labels(&pod_routes(&doc, &Viewpoint::Node("b".into()))),
            ["10.1.0.0/24 via 10.0.0.2"]
        );
        let all = cluster_routes(&doc);
        assert_eq!(
            all.iter().map(|v| v.from.clone()).collect::<Vec<_>>(),
            [
                Viewpoint::Host,
                Viewpoint::Node("b".into()),
                Viewpoint::Node("a".into())
            ]
        );
    }

    #[test]
    fn one_route_arrow_per_route_and_the_same_bytes_each_time() {
        let doc = doc();
        let views = cluster_routes(&doc);
        let text = routes(&doc, &views);
        assert_eq!(text.matches("class=\"route\"").count(), 6, "{text}");
        assert_eq!(text, routes(&doc, &cluster_routes(&doc)));
        assert_eq!(infra(&doc), infra(&doc));
    }

    #[test]
    fn several_roles_are_cells_in_legend_order() {
        let doc = doc();
        let text = infra(&doc);
        let cells = "<td bgcolor=\"#9ecae1\">controller</td><td bgcolor=\"#a1d99b\">worker</td>";
        assert!(text.contains(cells), "{text}");
        assert!(text.contains("1 vCPU, 1536 MiB RAM, 4 GiB disk"), "{text}");
    }

    #[test]
    fn nodes_are_grouped_by_their_hypervisor() {
        let mut doc = doc();
        doc.nodes[0].host = Some("qemu+ssh://far/system".into());
        let text = infra(&doc);
        // Hosts sorted by URI: "qemu+ssh://…" before "qemu:///system".
        let far = text.find("cluster_host_0").unwrap();
        let near = text.find("cluster_host_1").unwrap();
        assert!(
            text[far..near].contains("node/b") && !text[far..near].contains("node/a"),
            "{text}"
        );
        assert!(text[near..].contains("\"node/a\" ["), "{text}");
    }

    #[test]
    fn strings_are_escaped() {
        assert_eq!(id(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(id("x\ny"), "\"x y\"");
        assert_eq!(
            html(r#"<a href="x">&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(html(r"\N"), r"\\N");
    }
}
