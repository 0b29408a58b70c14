//! etcd.service: one member per etcd node, TLS for clients and peers with certificate
//! authentication on both. The first cluster bootstraps from a static initial cluster of every
//! etcd node; a member added later joins it (see [`first_boot`]).

use hardway::doc::{EtcdMemberState, InitialClusterState, Node};
use hardway::paths::etcd as certs;
use hardway::Error;

use super::{url, Builder, Ctx};
use crate::layout;
use crate::unit::{ExecLine, Unit};

pub use hardway::paths::etcd::{CLIENT_PORT, PEER_PORT};
pub const METRICS_PORT: u16 = 2381;

/// etcd's timing flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EtcdTuning {
    pub heartbeat_ms: u32,
    pub election_timeout_ms: u32,
    pub snapshot_count: u64,
}

impl EtcdTuning {
    /// etcd 3.4's own defaults, written out so the unit says what runs.
    pub const DEFAULT: EtcdTuning = EtcdTuning {
        heartbeat_ms: 100,
        election_timeout_ms: 1000,
        snapshot_count: 100_000,
    };

    /// Seed 004's values for slow disks and CPUs: heartbeats every second, an election after
    /// five silent ones, snapshots 20 times as often to keep memory and the WAL small.
    pub const SLOW: EtcdTuning = EtcdTuning {
        heartbeat_ms: 1000,
        election_timeout_ms: 5000,
        snapshot_count: 5000,
    };

    pub fn profile(name: &str) -> Option<EtcdTuning> {
        match name {
            "default" => Some(EtcdTuning::DEFAULT),
            "slow" => Some(EtcdTuning::SLOW),
            _ => None,
        }
    }
}

/// etcd refuses an election timeout under 5 heartbeats (its docs ask for 10) and over 50 s.
pub fn check_tuning(tuning: &EtcdTuning) -> Result<(), Error> {
    if tuning.election_timeout_ms < 5 * tuning.heartbeat_ms {
        return Err(Error::invalid(
            "--etcd-election-timeout",
            format!(
                "{} ms is less than 5 heartbeats of {} ms: etcd would refuse to start; \
                 raise it to at least {}",
                tuning.election_timeout_ms,
                tuning.heartbeat_ms,
                5 * tuning.heartbeat_ms
            ),
        ));
    }
    if tuning.election_timeout_ms > 50_000 {
        return Err(Error::invalid(
            "--etcd-election-timeout",
            format!(
                "{} ms is over etcd's limit of 50000 ms",
                tuning.election_timeout_ms
            ),
        ));
    }
    Ok(())
}

/// `name=https://IP:2380,…` of these nodes.
fn peers(ctx: &Ctx, nodes: &[&Node]) -> Result<String, Error> {
    Ok(nodes
        .iter()
        .map(|n| {
            Ok(format!(
                "{}={}",
                n.name,
                url("https", ctx.primary_ip(n)?, PEER_PORT)
            ))
        })
        .collect::<Result<Vec<_>, Error>>()?
        .join(","))
}

/// The member's `--initial-cluster` and `--initial-cluster-state`. etcd reads them only on the
/// first boot (an empty data dir), so once a member has booted they are history: etcd-sync
/// records them in `nodes[].etcd` and they are rendered from there ever after, so adding or
/// removing another member changes no byte of this member's unit (and restarts nothing).
///
/// - recorded: what the record says (a joiner's comes from its MemberAdd answer);
/// - no record anywhere: the first bootstrap, every etcd node, `new`;
/// - others recorded, this one not: it joins the running cluster, `existing`, with the recorded
///   members plus itself (etcd-sync, run before mkunits, records the exact MemberAdd answer).
pub fn first_boot(ctx: &Ctx, node: &Node) -> Result<(String, &'static str), Error> {
    if let Some(record) = &node.etcd {
        let at = format!("nodes[{}].etcd.initial_cluster", ctx.index_of(node));
        check_initial_cluster(&record.initial_cluster).map_err(|why| Error::invalid(at, why))?;
        let state = match record.initial_cluster_state {
            InitialClusterState::New => "new",
            InitialClusterState::Existing => "existing",
        };
        return Ok((record.initial_cluster.clone(), state));
    }
    let etcd = ctx.etcd_nodes();
    let members: Vec<&Node> = etcd
        .iter()
        .copied()
        .filter(|n| {
            n.etcd
                .as_ref()
                .is_some_and(|r| r.state != EtcdMemberState::Joining)
        })
        .collect();
    if members.is_empty() {
        return Ok((peers(ctx, &etcd)?, "new"));
    }
    let joining: Vec<&Node> = etcd
        .iter()
        .copied()
        .filter(|n| n.name == node.name || members.iter().any(|m| m.name == n.name))
        .collect();
    Ok((peers(ctx, &joining)?, "existing"))
}

