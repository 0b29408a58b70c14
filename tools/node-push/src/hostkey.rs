//! Host key verification against an OpenSSH known_hosts file, through libssh2's known-hosts API.
//!
//! libssh2 matches plain, `[host]:port` and hashed (`|1|salt|hash`) entries. Its file reader
//! stops at the first line it cannot parse (an `@cert-authority` line, a security key type), which
//! would silently drop every later entry, so this module feeds it the file line by line and skips
//! only the lines it cannot read. `@revoked` keys are refused. A new key is added as one line after
//! the file's existing bytes, which are kept as they are, so entries libssh2 does not understand
//! survive; the write itself is `hardway::fsutil`'s (no symlink followed, temp file and rename).

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use hardway::fsutil::{Access, FileSet, OutDir};
use sha2::{Digest, Sha256};
use ssh2::{CheckResult, KnownHostFileKind, KnownHosts, MethodType, Session};

use crate::error::NodeError;
use crate::plan::Target;

/// How long recording a key waits for another run holding the known_hosts directory's lock.
const APPEND_LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// The known_hosts file, read once, shared by every node's thread.
pub struct KnownHostsFile {
    pub path: PathBuf,
    lines: Vec<String>,
    append_lock: Mutex<()>,
}

/// What the host key check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The key is recorded for this host.
    Known,
    /// The host was unknown; with `--accept-new` its key was recorded (this line).
    Recorded(String),
}

impl KnownHostsFile {
    /// Reads `path`; a missing file counts as empty (a first run, as OpenSSH).
    pub fn load(path: &Path) -> Result<KnownHostsFile, hardway::Error> {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == ErrorKind::NotFound => String::new(),
            Err(e) => return Err(hardway::Error::input(path.display().to_string(), e)),
        };
        Ok(KnownHostsFile {
            path: path.to_path_buf(),
            lines: text.lines().map(String::from).collect(),
            append_lock: Mutex::new(()),
        })
    }

    /// The entries libssh2 can read, loaded into a collection bound to `session`, and the
    /// `@revoked` entries in another.
    fn for_session(&self, session: &Session) -> Result<(KnownHosts, KnownHosts), ssh2::Error> {
        let mut known = session.known_hosts()?;
        let mut revoked = session.known_hosts()?;
        for line in &self.lines {
            let trimmed = line.trim_start();
            if let Some(rest) = trimmed.strip_prefix("@revoked") {
                let _ = revoked.read_str(rest.trim_start(), KnownHostFileKind::OpenSSH);
            } else if !trimmed.starts_with('@') {
                let _ = known.read_str(trimmed, KnownHostFileKind::OpenSSH);
            }
        }
        Ok((known, revoked))
    }

    /// Adds one line, creating the file 0600 and its directory 0700 when missing.
    ///
    /// The file is rewritten whole (its old bytes, then the line) through `hardway::fsutil`:
    /// opened from its directory's fd without following a symlink, written to an exclusive temp
    /// name and renamed, mode 0600, under the directory's lock, so a link planted at the path
    /// cannot redirect the write and two runs at once do not interleave their lines. Entries
    /// libssh2 does not understand are kept byte for byte.
    fn append(&self, line: &str) -> Result<(), hardway::Error> {
        let _guard = self.append_lock.lock().unwrap_or_else(|e| e.into_inner());
        let dir = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let name = self
            .path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| {
                hardway::Error::invalid(self.path.display().to_string(), "not a file name")
            })?;
        let out = OutDir::open(
            dir,
            Access::Write {
                mode: 0o700,
                lock_timeout: APPEND_LOCK_TIMEOUT,
            },
        )?;
        let mut text = out.read(name)?.unwrap_or_default();
        // Two nodes behind one address (tests, port forwards) record it once.
        if String::from_utf8_lossy(&text)
            .lines()
            .any(|l| l.trim() == line)
        {
            return Ok(());
        }
        // A file whose last line lacks its newline must not get our entry glued to it.
        if !text.is_empty() && !text.ends_with(b"\n") {
            text.push(b'\n');
        }
        text.extend_from_slice(line.as_bytes());
        text.push(b'\n');
        let mut files = FileSet::new();
        files.add(name, text, 0o600, 0o700);
        files.commit(&out)?;
        Ok(())
    }
}

