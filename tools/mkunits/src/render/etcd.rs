//! etcd.service: one member per etcd node, TLS for clients and peers with certificate
//! authentication on both, a static initial cluster of every etcd node.

use hardway::doc::Node;
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

pub fn render(ctx: &Ctx, node: &Node, b: &mut Builder) -> Result<(), Error> {
    let ip = ctx.primary_ip(node)?;
    let initial_cluster = ctx
        .etcd_nodes()
        .into_iter()
        .map(|n| {
            Ok(format!(
                "{}={}",
                n.name,
                url("https", ctx.primary_ip(n)?, PEER_PORT)
            ))
        })
        .collect::<Result<Vec<_>, Error>>()?
        .join(",");
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
        .flag("initial-cluster-state", "new")
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
