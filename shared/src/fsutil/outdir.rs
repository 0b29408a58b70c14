//! The output directory (`--dir`) of a run, held open and locked.
//!
//! Everything under it is reached from its directory fd, one component at a time, with
//! `O_NOFOLLOW|O_DIRECTORY`: a symlink, a FIFO or a directory another user owns anywhere under
//! `--dir` is refused (exit 2), never followed, so no one who can plant a name there can make a
//! run read or write outside it. Temp files get an unguessable name, are created with
//! `O_CREAT|O_EXCL` (which never follows a link) and mode 0600, and get their final mode before
//! the first byte is written. A writing run holds `flock(LOCK_EX)` on `--dir/.hardway.lock` from
//! open to exit, so two runs on one directory never mix their files.

use std::ffi::OsStr;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{self as rfs, AtFlags, FileType, FlockOperation, Mode, OFlags, Stat};
use rustix::io::Errno;

use super::ancestors::{self, display};
use crate::error::Error;

/// The lock file every writing run takes, in `--dir`.
pub const LOCK_FILE: &str = ".hardway.lock";
/// What every temp file's name contains: `.NAME.hardway-tmp.RANDOM`.
pub const TEMP_MARK: &str = ".hardway-tmp.";
/// How often a run waiting for the lock tries again.
const LOCK_POLL: Duration = Duration::from_millis(50);

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);
/// Opening an existing file to read it: never a link, never blocking on a FIFO, never a tty.
const READ_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::NOFOLLOW)
    .union(OFlags::NONBLOCK)
    .union(OFlags::NOCTTY)
    .union(OFlags::CLOEXEC);

/// How a run uses `--dir`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Make it (with this mode) if missing, and hold its lock, waiting at most this long.
    Write { mode: u32, lock_timeout: Duration },
    /// Read what is there (`--dry-run`): create nothing, take no lock.
    Read,
}

/// `--dir`, opened once per run.
#[derive(Debug)]
pub struct OutDir {
    path: PathBuf,
    /// `None`: it does not exist (only with [`Access::Read`]); every file counts as missing.
    root: Option<OwnedFd>,
    uid: u32,
    /// Held, never read: the flock lasts as long as the fd.
    _lock: Option<OwnedFd>,
    /// This run made `--dir` (its parent and name): removed again when the run wrote nothing.
    made: Option<(OwnedFd, std::ffi::OsString)>,
}

/// A plain file found under `--dir`.
#[derive(Debug)]
pub(super) struct Found {
    pub contents: Vec<u8>,
    pub stat: Stat,
}

impl OutDir {
    pub fn open(path: &Path, access: Access) -> Result<OutDir, Error> {
        let uid = rustix::process::geteuid().as_raw();
        let (mode, lock_timeout) = match access {
            Access::Write { mode, lock_timeout } => (mode, lock_timeout),
            Access::Read => {
                let root = ancestors::open_own_dir(path, uid, None)?;
                return Ok(OutDir {
                    path: path.to_path_buf(),
                    root: root.map(|opened| opened.dir),
                    uid,
                    _lock: None,
                    made: None,
                });
            }
        };
        let deadline = Instant::now() + lock_timeout;
        loop {
            let opened = ancestors::open_own_dir(path, uid, Some(mode))?
                .ok_or_else(|| Error::invalid(display(path), "could not be made"))?;
            let shown = path.join(LOCK_FILE);
            // The lock is only good if it is still the lock file in a --dir still in place: a
            // run that failed on a fresh --dir removes both, and the waiter starts over.
            if let Some(lock) = lock(&opened.dir, &shown, uid, deadline)? {
                return Ok(OutDir {
                    path: path.to_path_buf(),
                    root: Some(opened.dir),
                    uid,
                    _lock: Some(lock),
                    made: opened.made,
                });
            }
        }
    }

    /// The user this run writes as: what owns every directory and file it trusts.
    pub(super) fn uid(&self) -> u32 {
        self.uid
    }

    /// `--dir` as the user gave it.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `--dir/rel`, for messages.
    pub fn shown(&self, rel: &str) -> String {
        display(&self.path.join(rel))
    }