/// Before the handshake: offers the key types already recorded for this host first, as OpenSSH
/// does, so a host known by its ECDSA key is not reported as changed because libssh2 would
/// otherwise pick its ed25519 key. Returns the recorded key blobs.
pub fn prefer_recorded(
    session: &Session,
    file: &KnownHostsFile,
    target: &Target,
) -> Result<Vec<Vec<u8>>, NodeError> {
    let (known, _) = file
        .for_session(session)
        .map_err(NodeError::ssh("known_hosts"))?;
    let recorded = recorded_keys(&known, target);
    if recorded.is_empty() {
        return Ok(recorded);
    }
    let supported = session
        .supported_algs(MethodType::HostKey)
        .map_err(NodeError::ssh("host key algorithms"))?;
    let mut order: Vec<&str> = Vec::new();
    for blob in &recorded {
        let Some(alg) = key_algorithm(blob) else {
            continue;
        };
        let wanted: &[&str] = if alg == "ssh-rsa" {
            &["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]
        } else {
            &[alg]
        };
        for want in wanted {
            if let Some(s) = supported.iter().find(|s| *s == want) {
                if !order.contains(s) {
                    order.push(s);
                }
            }
        }
    }
    for s in &supported {
        if !order.contains(s) {
            order.push(s);
        }
    }
    session
        .method_pref(MethodType::HostKey, &order.join(","))
        .map_err(NodeError::ssh("host key algorithms"))?;
    Ok(recorded)
}

/// After the handshake, before anything is sent: accepts a recorded key, records a new one with
/// `accept_new`, refuses a changed or revoked one with both fingerprints.
pub fn verify(
    session: &Session,
    file: &KnownHostsFile,
    target: &Target,
    recorded: &[Vec<u8>],
    accept_new: bool,
) -> Result<Verdict, NodeError> {
    let (blob, _) = session
        .host_key()
        .ok_or_else(|| NodeError::Protocol("the server sent no host key".into()))?;
    let offered = fingerprint(blob);
    let (known, revoked) = file
        .for_session(session)
        .map_err(NodeError::ssh("known_hosts"))?;
    if matches!(
        revoked.check_port(&target.host, target.port, blob),
        CheckResult::Match
    ) {
        return Err(NodeError::HostKeyRevoked {
            offered,
            file: file.path.display().to_string(),
        });
    }
    match known.check_port(&target.host, target.port, blob) {
        CheckResult::Match => Ok(Verdict::Known),
        CheckResult::Mismatch => Err(NodeError::HostKeyChanged {
            offered,
            recorded: recorded.iter().map(|b| fingerprint(b)).collect(),
            file: file.path.display().to_string(),
        }),
        CheckResult::NotFound if accept_new => {
            let line = known_hosts_line(target, blob)
                .ok_or_else(|| NodeError::Protocol("the host key is malformed".into()))?;
            file.append(&line).map_err(NodeError::KnownHosts)?;
            Ok(Verdict::Recorded(line))
        }
        CheckResult::NotFound => Err(NodeError::HostKeyUnknown {
            offered,
            file: file.path.display().to_string(),
        }),
        CheckResult::Failure => Err(NodeError::Protocol(format!(
            "cannot check the host key against {}",
            file.path.display()
        ))),
    }
}

/// The blobs of every key recorded for this host (plain, `[host]:port` or hashed entries).
fn recorded_keys(known: &KnownHosts, target: &Target) -> Vec<Vec<u8>> {
    let mut blobs: Vec<Vec<u8>> = Vec::new();
    let Ok(hosts) = known.hosts() else {
        return blobs;
    };
    let names = [target.host.clone(), target.known_hosts_name()];
    for host in hosts {
        // A plain entry for another host cannot match: skip the key check for it.
        if let Some(name) = host.name() {
            if !name.split(',').any(|n| names.iter().any(|m| m == n)) {
                continue;
            }
        }
        let Ok(blob) = STANDARD.decode(host.key().trim()) else {
            continue;
        };
        if blobs.contains(&blob) {
            continue;
        }
        if matches!(
            known.check_port(&target.host, target.port, &blob),
            CheckResult::Match
        ) {
            blobs.push(blob);
        }
    }
    blobs
}

/// `SHA256:…` of a key blob, as `ssh-keygen -l` and OpenSSH's warnings print it.
pub fn fingerprint(blob: &[u8]) -> String {
    format!("SHA256:{}", STANDARD_NO_PAD.encode(Sha256::digest(blob)))
}

/// The algorithm name a key blob starts with (`ssh-ed25519`, `ecdsa-sha2-nistp256`, …).
fn key_algorithm(blob: &[u8]) -> Option<&str> {
    let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    std::str::from_utf8(blob.get(4..4 + len)?).ok()
}

/// The line OpenSSH would write for this host and key.
fn known_hosts_line(target: &Target, blob: &[u8]) -> Option<String> {
    let alg = key_algorithm(blob)?;
    Some(format!(
        "{} {alg} {}",
        target.known_hosts_name(),
        STANDARD.encode(blob)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    // From `ssh-keygen -t ed25519`; `ssh-keygen -lf` prints the fingerprint below.
    const PUB: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIIW7ql9FxDQKuUWVzDuA/RWyjW4jCQpo4RvQgV5eGY69";
    const PUB_FINGERPRINT: &str = "SHA256:WctEZdk9C+gy2fGELylnLPK2NHYxcP49ZPVcEMIdzuA";

    #[test]
    fn fingerprints_and_lines_look_like_openssh() {
        let blob = STANDARD.decode(PUB).unwrap();
        assert_eq!(key_algorithm(&blob), Some("ssh-ed25519"));
        assert_eq!(fingerprint(&blob), PUB_FINGERPRINT);
        let target = Target::parse("127.0.0.1:2222", 22).unwrap();
        assert_eq!(
            known_hosts_line(&target, &blob).unwrap(),
            format!("[127.0.0.1]:2222 ssh-ed25519 {PUB}")
        );
    }

    #[test]
    fn recorded_keys_match_plain_port_and_hashed_entries() {
        let session = Session::new().unwrap();
        let blob = STANDARD.decode(PUB).unwrap();
        let target = Target::parse("10.0.0.5:2222", 22).unwrap();
        for line in [
            format!("[10.0.0.5]:2222 ssh-ed25519 {PUB}"),
            // `ssh-keygen -H` of the line above.
            hashed_line("[10.0.0.5]:2222"),
        ] {
            let file = KnownHostsFile {
                path: "x".into(),
                lines: vec!["@cert-authority * ssh-ed25519 AAAA".into(), line.clone()],
                append_lock: Mutex::new(()),
            };
            let (known, _) = file.for_session(&session).unwrap();
            assert_eq!(recorded_keys(&known, &target), vec![blob.clone()], "{line}");
            let other = Target::parse("10.0.0.6:2222", 22).unwrap();
            assert!(recorded_keys(&known, &other).is_empty());
        }
    }

    fn file_at(path: &Path) -> KnownHostsFile {
        KnownHostsFile {
            path: path.to_path_buf(),
            lines: vec![],
            append_lock: Mutex::new(()),
        }
    }

    /// A first key creates the file 0600 in a new 0700 directory; the next keeps the old bytes
    /// (a last line without its newline too) and adds one line; the same line is added once.
    #[test]
    fn recording_a_key_keeps_the_file_and_adds_one_line() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("ssh/known_hosts");
        let file = file_at(&path);
        file.append("a ssh-ed25519 AAAA").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "a ssh-ed25519 AAAA\n");
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        fs::write(&path, "@cert-authority * ssh-ed25519 AAAA").unwrap();
        file.append("b ssh-ed25519 BBBB").unwrap();
        file.append("b ssh-ed25519 BBBB").unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "@cert-authority * ssh-ed25519 AAAA\nb ssh-ed25519 BBBB\n"
        );
    }

    /// A symlink planted at the known_hosts path is refused: its target is not written.
    #[test]
    fn a_symlink_at_known_hosts_is_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let victim = tmp.path().join("victim");
        fs::write(&victim, "root:x:0:0::/root:/bin/sh\n").unwrap();
        let path = tmp.path().join("known_hosts");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        let err = file_at(&path).append("evil ssh-ed25519 AAAA").unwrap_err();
        assert_eq!(hardway::Failure::exit(&err), hardway::Exit::Usage, "{err}");
        assert_eq!(
            fs::read_to_string(&victim).unwrap(),
            "root:x:0:0::/root:/bin/sh\n"
        );
        assert!(fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_symlink());
    }

    /// A hashed entry, as `ssh-keygen -H` writes it (HMAC-SHA1 of the name with a salt).
    fn hashed_line(name: &str) -> String {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "f=$(mktemp) && echo '{name} ssh-ed25519 {PUB}' > $f && ssh-keygen -H -f $f >/dev/null 2>&1 && grep -v '^#' $f; rm -f $f $f.old"
            ))
            .output()
            .expect("ssh-keygen -H");
        let line = String::from_utf8(out.stdout).unwrap().trim().to_string();
        assert!(line.starts_with("|1|"), "ssh-keygen -H gave {line:?}");
        line
    }
}
