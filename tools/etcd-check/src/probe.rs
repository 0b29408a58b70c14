//! Talking to the members: every member at once, each over its own connections, all under one
//! deadline.
//!
//! Per member: a TCP connect, then our own TLS handshake (tokio-rustls) — the gRPC client does
//! not expose the server's certificate, and a client certificate the server refuses only shows
//! up after a TLS 1.3 handshake "succeeded", so this probe writes the HTTP/2 preface and waits
//! for the server's first frame to tell "accepted" from "refused" with the server's own alert.
//! Then a plain (not load-balanced) tonic channel to that one endpoint and, in parallel: status,
//! a serializable read, a linearizable read, the alarm list and the member list.
//!
//! Answers are written into the member's [`MemberReport`] as they arrive. At the deadline the
//! unfinished futures are dropped and what is left under way is reported as "no answer".

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcd_client::{AlarmAction, AlarmType, Client, ConnectOptions, GetOptions};
use hardway_etcd::{error_chain, grpc_error};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout_at;

use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::TlsConnector;

pub use hardway_etcd::Tls;

use crate::input::{Host, Options, Target};
use crate::report::{self, steps, CertInfo, ListedMember, MemberReport};

/// The key read to test a member, as `etcdctl endpoint health` reads it.
const HEALTH_KEY: &str = "health";

/// The deadline for a check that must end within `timeout`: a little is kept back for printing
/// the report, so the command as a whole stays within it.
pub fn deadline(start: Instant, timeout: Duration) -> Instant {
    let reserve = (timeout / 20).min(Duration::from_millis(100));
    start + timeout - reserve
}

/// Checks every member in parallel and returns their finalized reports, in the targets' order.
pub async fn check_all(
    options: &Options,
    tls: Option<&Arc<Tls>>,
    deadline: Instant,
) -> Vec<MemberReport> {
    let records: Vec<Arc<Mutex<MemberReport>>> = options
        .targets
        .iter()
        .map(|t| Arc::new(Mutex::new(MemberReport::new(t.name.clone(), t.url.clone()))))
        .collect();
    let lost = Arc::new(Lost {
        members: AtomicUsize::new(0),
        total: options.targets.len(),
    });
    let probes = options
        .targets
        .iter()
        .zip(&records)
        .map(|(target, record)| {
            probe(
                target,
                tls.cloned(),
                record.clone(),
                options.connect_timeout,
                deadline.into(),
                lost.clone(),
            )
        });
    // Dropping the unfinished probes at the deadline is what bounds the command's time.
    let _ = timeout_at(deadline.into(), futures::future::join_all(probes)).await;
    records
        .iter()
        .map(|r| {
            let mut member = lock(r).clone();
            member.finalize();
            member
        })
        .collect()
}

fn lock(record: &Mutex<MemberReport>) -> std::sync::MutexGuard<'_, MemberReport> {
    // A probe never panics while holding the lock; recover the data if one did.
    record.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `future` as step `name` of the member, recording its outcome; `None` when it failed.
async fn step<T>(
    record: &Mutex<MemberReport>,
    name: &'static str,
    future: impl std::future::Future<Output = Result<T, String>>,
) -> Option<T> {
    let index = lock(record).begin(name);
    let result = future.await;
    let mut member = lock(record);
    match result {
        Ok(value) => {
            member.finish(index, Ok(()));
            Some(value)
        }
        Err(e) => {
            member.finish(index, Err(e));
            None
        }
    }
}

/// TCP, our TLS probe, and the gRPC channel; `None` when the member cannot be talked to.
async fn connect(
    target: &Target,
    tls: Option<Arc<Tls>>,
    record: Arc<Mutex<MemberReport>>,
    connect_timeout: Duration,
    deadline: tokio::time::Instant,
) -> Option<(Client, Client)> {
    let dial = Dial {
        record: &record,
        timeout: connect_timeout,
        deadline: (tokio::time::Instant::now() + connect_timeout).min(deadline),
    };
    let tcp = dial.tcp(target).await?;
    if target.tls {
        let tls = tls.as_ref().expect("https targets have TLS settings");
        let mut stream = dial.tls(target, tls, tcp).await?;
        dial.client_cert_accepted(&mut stream).await?;
    } else {
        drop(tcp);
    }
    let channel = dial.grpc(target, tls.as_deref()).await?;
    clients(channel).await
}