    /// The contents of `rel` if it exists, for a run to build on (an existing key or
    /// certificate): it must be a plain file the running user owns, with no other name (a hard
    /// link could be another user's file).
    pub fn read(&self, rel: &str) -> Result<Option<Vec<u8>>, Error> {
        let Some(found) = self.find(rel)? else {
            return Ok(None);
        };
        if found.stat.st_uid != self.uid {
            return Err(self.refuse(
                rel,
                format!(
                    "is owned by uid {}, not by you (uid {}): refusing to use it",
                    found.stat.st_uid, self.uid
                ),
            ));
        }
        if found.stat.st_nlink > 1 {
            return Err(self.refuse(
                rel,
                format!(
                    "has {} hard links: it may be another file's second name; remove it",
                    found.stat.st_nlink
                ),
            ));
        }
        Ok(Some(found.contents))
    }

    /// Reads `rel` without trusting it (to compare it with what a run would write). `None`: it
    /// does not exist, or a directory on the way does not.
    pub(super) fn find(&self, rel: &str) -> Result<Option<Found>, Error> {
        let (dirs, name) = split(rel)?;
        let Some(dir) = self.walk(&dirs, None)? else {
            return Ok(None);
        };
        let Some(stat) = self.stat_plain(&dir, rel, name)? else {
            return Ok(None);
        };
        let fd = rfs::openat(&dir, name, READ_FLAGS, Mode::empty()).map_err(|e| self.io(rel, e))?;
        let opened = rfs::fstat(&fd).map_err(|e| self.io(rel, e))?;
        if (opened.st_dev, opened.st_ino) != (stat.st_dev, stat.st_ino) {
            return Err(self.refuse(rel, "was replaced while being read"));
        }
        let mut contents = Vec::new();
        std::fs::File::from(fd)
            .read_to_end(&mut contents)
            .map_err(|e| Error::input(self.shown(rel), e))?;
        Ok(Some(Found {
            contents,
            stat: opened,
        }))
    }

    /// The files under the directory `rel`, depth first, as paths under `--dir`, sorted; `None`
    /// when it does not exist. Only real directories are entered; anything else is listed (and
    /// [`OutDir::read`] refuses what is not a plain file of yours).
    pub fn list(&self, rel: &str) -> Result<Option<Vec<String>>, Error> {
        let dirs: Vec<&OsStr> = components(rel)?;
        let Some(dir) = self.walk(&dirs, None)? else {
            return Ok(None);
        };
        let mut files = Vec::new();
        self.list_into(&dir, Path::new(rel), &mut files)?;
        files.sort();
        Ok(Some(files))
    }

    fn list_into(&self, dir: &OwnedFd, rel: &Path, files: &mut Vec<String>) -> Result<(), Error> {
        let shown = rel.to_string_lossy().into_owned();
        for entry in rfs::Dir::read_from(dir).map_err(|e| self.io(&shown, e))? {
            let entry = entry.map_err(|e| self.io(&shown, e))?;
            let name = OsStr::from_bytes(entry.file_name().to_bytes());
            if name == "." || name == ".." {
                continue;
            }
            let path = rel.join(name);
            if self.is_dir(dir, name) {
                let sub = rfs::openat(dir, name, DIR_FLAGS, Mode::empty())
                    .map_err(|e| self.io(&path.to_string_lossy(), e))?;
                self.list_into(&sub, &path, files)?;
            } else {
                files.push(path.to_string_lossy().into_owned());
            }
        }
        Ok(())
    }

