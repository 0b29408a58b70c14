//! `save`: stream a snapshot from the first member that answers, check it, and write it
//! atomically as `snapshots/etcd-<UTC time>-rev<revision>.db` (0600 in a 0700 directory).

use std::path::PathBuf;
use std::time::Duration;

use hardway::fsutil::{FileSet, OutDir};
use hardway_etcd::{connect, grpc_error, Target, Tls};
use serde::Serialize;

use crate::error::Error;

/// Where under `--dir` snapshots go.
pub const SNAPSHOT_DIR: &str = "snapshots";

/// What was saved: the report `save` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Saved {
    pub file: PathBuf,
    /// The store's revision when the snapshot was taken (the snapshot holds at least this).
    pub revision: i64,
    pub size: u64,
    /// sha256 of the whole file.
    pub sha256: String,
    /// The member it came from.
    pub member: String,
    pub member_id: String,
    pub endpoint: String,
    pub time: String,
}

/// A snapshot in memory with where it came from.
pub struct Streamed {
    pub bytes: Vec<u8>,
    pub revision: i64,
    pub member: String,
    pub member_id: String,
    pub endpoint: String,
}

/// Streams the snapshot from the first target that answers its status.
pub async fn stream(targets: &[Target], tls: &Tls, timeout: Duration) -> Result<Streamed, Error> {
    let mut why = Vec::new();
    for target in targets {
        match stream_one(target, tls, timeout).await {
            Ok(s) => return Ok(s),
            Err(e) => why.push(format!("{}: {e}", target.url)),
        }
    }
    Err(Error::Unavailable(why.join("; ")))
}

async fn stream_one(target: &Target, tls: &Tls, timeout: Duration) -> Result<Streamed, String> {
    let mut client = connect(target, Some(tls), timeout).await?;
    let status = tokio::time::timeout(timeout, client.status())
        .await
        .map_err(|_| format!("no status within {timeout:?}"))?
        .map_err(|e| grpc_error(&e))?;
    let header = status.header().ok_or("no header in the status answer")?;
    let (revision, member_id) = (header.revision(), header.member_id());
    let mut stream = client.snapshot().await.map_err(|e| grpc_error(&e))?;
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.message().await.map_err(|e| grpc_error(&e))? {
        bytes.extend_from_slice(chunk.blob());
    }
    Ok(Streamed {
        bytes,
        revision,
        member: target.name.clone().unwrap_or_else(|| target.url.clone()),
        member_id: format!("{member_id:016x}"),
        endpoint: target.url.clone(),
    })
}

/// `2026-12-02T00:05:00Z` (UTC, seconds).
pub fn stamp(now: time::OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

/// `etcd-20261202T000500Z-rev123.db`: sorts by time, says the revision.
pub fn file_name(now: time::OffsetDateTime, revision: i64) -> String {
    let compact: String = stamp(now)
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    format!("etcd-{compact}-rev{revision}.db")
}

/// Checks the snapshot and writes it under `--dir/snapshots`, through the directory handle
/// (temp file, fsync, rename; never through a link).
pub fn write(out: &OutDir, streamed: Streamed) -> Result<Saved, Error> {
    let now = time::OffsetDateTime::now_utc();
    let rel = format!("{SNAPSHOT_DIR}/{}", file_name(now, streamed.revision));
    let sha256 = crate::verify::verify(&streamed.bytes).map_err(|message| {
        Error::Unavailable(format!(
            "the snapshot from {} failed its check: {message}",
            streamed.endpoint
        ))
    })?;
    let size = streamed.bytes.len() as u64;
    let mut set = FileSet::new();
    set.add(rel.clone(), streamed.bytes, 0o600, 0o700);
    set.commit(out)?;
    Ok(Saved {
        file: out.path().join(rel),
        revision: streamed.revision,
        size,
        sha256,
        member: streamed.member,
        member_id: streamed.member_id,
        endpoint: streamed.endpoint,
        time: stamp(now),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_sort_by_time_and_say_the_revision() {
        let t = time::OffsetDateTime::from_unix_timestamp(1_796_083_500).unwrap();
        assert_eq!(super::file_name(t, 42), "etcd-20261201T000500Z-rev42.db");
        assert_eq!(super::stamp(t), "2026-12-01T00:05:00Z");
    }
}