/// One member's connection steps, under the connect timeout.
struct Dial<'a> {
    record: &'a Mutex<MemberReport>,
    timeout: Duration,
    /// The connect timeout from now, or the check's deadline when sooner.
    deadline: tokio::time::Instant,
}

type TlsStream = tokio_rustls::client::TlsStream<TcpStream>;

impl Dial<'_> {
    fn no_answer(&self, what: &str) -> String {
        format!("no answer within {:?} ({what})", self.timeout)
    }

    async fn tcp(&self, target: &Target) -> Option<TcpStream> {
        let address = format!("{}:{}", target.host, target.port);
        let tcp = step(self.record, steps::TCP, async {
            match timeout_at(self.deadline, TcpStream::connect(address.as_str())).await {
                Err(_) => Err(self.no_answer("host down or packets dropped?")),
                Ok(Err(e)) => Err(format!("{address}: {e}")),
                Ok(Ok(stream)) => Ok(stream),
            }
        })
        .await?;
        let _ = tcp.set_nodelay(true);
        Some(tcp)
    }

    /// Our own TLS handshake, which records the server certificate's expiry.
    async fn tls(&self, target: &Target, tls: &Tls, tcp: TcpStream) -> Option<TlsStream> {
        let server_name = match &target.host {
            Host::Ip(ip) => ServerName::IpAddress((*ip).into()),
            Host::Name(name) => match ServerName::try_from(name.clone()) {
                Ok(n) => n,
                Err(e) => {
                    let index = lock(self.record).begin(steps::TLS);
                    lock(self.record).finish(index, Err(e.to_string()));
                    return None;
                }
            },
        };
        let connector = TlsConnector::from(tls.rustls.clone());
        let stream = step(self.record, steps::TLS, async {
            match timeout_at(self.deadline, connector.connect(server_name, tcp)).await {
                Err(_) => Err(self.no_answer(
                    "the member accepts connections but does not answer: stopped or overloaded?",
                )),
                Ok(Err(e)) => Err(explain_tls(&e)),
                Ok(Ok(stream)) => Ok(stream),
            }
        })
        .await?;
        if let Some(cert) = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
        {
            lock(self.record).cert = cert_info(cert);
        }
        Some(stream)
    }

    /// Whether the member accepted our client certificate: a TLS 1.3 server refuses it only
    /// after the handshake, so this writes the HTTP/2 client preface and an empty SETTINGS
    /// frame; a server that accepted answers with its SETTINGS, one that refused with an alert.
    async fn client_cert_accepted(&self, stream: &mut TlsStream) -> Option<()> {
        step(self.record, steps::CLIENT_CERT, async {
            let exchange = async {
                stream
                    .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
                    .await?;
                let mut buf = [0u8; 9];
                stream.read(&mut buf).await
            };
            match timeout_at(self.deadline, exchange).await {
                Err(_) => Err(self.no_answer("no HTTP/2 settings after the TLS handshake")),
                Ok(Ok(0)) => Err(
                    "the member closed the connection after the TLS handshake: it refused our client certificate (is it signed by the etcd CA? give --cert and --key)"
                        .to_string(),
                ),
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(explain_tls(&e)),
            }
        })
        .await
    }

    /// A plain (not load-balanced) tonic channel to this one endpoint.
    async fn grpc(&self, target: &Target, tls: Option<&Tls>) -> Option<tonic::transport::Channel> {
        step(self.record, steps::GRPC, async {
            let mut endpoint = tonic::transport::Endpoint::from_shared(target.url.clone())
                .map_err(|e| e.to_string())?
                .connect_timeout(self.timeout)
                .tcp_nodelay(true);
            if let Some(tls) = tls.filter(|_| target.tls) {
                endpoint = endpoint
                    .tls_config(tls.tonic.clone())
                    .map_err(|e| e.to_string())?;
            }
            match timeout_at(self.deadline, endpoint.connect()).await {
                Err(_) => Err(self.no_answer("gRPC connection")),
                Ok(Err(e)) => Err(error_chain(&e)),
                Ok(Ok(channel)) => Ok(channel),
            }
        })
        .await
    }
}