    /// Whether anything is at `rel` (a link counts, and is not followed).
    pub fn exists(&self, rel: &str) -> Result<bool, Error> {
        let (dirs, name) = split(rel)?;
        let Some(dir) = self.walk(&dirs, None)? else {
            return Ok(false);
        };
        match rfs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(_) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(self.io(rel, e)),
        }
    }

    /// Removes `rel` (a file an earlier run wrote) without following a link: a symlink there is
    /// removed, not its target. Returns whether there was anything to remove.
    pub fn remove(&self, rel: &str) -> Result<bool, Error> {
        let (dirs, name) = split(rel)?;
        let Some(dir) = self.walk(&dirs, None)? else {
            return Ok(false);
        };
        match rfs::unlinkat(&dir, name, AtFlags::empty()) {
            Ok(()) => {
                rfs::fsync(&dir).map_err(|e| self.io(&parent(rel), e))?;
                Ok(true)
            }
            Err(Errno::NOENT) => Ok(false),
            Err(Errno::ISDIR) | Err(Errno::PERM) if self.is_dir(&dir, name) => {
                Err(self.refuse(rel, "is a directory, not a file this tool wrote"))
            }
            Err(e) => Err(self.io(rel, e)),
        }
    }

    /// Makes the directory `rel` (and its missing parents) with `mode`; see [`OutDir::walk`].
    pub fn ensure_dir(&self, rel: &str, mode: u32) -> Result<(), Error> {
        let dirs: Vec<&OsStr> = components(rel)?;
        self.walk(&dirs, Some(mode)).map(drop)
    }

    /// Opens the directory `dirs` under `--dir`, one component at a time. Each must be a real
    /// directory (not a symlink) the running user owns. With `make`: missing ones are created
    /// with that mode, and existing ones are brought to it when others can write them or when
    /// it is private (a directory holding keys is always 0700). `Ok(None)`: a directory is
    /// missing and `make` is `None`.
    pub(super) fn walk(
        &self,
        dirs: &[&OsStr],
        make: Option<u32>,
    ) -> Result<Option<OwnedFd>, Error> {
        let Some(root) = &self.root else {
            return Ok(None);
        };
        let mut at =
            rfs::openat(root, ".", DIR_FLAGS, Mode::empty()).map_err(|e| self.io("", e))?;
        let mut rel = PathBuf::new();
        for name in dirs {
            rel.push(name);
            let shown = rel.to_string_lossy().into_owned();
            let Some((next, made)) = self.step(&at, name, &shown, make)? else {
                return Ok(None);
            };
            self.own_dir(&next, &shown, make, made)?;
            at = next;
        }
        Ok(Some(at))
    }

    /// Opens the directory `name` in `at`, making it if missing and `make` says so (`true` in
    /// the answer: it was made now).
    fn step(
        &self,
        at: &OwnedFd,
        name: &OsStr,
        shown: &str,
        make: Option<u32>,
    ) -> Result<Option<(OwnedFd, bool)>, Error> {
        match rfs::openat(at, name, DIR_FLAGS, Mode::empty()) {
            Ok(fd) => Ok(Some((fd, false))),
            Err(Errno::NOENT) => {
                let Some(mode) = make else {
                    return Ok(None);
                };
                match rfs::mkdirat(at, name, Mode::from_raw_mode(mode)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(self.io(shown, e)),
                }
                rfs::openat(at, name, DIR_FLAGS, Mode::empty())
                    .map(|fd| Some((fd, true)))
                    .map_err(|e| self.not_a_dir(at, shown, name, e))
            }
            Err(e) => Err(self.not_a_dir(at, shown, name, e)),
        }
    }

    /// A directory under `--dir` must be yours. With `make`, one made now gets exactly that mode
    /// (the umask may have narrowed it), and an existing one is brought to it when others can
    /// write it or when `make` is private.
    fn own_dir(
        &self,
        dir: &OwnedFd,
        shown: &str,
        make: Option<u32>,
        made: bool,
    ) -> Result<(), Error> {
        let stat = rfs::fstat(dir).map_err(|e| self.io(shown, e))?;
        if stat.st_uid != self.uid {
            return Err(self.refuse(
                shown,
                format!(
                    "is owned by uid {}, not by you (uid {}): refusing to use it",
                    stat.st_uid, self.uid
                ),
            ));
        }
        let Some(mode) = make else {
            return Ok(());
        };
        let have = stat.st_mode & 0o7777;
        if have != mode && (made || have & 0o022 != 0 || mode & 0o077 == 0) {
            rfs::fchmod(dir, Mode::from_raw_mode(mode)).map_err(|e| self.io(shown, e))?;
        }
        Ok(())
    }

    /// The kind of what is at `name` (already known not to open as a directory), as an error.
    fn not_a_dir(&self, at: &OwnedFd, rel: &str, name: &OsStr, e: Errno) -> Error {
        match rfs::statat(at, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) if FileType::from_raw_mode(stat.st_mode) == FileType::Symlink => self.refuse(
                rel,
                "is a symlink: hardway never follows links under --dir; remove it",
            ),
            Ok(stat) if FileType::from_raw_mode(stat.st_mode) != FileType::Directory => {
                self.refuse(rel, "is not a directory")
            }
            _ => self.io(rel, e),
        }
    }

    /// `Ok(None)`: nothing at `name`. A symlink, FIFO, device or directory is refused.
    pub(super) fn stat_plain(
        &self,
        dir: &OwnedFd,
        rel: &str,
        name: &OsStr,
    ) -> Result<Option<Stat>, Error> {
        match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => match FileType::from_raw_mode(stat.st_mode) {
                FileType::RegularFile => Ok(Some(stat)),
                FileType::Symlink => Err(self.refuse(
                    rel,
                    "is a symlink: hardway never follows links under --dir; remove it",
                )),
                other => Err(self.refuse(
                    rel,
                    format!("is a {}, not a regular file; remove it", kind(other)),
                )),
            },
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(self.io(rel, e)),
        }
    }

    fn is_dir(&self, dir: &OwnedFd, name: &OsStr) -> bool {
        rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|s| FileType::from_raw_mode(s.st_mode) == FileType::Directory)
    }

    pub(super) fn refuse(&self, rel: &str, message: impl Into<String>) -> Error {
        Error::invalid(self.shown(rel), message)
    }

    pub(super) fn io(&self, rel: &str, e: Errno) -> Error {
        Error::io(self.shown(rel), e.into())
    }
}