/// A recorded `--initial-cluster` reaches a unit: only `NAME=https://IP:PORT` entries pass.
fn check_initial_cluster(text: &str) -> Result<(), String> {
    for entry in text.split(',') {
        let bad = || format!("{entry:?} is not NAME=https://IP:PORT");
        let (name, peer) = entry.split_once('=').ok_or_else(bad)?;
        hardway::validate::node_name(name).map_err(|why| format!("{entry:?}: {why}"))?;
        let address = peer.strip_prefix("https://").ok_or_else(bad)?;
        address.parse::<std::net::SocketAddr>().map_err(|_| bad())?;
    }
    Ok(())
}

pub fn render(ctx: &Ctx, node: &Node, b: &mut Builder) -> Result<(), Error> {
    let ip = ctx.primary_ip(node)?;
    let (initial_cluster, initial_state) = first_boot(ctx, node)?;
    let loopback = "127.0.0.1".parse().expect("an address");
    let tuning = ctx.opts.etcd;
    let exec = ExecLine::new(layout::bin::ETCD)
        .flag("name", &node.name)
        .flag("data-dir", certs::DATA_DIR)
        .flag("cert-file", certs::SERVER_CERT)
        .flag("key-file", certs::SERVER_KEY)
        .flag("trusted-ca-file", certs::CA)
        .flag("client-cert-auth", true)
        .flag("peer-cert-file", certs::PEER_CERT)
        .flag("peer-key-file", certs::PEER_KEY)
        .flag("peer-trusted-ca-file", certs::CA)
        .flag("peer-client-cert-auth", true)
        .flag(
            "listen-client-urls",
            format!(
                "{},{}",
                url("https", ip, CLIENT_PORT),
                url("https", loopback, CLIENT_PORT)
            ),
        )
        .flag("advertise-client-urls", url("https", ip, CLIENT_PORT))
        .flag("listen-peer-urls", url("https", ip, PEER_PORT))
        .flag("initial-advertise-peer-urls", url("https", ip, PEER_PORT))
        .flag("listen-metrics-urls", url("http", loopback, METRICS_PORT))
        .flag("initial-cluster", initial_cluster)
        .flag(
            "initial-cluster-token",
            format!("{}-etcd", ctx.doc.cluster.name),
        )
        .flag("initial-cluster-state", initial_state)
        .flag("heartbeat-interval", tuning.heartbeat_ms)
        .flag("election-timeout", tuning.election_timeout_ms)
        .flag("snapshot-count", tuning.snapshot_count);
    let unit = Unit::daemon(
        "etcd.service",
        "etcd key-value store (Kubernetes' state)",
        "https://etcd.io/docs/v3.4/op-guide/configuration/",
        exec,
    )
    // etcd tells systemd when it has joined the cluster and serves clients.
    .kind("notify")
    .wants(&["network-online.target"])
    .after(&["network-online.target"])
    // A first member waits for a quorum before it is ready: give the others time to start.
    .set("TimeoutStartSec", "300")
    .set("LimitNOFILE", "65536")
    // systemd makes /var/lib/etcd 0700, as etcd wants its data dir.
    .set("StateDirectory", "etcd")
    .set("StateDirectoryMode", "0700");
    b.service(&unit);
    Ok(())
}

#[cfg(test)]
mod tests {
    use hardway::doc::{Document, EtcdMember, EtcdMemberState, InitialClusterState, Role};

    use crate::Options;

    fn lab() -> Document {
        testkit::fixture_document("lab.json")
    }

