//! cidr-alloc: decide every address of the cluster, once, up front.
//!
//! `plan` holds the allocator (a document in, a document out, no I/O); this module reads the
//! input, the previous output and the host's routes, and prints the result.

pub mod cli;
pub mod error;
pub mod mac;
pub mod plan;
pub mod pool;
pub mod routes;
pub mod split;

use std::path::{Path, PathBuf};

use clap::ArgMatches;
use hardway::table::{self, Format};
use hardway::{validate, Document, Exit};

pub use error::Error;
pub use plan::{allocate, Options, Previous};

pub fn run(matches: &ArgMatches) -> Result<Exit, Error> {
    use cli::options::*;
    if let Some(split) = matches.subcommand_matches(SPLIT) {
        let text = split.get_one::<String>(RANGE).expect("required");
        let range = validate::network(text).map_err(|why| Error::invalid("RANGE", why))?;
        let prefix = *split.get_one::<u8>(PREFIX).expect("required");
        let count = *split.get_one::<u64>(COUNT).expect("required");
        let nets = split::split(range, prefix, u128::from(count))?;
        hardway::io::print_json(&nets)?;
        return Ok(Exit::Ok);
    }

    let avoid = matches
        .get_many::<String>(AVOID)
        .into_iter()
        .flatten()
        .map(|t| validate::network(t).map_err(|why| Error::invalid("--avoid", why)))
        .collect::<Result<Vec<_>, _>>()?;
    let options = Options {
        avoid,
        host_routes: if matches.get_flag(AVOID_HOST_ROUTES) {
            Some(routes::read()?)
        } else {
            None
        },
        pods_on_controllers: matches.get_flag(PODS_ON_CONTROLLERS),
    };
    let input = matches.get_one::<PathBuf>(FILE);
    let document = hardway::doc::read(input.map(|p| p as &Path))?;
    let previous_path = matches.get_one::<PathBuf>(PREVIOUS);
    let previous = match previous_path {
        Some(path) => read_previous(path)?,
        None => None,
    };
    let path_text = previous_path
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let previous = previous.as_ref().map(|document| Previous {
        path: &path_text,
        document,
    });
    let document = allocate(document, previous, &options)?;
    match matches.get_one::<String>(OUTPUT).map(String::as_str) {
        Some(DOT) => hardway::io::print(&hardway::dot::infra(&document))?,
        Some(DOT_ROUTES) => hardway::io::print(&hardway::dot::routes(
            &document,
            &hardway::dot::cluster_routes(&document),
        ))?,
        format => match format.and_then(Format::parse).unwrap_or_default() {
            Format::Json => hardway::doc::write(&document, std::io::stdout().lock())?,
            Format::Table => hardway::io::print(&render_table(&document))?,
        },
    }
    Ok(Exit::Ok)
}

/// The previous output, or `None` when the file does not exist yet.
pub fn read_previous(path: &Path) -> Result<Option<Document>, Error> {
    hardway::doc::read_previous(path).map_err(|e| Error::Previous {
        path: path.display().to_string(),
        message: match e {
            hardway::Error::Input { source, .. } => format!("cannot read it: {source}"),
            e => format!("{e} (it must be an earlier output of cidr-alloc)"),
        },
    })
}

/// Nodes, roles, IPs, pod CIDRs and MACs for people, then the cluster-wide addresses.
pub fn render_table(document: &Document) -> String {
    let join = |items: Vec<String>| {
        if items.is_empty() {
            "-".to_string()
        } else {
            items.join(",")
        }
    };
    let rows = document.nodes.iter().map(|n| {
        vec![
            n.name.clone(),
            join(n.roles.iter().map(ToString::to_string).collect()),
            join(n.ips.iter().map(ToString::to_string).collect()),
            join(n.pod_cidrs.iter().map(ToString::to_string).collect()),
            n.mac.clone().unwrap_or_else(|| "-".into()),
        ]
    });
    let mut text = table::render(&["name", "roles", "ips", "pod cidrs", "mac"], rows);
    let cluster = &document.cluster;
    let mut summary = Vec::new();
    if let Some(endpoint) = &cluster.api.endpoint {
        summary.push(vec!["api endpoint".to_string(), endpoint.clone()]);
    }
    if let Some(vip) = cluster
        .extra
        .get(plan::CONTROLLER_VIP)
        .and_then(|v| v.as_str())
    {
        summary.push(vec!["controller vip".to_string(), vip.to_string()]);
    }
    let list = |ips: &[std::net::IpAddr]| {
        ips.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    if let Some(services) = &cluster.service_ips {
        summary.push(vec![
            "kubernetes service".into(),
            list(&services.kubernetes),
        ]);
        summary.push(vec!["dns service".into(), list(&services.dns)]);
    }
    let nets = |nets: &[ipnet::IpNet]| {
        nets.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    summary.push(vec!["node network".into(), nets(&cluster.networks.node)]);
    summary.push(vec!["pod network".into(), nets(&cluster.networks.pod)]);
    summary.push(vec![
        "service network".into(),
        nets(&cluster.networks.service),
    ]);
    text.push('\n');
    text.push_str(&table::render(&["cluster", "value"], summary));
    text
}
