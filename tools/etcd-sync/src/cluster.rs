//! Talking to the cluster: list the members (from the first one that answers), ask each for its
//! status, and make one change through a healthy voting member.

use std::time::{Duration, Instant};

use etcd_client::{Client, MemberAddOptions};
use hardway_etcd::{connect, grpc_error, parse_endpoint, Target, Tls};

use crate::error::Error;
use crate::plan::{id_hex, Observed};

/// The member list from the first target that answers, with each member's health.
pub async fn observe(
    targets: &[Target],
    tls: &Tls,
    timeout: Duration,
) -> Result<Vec<Observed>, Error> {
    let mut why = Vec::new();
    for target in targets {
        let listed = async {
            let mut client = connect(target, Some(tls), timeout).await?;
            tokio::time::timeout(timeout, client.member_list())
                .await
                .map_err(|_| format!("no answer within {timeout:?}"))?
                .map_err(|e| grpc_error(&e))
        };
        match listed.await {
            Ok(list) => {
                let members: Vec<Observed> = list
                    .members()
                    .iter()
                    .map(|m| Observed {
                        id: m.id(),
                        name: m.name().to_string(),
                        peer_urls: m.peer_urls().to_vec(),
                        client_urls: m.client_urls().to_vec(),
                        is_learner: m.is_learner(),
                        healthy: false,
                    })
                    .collect();
                return Ok(with_health(members, tls, timeout).await);
            }
            Err(e) => why.push(format!("{}: {e}", target.url)),
        }
    }
    Err(Error::Unavailable(format!(
        "no member listed the members ({})",
        why.join("; ")
    )))
}

/// Asks every started member for its status at once: healthy when it answers and knows a leader.
async fn with_health(mut members: Vec<Observed>, tls: &Tls, timeout: Duration) -> Vec<Observed> {
    let answers = futures::future::join_all(members.iter().map(|m| status(m, tls, timeout))).await;
    for (member, healthy) in members.iter_mut().zip(answers) {
        member.healthy = healthy;
    }
    members
}

async fn status(member: &Observed, tls: &Tls, timeout: Duration) -> bool {
    leader_seen_by(member, tls, timeout)
        .await
        .is_some_and(|(_, leader)| leader != 0)
}

/// A client to `member` and the leader it knows (0: none), when it answers its status.
async fn leader_seen_by(member: &Observed, tls: &Tls, timeout: Duration) -> Option<(Client, u64)> {
    let target = member
        .client_urls
        .first()
        .and_then(|u| parse_endpoint(u).ok())?;
    let mut client = connect(&target, Some(tls), timeout).await.ok()?;
    match tokio::time::timeout(timeout, client.status()).await {
        Ok(Ok(s)) => Some((client, s.leader())),
        _ => None,
    }
}

/// A client to a healthy voting member other than `not` (the member being changed).
async fn voter(
    members: &[Observed],
    not: u64,
    tls: &Tls,
    timeout: Duration,
) -> Result<Client, Error> {
    for m in members
        .iter()
        .filter(|m| m.healthy && !m.is_learner && m.id != not)
    {
        if let Some(target) = m.client_urls.first().and_then(|u| parse_endpoint(u).ok()) {
            if let Ok(client) = connect(&target, Some(tls), timeout).await {
                return Ok(client);
            }
        }
    }
    Err(Error::Unavailable(
        "no healthy voting member to make the change through".into(),
    ))
}

/// etcd's answers that mean "not now" rather than "no": a learner still catching up
/// (`can only promote a learner member which is in sync with leader`), and 3.4's strict
/// reconfiguration check wanting the leader connected to every voter for the last 5 s
/// (`unhealthy cluster`, `not enough started members`; etcd server/etcdserver/server.go
/// mayAddMember / mayRemoveMember).
fn is_not_yet(why: &str) -> bool {
    ["in sync", "unhealthy cluster", "not enough started members"]
        .iter()
        .any(|s| why.contains(s))
}

