//! cidr-alloc: decide every address of the cluster, once, up front.
//!
//! `plan` holds the allocator (a document in, a document out, no I/O); this module reads the
//! input, the previous output and the host's routes, and prints the result.

pub mod cli;
pub mod error;
pub mod hosts;
pub mod invocation;
pub mod mac;
pub mod plan;
pub mod pool;
pub mod routes;
pub mod split;

use std::path::Path;

use clap::ArgMatches;
use hardway::table::{self, Format};
use hardway::{Document, Exit};

pub use error::Error;
pub use invocation::{AllocateOptions, Invocation, Output};
pub use plan::{allocate, Options, Previous};

pub fn run(matches: &ArgMatches) -> Result<Exit, Error> {
    match Invocation::from_matches(matches)? {
        Invocation::Split {
            range,
            prefix,
            count,
        } => hardway::io::print_json(&split::split(range, prefix, u128::from(count))?)?,
        Invocation::Allocate(options) => allocate_and_print(&options)?,
    }
    Ok(Exit::Ok)
}

/// Reads the input, the previous output and (when asked) the host's routes, allocates, and
/// prints the result as `-o` says.
fn allocate_and_print(args: &AllocateOptions) -> Result<(), Error> {
    let options = Options {
        avoid: args.avoid.clone(),
        host_routes: if args.avoid_host_routes {
            Some(routes::read()?)
        } else {
            None
        },
        pods_on_controllers: args.pods_on_controllers,
    };
    let document = hardway::doc::read(args.file.as_deref())?;
    let previous = match &args.previous {
        Some(path) => read_previous(path)?,
        None => None,
    };
    let path_text = args
        .previous
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let previous = previous.as_ref().map(|document| Previous {
        path: &path_text,
        document,
    });
    let document = allocate(document, previous, &options)?;
    match args.output {
        Output::Dot => hardway::io::print(&hardway::dot::infra(&document))?,
        Output::DotRoutes => hardway::io::print(&hardway::dot::routes(
            &document,
            &hardway::dot::cluster_routes(&document),
        ))?,
        Output::Format(Format::Json) => hardway::doc::write(&document, std::io::stdout().lock())?,
        Output::Format(Format::Table) => hardway::io::print(&render_table(&document))?,
    }
    Ok(())
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