impl Drop for OutDir {
    /// The lock file stays (as dpkg's does): removing it would change `--dir` on every run, even
    /// one that writes nothing. But a run that made `--dir` and wrote nothing into it (bad
    /// input) leaves no trace: the lock file and the directory go, while the lock is still held
    /// (a run waiting on it finds it gone and starts over, see [`lock`]).
    fn drop(&mut self) {
        let (Some((parent, name)), Some(root)) = (&self.made, &self.root) else {
            return;
        };
        let Ok(entries) = rfs::Dir::read_from(root) else {
            return;
        };
        let only_lock = entries.into_iter().all(|entry| {
            entry.is_ok_and(|e| {
                let name = e.file_name().to_bytes();
                name == b"." || name == b".." || name == LOCK_FILE.as_bytes()
            })
        });
        if only_lock {
            let _ = rfs::unlinkat(root, LOCK_FILE, AtFlags::empty());
            let _ = rfs::unlinkat(parent, name.as_os_str(), AtFlags::REMOVEDIR);
        }
    }
}

/// Takes the run's lock on `--dir`, waiting until `deadline` for another run to finish.
/// `Ok(None)`: the lock file was removed while waiting (see [`OutDir::open`]).
fn lock(
    root: &OwnedFd,
    shown: &Path,
    uid: u32,
    deadline: Instant,
) -> Result<Option<OwnedFd>, Error> {
    let flags = OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rfs::openat(root, LOCK_FILE, flags, Mode::from_raw_mode(0o600)).map_err(|e| {
        if e == Errno::LOOP {
            Error::invalid(
                display(shown),
                "is a symlink: hardway never follows links under --dir; remove it",
            )
        } else {
            ancestors::io(shown, e)
        }
    })?;
    let stat = rfs::fstat(&fd).map_err(|e| ancestors::io(shown, e))?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile || stat.st_uid != uid {
        return Err(Error::invalid(
            display(shown),
            "is not a regular file you own: remove it",
        ));
    }
    loop {
        match rfs::flock(&fd, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {
                let now = rfs::statat(root, LOCK_FILE, AtFlags::SYMLINK_NOFOLLOW);
                let same =
                    now.is_ok_and(|now| (now.st_dev, now.st_ino) == (stat.st_dev, stat.st_ino));
                return Ok(same.then_some(fd));
            }
            Err(Errno::WOULDBLOCK) if Instant::now() < deadline => std::thread::sleep(LOCK_POLL),
            Err(Errno::WOULDBLOCK) => {
                return Err(Error::io(
                    display(shown),
                    std::io::Error::new(
                        ErrorKind::WouldBlock,
                        "another run on this --dir still holds the lock (see --lock-timeout)",
                    ),
                ))
            }
            Err(Errno::INTR) => {}
            Err(e) => return Err(ancestors::io(shown, e)),
        }
    }
}

/// `a/b/c` → (`[a, b]`, `c`); anything but plain names (`..`, `/`, `.`) is refused, so a path
/// from a document can never leave `--dir`.
pub(super) fn split(rel: &str) -> Result<(Vec<&OsStr>, &OsStr), Error> {
    let mut parts = components(rel)?;
    let name = parts
        .pop()
        .ok_or_else(|| Error::invalid(rel.to_string(), "is not a file path"))?;
    Ok((parts, name))
}

fn components(rel: &str) -> Result<Vec<&OsStr>, Error> {
    Path::new(rel)
        .components()
        .map(|c| match c {
            Component::Normal(name) => Ok(name),
            _ => Err(Error::invalid(
                rel.to_string(),
                "is not a plain relative path under --dir (no '..', '.' or leading '/')",
            )),
        })
        .collect()
}