    /// Each etcd node's etcd.service, by node name.
    fn units(doc: &Document) -> std::collections::BTreeMap<String, String> {
        crate::render::render(doc, &Options::default())
            .unwrap()
            .into_iter()
            .filter_map(|plan| {
                let unit = plan
                    .files
                    .iter()
                    .find(|f| f.dest.ends_with("/etcd.service"))?;
                Some((
                    plan.name.clone(),
                    String::from_utf8(unit.contents.clone()).unwrap(),
                ))
            })
            .collect()
    }

    fn flag<'a>(unit: &'a str, name: &str) -> &'a str {
        let prefix = format!("--{name}=");
        unit.split_whitespace()
            .find_map(|w| w.strip_prefix(prefix.as_str()))
            .unwrap_or_else(|| panic!("no --{name} in {unit}"))
    }

    /// What etcd-sync records after seeing the bootstrapped members.
    fn record_bootstrap(doc: &mut Document) {
        let units = units(doc);
        for (i, node) in doc.nodes.iter_mut().enumerate() {
            if let Some(unit) = units.get(&node.name) {
                node.etcd = Some(EtcdMember {
                    member_id: Some(format!("{:016x}", i + 1)),
                    state: EtcdMemberState::Member,
                    initial_cluster: flag(unit, "initial-cluster").to_string(),
                    initial_cluster_state: InitialClusterState::New,
                    extra: Default::default(),
                });
            }
        }
    }

    fn with_fourth(doc: &Document) -> Document {
        let mut doc = doc.clone();
        let mut node = doc.nodes_with(Role::Etcd).next().unwrap().clone();
        node.name = "etcd-4".into();
        node.ips = vec!["10.240.0.44".parse().unwrap()];
        node.etcd = None;
        node.files.clear();
        doc.nodes.push(node);
        doc
    }

    #[test]
    fn bootstrap_is_new_with_every_etcd_node() {
        let units = units(&lab());
        assert_eq!(units.len(), 3);
        for unit in units.values() {
            assert_eq!(flag(unit, "initial-cluster-state"), "new");
            assert_eq!(flag(unit, "initial-cluster").split(',').count(), 3);
        }
    }

    #[test]
    fn a_joiner_gets_existing_and_the_others_do_not_change() {
        let mut doc = lab();
        record_bootstrap(&mut doc);
        let before = units(&doc);
        assert_eq!(
            before,
            units(&lab()),
            "recording the bootstrap changes no unit"
        );
        let grown = with_fourth(&doc);
        let after = units(&grown);
        let joiner = &after["etcd-4"];
        assert_eq!(flag(joiner, "initial-cluster-state"), "existing");
        let members: Vec<&str> = flag(joiner, "initial-cluster").split(',').collect();
        assert_eq!(members.len(), 4);
        assert!(
            members.contains(&"etcd-4=https://10.240.0.44:2380"),
            "{members:?}"
        );
        for (name, unit) in &before {
            assert_eq!(
                &after[name], unit,
                "{name}'s unit changed when etcd-4 joined"
            );
        }
        // And removing a member again leaves the others alone too.
        let mut shrunk = doc.clone();
        let gone = shrunk
            .nodes
            .iter()
            .position(|n| n.has_role(Role::Etcd))
            .unwrap();
        let gone_name = shrunk.nodes.remove(gone).name;
        let left = units(&shrunk);
        for (name, unit) in &left {
            assert_eq!(
                unit, &before[name],
                "{name}'s unit changed when {gone_name} left"
            );
        }
    }

    #[test]
    fn a_recorded_membership_is_checked_before_it_reaches_the_unit() {
        let mut doc = lab();
        record_bootstrap(&mut doc);
        let i = doc.nodes.iter().position(|n| n.etcd.is_some()).unwrap();
        doc.nodes[i].etcd.as_mut().unwrap().initial_cluster =
            "a=https://10.0.0.1:2380\nExecStartPre=/bin/sh".into();
        let e = crate::render::render(&doc, &Options::default()).unwrap_err();
        assert!(e.to_string().contains("etcd.initial_cluster"), "{e}");
    }
}