/// Runs `call` until it succeeds, fails for good, or `bound` has passed while etcd says
/// "not yet"; errors are `what: etcd's message`.
async fn retried<T, F, Fut>(
    what: &str,
    bound: Duration,
    timeout: Duration,
    mut call: F,
) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, etcd_client::Error>>,
{
    let until = Instant::now() + bound;
    loop {
        let why = match tokio::time::timeout(timeout, call()).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) => grpc_error(&e),
            Err(_) => format!("no answer within {timeout:?}"),
        };
        if !is_not_yet(&why) || Instant::now() >= until {
            return Err(Error::Change(format!(
                "{what}: {why} (retried up to --retry-timeout {bound:?})"
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// What a membership change needs to reach the cluster: the members as last observed, the
/// client TLS, each call's timeout, and the bound (--retry-timeout) on retrying etcd's
/// "not yet" answers.
pub struct Reach<'a> {
    pub members: &'a [Observed],
    pub tls: &'a Tls,
    pub timeout: Duration,
    pub bound: Duration,
}

/// `call` on a healthy voter other than member `not` (0: any), retried until the bound.
async fn through_voter<T, F, Fut>(
    reach: &Reach<'_>,
    not: u64,
    what: &str,
    call: F,
) -> Result<T, Error>
where
    F: Fn(Client) -> Fut,
    Fut: std::future::Future<Output = Result<T, etcd_client::Error>>,
{
    let client = voter(reach.members, not, reach.tls, reach.timeout).await?;
    retried(what, reach.bound, reach.timeout, || call(client.clone())).await
}

/// MemberAdd as a learner; returns the new ID and the membership after the add as
/// `(id, name (empty when unstarted), peer URLs)`.
pub async fn add(
    reach: &Reach<'_>,
    peer_url: &str,
) -> Result<(u64, Vec<(u64, String, Vec<String>)>), Error> {
    let what = format!("MemberAdd {peer_url}");
    let response = through_voter(reach, 0, &what, |mut client| {
        let urls = vec![peer_url.to_string()];
        async move {
            client
                .member_add(urls, Some(MemberAddOptions::new().with_is_learner()))
                .await
        }
    })
    .await?;
    let id = response
        .member()
        .map(|m| m.id())
        .ok_or_else(|| Error::Change(format!("{what}: no member in the answer")))?;
    let after = response
        .member_list()
        .iter()
        .map(|m| (m.id(), m.name().to_string(), m.peer_urls().to_vec()))
        .collect();
    Ok((id, after))
}

/// MemberPromote, retried while etcd says the learner has not caught up, until the bound.
pub async fn promote(reach: &Reach<'_>, id: u64) -> Result<(), Error> {
    let what = format!("MemberPromote {}", id_hex(id));
    through_voter(reach, id, &what, |mut client| async move {
        client.member_promote(id).await
    })
    .await?;
    Ok(())
}

/// MemberRemove through another healthy voter, once a leader being removed has handed over.
pub async fn remove(reach: &Reach<'_>, id: u64) -> Result<(), Error> {
    hand_over(reach, id).await?;
    let what = format!("MemberRemove {}", id_hex(id));
    through_voter(reach, id, &what, |mut client| async move {
        client.member_remove(id).await
    })
    .await?;
    Ok(())
}

/// Removing the leader leaves the others without one until an election timeout has passed and
/// they have elected another (writes and quorum reads fail meanwhile): when member `id` leads,
/// it first hands leadership to a healthy voter, as `etcdctl move-leader` does. MoveLeader is
/// served only by the leader (etcd v3.4.23 etcdserver/v3_server.go `MoveLeader`: `ErrNotLeader`
/// otherwise), so it goes to the member itself. A member that does not answer leads nobody.
async fn hand_over(reach: &Reach<'_>, id: u64) -> Result<(), Error> {
    let Some(member) = reach.members.iter().find(|m| m.id == id) else {
        return Ok(());
    };
    let Some((client, leader)) = leader_seen_by(member, reach.tls, reach.timeout).await else {
        return Ok(());
    };
    let heir = reach
        .members
        .iter()
        .find(|m| m.healthy && !m.is_learner && m.id != id);
    let (true, Some(heir)) = (leader == id, heir) else {
        return Ok(());
    };
    hardway::tool::log(
        "etcd-sync",
        format!(
            "{} leads: moving leadership to {} before removing it",
            member.name, heir.name
        ),
    );
    let what = format!("MoveLeader {} to {}", id_hex(id), id_hex(heir.id));
    retried(&what, reach.bound, reach.timeout, || {
        let mut client = client.clone();
        let to = heir.id;
        async move { client.move_leader(to).await }
    })
    .await?;
    Ok(())
}