/// `a/b/c` → `a/b`.
pub(super) fn parent(rel: &str) -> String {
    Path::new(rel)
        .parent()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn kind(file_type: FileType) -> &'static str {
    match file_type {
        FileType::Fifo => "FIFO",
        FileType::Socket => "socket",
        FileType::CharacterDevice => "character device",
        FileType::BlockDevice => "block device",
        FileType::Directory => "directory",
        _ => "special file",
    }
}

/// Writes a new temp file next to `name` in `dir`: `O_CREAT|O_EXCL` at an unguessable name, mode
/// 0600 until `fchmod` gives it `mode` before any byte is written, then fsynced. Returns its name.
pub(super) fn write_temp(
    out: &OutDir,
    dir: &OwnedFd,
    rel: &str,
    name: &OsStr,
    contents: &[u8],
    mode: u32,
) -> Result<Vec<u8>, Error> {
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let (temp, fd) = loop {
        let temp = temp_name(name);
        match rfs::openat(dir, temp.as_slice(), flags, Mode::from_raw_mode(0o600)) {
            Ok(fd) => break (temp, fd),
            // Someone made that name first: pick another, never reuse theirs.
            Err(Errno::EXIST) => continue,
            Err(e) => return Err(out.io(rel, e)),
        }
    };
    let written = (|| {
        rfs::fchmod(&fd, Mode::from_raw_mode(mode))?;
        let mut file = std::fs::File::from(fd);
        file.write_all(contents)?;
        file.sync_all()
    })();
    match written {
        Ok(()) => Ok(temp),
        Err(e) => {
            let _ = rfs::unlinkat(dir, temp.as_slice(), AtFlags::empty());
            Err(Error::io(out.shown(rel), e))
        }
    }
}

/// `.NAME.hardway-tmp.` and 12 random letters and digits: no other user can guess it in time.
fn temp_name(name: &OsStr) -> Vec<u8> {
    use rand::distr::{Alphanumeric, SampleString};
    let mut temp = b".".to_vec();
    temp.extend_from_slice(name.as_bytes());
    temp.extend_from_slice(TEMP_MARK.as_bytes());
    temp.extend_from_slice(Alphanumeric.sample_string(&mut rand::rng(), 12).as_bytes());
    temp
}

/// True for a temp file of a run that was killed before renaming it: ours (`.X.hardway-tmp.R`)
/// and those of hardway before 0.2 (`.X.tmp.PID`).
fn is_orphan_temp(name: &[u8]) -> bool {
    let Some(rest) = name.strip_prefix(b".") else {
        return false;
    };
    let text = String::from_utf8_lossy(rest);
    if let Some((_, suffix)) = text.rsplit_once(TEMP_MARK) {
        return !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_alphanumeric());
    }
    text.rsplit_once(".tmp.")
        .is_some_and(|(_, pid)| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
}

/// Removes the orphan temp files in `dir` (links themselves, never what they point at). Called
/// with the lock held, so no live run's temp file can be among them.
pub(super) fn remove_orphans(out: &OutDir, dir: &OwnedFd, rel: &str) -> Result<(), Error> {
    let entries = rfs::Dir::read_from(dir).map_err(|e| out.io(rel, e))?;
    let mut orphans = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| out.io(rel, e))?;
        let name = entry.file_name().to_bytes();
        if is_orphan_temp(name) && entry.file_type() != FileType::Directory {
            orphans.push(name.to_vec());
        }
    }
    for name in &orphans {
        match rfs::unlinkat(dir, name.as_slice(), AtFlags::empty()) {
            // A directory by that name (when the file system gave no type) is not a temp file.
            Ok(()) | Err(Errno::NOENT) | Err(Errno::ISDIR) => {}
            Err(e) => return Err(out.io(rel, e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orphan_temps_are_ours_and_the_old_pid_scheme_only() {
        assert!(is_orphan_temp(b".ca-key.pem.hardway-tmp.Ab3dE9xYz012"));
        assert!(is_orphan_temp(b".ca-key.pem.tmp.4242"));
        assert!(!is_orphan_temp(b"ca-key.pem.tmp.4242"));
        assert!(!is_orphan_temp(b".ca-key.pem"));
        assert!(!is_orphan_temp(b".ca-key.pem.tmp.x1"));
        assert!(!is_orphan_temp(b".hardway.lock"));
    }

    #[test]
    fn paths_from_a_document_cannot_leave_the_dir() {
        assert!(split("nodes/a/etc/hosts").is_ok());
        assert!(split("../x").is_err());
        assert!(split("/etc/passwd").is_err());
        assert!(split("nodes/./x").is_ok()); // Path drops a middle `.`
        assert!(split("").is_err());
    }
}