/// A client for plain requests and one for quorum reads over the same channel. Quorum reads
/// carry etcd's "require leader" flag: a member without a leader says so at once instead of
/// holding the request until the deadline.
async fn clients(channel: tonic::transport::Channel) -> Option<(Client, Client)> {
    let client = Client::from_channel(etcd_client::Channel::Tonic(channel.clone()), None)
        .await
        .ok()?;
    let leader_client = Client::from_channel(
        etcd_client::Channel::Tonic(channel),
        Some(ConnectOptions::new().with_require_leader(true)),
    )
    .await
    .ok()?;
    Some((client, leader_client))
}

/// Counts members that cannot be talked to, so a leaderless member stops waiting for an
/// election once too few members are left for a quorum.
struct Lost {
    members: AtomicUsize,
    total: usize,
}

impl Lost {
    fn quorum_impossible(&self) -> bool {
        self.members.load(Ordering::Relaxed) > self.total - (self.total / 2 + 1)
    }
}

/// Everything asked of one member, in parallel once it is connected.
async fn probe(
    target: &Target,
    tls: Option<Arc<Tls>>,
    record: Arc<Mutex<MemberReport>>,
    connect_timeout: Duration,
    deadline: tokio::time::Instant,
    lost: Arc<Lost>,
) {
    let start = Instant::now();
    let Some((client, leader_client)) =
        connect(target, tls, record.clone(), connect_timeout, deadline).await
    else {
        lost.members.fetch_add(1, Ordering::Relaxed);
        return;
    };
    tokio::join!(
        status(&client, &record),
        serializable_read(&client, &record),
        linearizable_read(&client, &leader_client, &record, deadline, &lost),
        members(&client, &record),
    );
    lock(&record).took_ms = Some(report::millis(start.elapsed()));
}

async fn status(client: &Client, record: &Mutex<MemberReport>) {
    let mut maintenance = client.maintenance_client();
    if let Some(s) = step(record, steps::STATUS, async {
        maintenance.status().await.map_err(|e| grpc_error(&e))
    })
    .await
    {
        apply_status(&mut lock(record), &s);
    }
}

/// A local read; the round trip is timed on a second read, as the first one shares the new
/// connection's start with every other request.
async fn serializable_read(client: &Client, record: &Mutex<MemberReport>) {
    let mut kv = client.kv_client();
    let local = || GetOptions::new().with_serializable();
    let ok = step(record, steps::SERIALIZABLE, async {
        kv.get(HEALTH_KEY, Some(local()))
            .await
            .map_err(|e| grpc_error(&e))
    })
    .await;
    if ok.is_some() {
        let started = Instant::now();
        if kv.get(HEALTH_KEY, Some(local())).await.is_ok() {
            lock(record).rtt_ms = Some(report::millis(started.elapsed()));
        }
    }
}

/// A quorum read, then the alarm list (it goes through raft: asked only once a quorum read
/// showed there is a leader to answer it; a member without one reports its alarms in its
/// status).
async fn linearizable_read(
    client: &Client,
    leader_client: &Client,
    record: &Mutex<MemberReport>,
    deadline: tokio::time::Instant,
    lost: &Lost,
) {
    let mut kv = leader_client.kv_client();
    let mut maintenance = client.maintenance_client();
    let mut retried = false;
    let read = step(record, steps::LINEARIZABLE, async {
        loop {
            match kv.get(HEALTH_KEY, None).await {
                Ok(_) => return Ok(()),
                // Mid-election a member has no leader for a moment: ask again until the
                // deadline (which drops this future) rather than call it down.
                Err(e) if is_no_leader(&e) => {
                    retried = true;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    let late = tokio::time::Instant::now() + Duration::from_millis(100) >= deadline;
                    if late || lost.quorum_impossible() {
                        return Err(format!(
                            "{} (the member has no leader: quorum lost?)",
                            grpc_error(&e)
                        ));
                    }
                }
                Err(e) => return Err(grpc_error(&e)),
            }
        }
    })
    .await;
    if read.is_none() {
        return;
    }
    // The leader changed while we read: the first status is stale, take a fresh one.
    if retried {
        if let Ok(s) = maintenance.status().await {
            apply_status(&mut lock(record), &s);
        }
    }
    if let Some(list) = step(record, steps::ALARMS, async {
        maintenance
            .alarm(AlarmAction::Get, AlarmType::None, None)
            .await
            .map_err(|e| grpc_error(&e))
    })
    .await
    {
        let seen = list
            .alarms()
            .iter()
            .filter(|a| a.alarm() != AlarmType::None)
            .map(|a| (a.member_id(), alarm_name(a.alarm()).to_string()))
            .collect();
        lock(record).seen_alarms = Some(seen);
    }
}

async fn members(client: &Client, record: &Mutex<MemberReport>) {
    let mut cluster = client.cluster_client();
    if let Some(list) = step(record, steps::MEMBERS, async {
        cluster.member_list().await.map_err(|e| grpc_error(&e))
    })
    .await
    {
        let listed = list
            .members()
            .iter()
            .map(|m| ListedMember {
                id: format!("{:016x}", m.id()),
                name: m.name().to_string(),
                client_urls: m.client_urls().to_vec(),
                is_learner: m.is_learner(),
            })
            .collect();
        lock(record).seen_members = Some(listed);
    }
}

fn apply_status(m: &mut MemberReport, s: &etcd_client::StatusResponse) {
    let header = s.header();
    let id = header.map(|h| h.member_id()).unwrap_or(0);
    m.cluster_id = header.map(|h| h.cluster_id());
    m.member_id = Some(format!("{id:016x}"));
    m.version = Some(s.version().to_string());
    m.leader = Some(format!("{:016x}", s.leader()));
    m.is_leader = Some(id != 0 && s.leader() == id);
    m.is_learner = Some(s.is_learner());
    m.raft_term = Some(s.raft_term());
    m.raft_index = Some(s.raft_index());
    m.raft_applied_index = Some(s.raft_applied_index());
    m.db_size = Some(s.db_size());
    m.db_size_in_use = Some(s.raft_used_db_size());
    // etcd 3.4 lists active alarms among the status errors ("memberID:N alarm:NOSPACE "):
    // known locally, even on a member that lost its leader and cannot serve the alarm list.
    let (alarms, errors): (Vec<&String>, Vec<&String>) =
        s.errors().iter().partition(|e| parse_alarm(e).is_some());
    m.status_alarms = alarms.iter().filter_map(|e| parse_alarm(e)).collect();
    m.errors = errors.into_iter().cloned().collect();
}

/// Parses etcd's `memberID:8971179542620195430 alarm:NOSPACE ` (the ID in decimal).
fn parse_alarm(text: &str) -> Option<(u64, String)> {
    let mut words = text.split_whitespace();
    let id = words.next()?.strip_prefix("memberID:")?.parse().ok()?;
    let alarm = words.next()?.strip_prefix("alarm:")?;
    Some((id, alarm.to_string()))
}

fn alarm_name(alarm: AlarmType) -> &'static str {
    match alarm {
        AlarmType::Nospace => "NOSPACE",
        AlarmType::Corrupt => "CORRUPT",
        AlarmType::None => "NONE",
    }
}

fn is_no_leader(error: &etcd_client::Error) -> bool {
    matches!(error, etcd_client::Error::GRpcStatus(s) if (s.message().contains("no leader") || s.message().contains("leader changed")))
}

/// A TLS failure with what it most likely means.
fn explain_tls(error: &std::io::Error) -> String {
    let detail = error_chain(error);
    let hint = if detail.contains("UnknownIssuer") || detail.contains("BadSignature") {
        " (the member's certificate is not signed by the CA given: check --cacert or the document's etcd-ca)"
    } else if detail.contains("NotValidForName") {
        " (the member's certificate does not name this address: check its SANs)"
    } else if detail.contains("Expired") {
        " (the member's certificate has expired: renew it, e.g. mkcerts renew)"
    } else if detail.contains("alert") {
        " (the member refused our client certificate: is it signed by the etcd CA? check --cert and --key)"
    } else {
        ""
    };
    format!("{detail}{hint}")
}

fn cert_info(der: &CertificateDer<'_>) -> Option<CertInfo> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let not_after = cert.validity().not_after.to_datetime();
    let now = time::OffsetDateTime::now_utc();
    Some(CertInfo {
        subject: cert.subject().to_string(),
        not_after: not_after
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        days_left: (not_after - now).whole_days(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn alarms_in_status_errors() {
        assert_eq!(
            super::parse_alarm("memberID:8971179542620195430 alarm:NOSPACE "),
            Some((8971179542620195430, "NOSPACE".to_string()))
        );
        assert_eq!(super::parse_alarm("etcdserver: no leader"), None);
    }
}
