//! Atomic, idempotent file writes.
//!
//! Every file a tool writes goes to a temporary name in the same directory, gets its mode, is
//! fsynced and renamed over the target, so a reader never sees half a file and a failed run leaves
//! the old one. A file whose content and mode already match is not touched at all (its mtime stays),
//! which is what makes a second run of a tool a no-op.
//!
//! Files under a tool's `--dir` go through [`OutDir`] and [`FileSet`]: opened relative to
//! directory fds, never through a symlink, under the directory's lock (see [`outdir`]).
//! [`write_atomic`] is for a single file the user names (a report), which may be a FIFO or
//! `/dev/stderr` on purpose.

mod ancestors;
pub mod outdir;

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{ErrorKind, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::fs::{self as rfs, AtFlags};
use sha2::{Digest, Sha256};

use crate::error::Error;
pub use outdir::{Access, OutDir};

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Created,
    Updated,
    Unchanged,
}

/// sha256 of bytes, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The id of the `--lock-timeout` option of every tool that writes under `--dir`.
pub const LOCK_TIMEOUT: &str = "lock-timeout";

/// `--lock-timeout SECONDS`: how long a run waits for another run on the same `--dir`.
pub fn lock_timeout_arg() -> clap::Arg {
    clap::Arg::new(LOCK_TIMEOUT)
        .long(LOCK_TIMEOUT)
        .value_name("SECONDS")
        .value_parser(clap::value_parser!(u64).range(0..=86_400))
        .default_value("60")
        .help(
            "Wait at most SECONDS for another run on the same --dir to finish (each run holds \
             an flock on DIR/.hardway.lock from start to end); then exit 3. 0: fail at once",
        )
}

/// The value of [`lock_timeout_arg`].
pub fn lock_timeout(matches: &clap::ArgMatches) -> Duration {
    Duration::from_secs(matches.get_one::<u64>(LOCK_TIMEOUT).copied().unwrap_or(60))
}

/// Writes `contents` to `path` with `mode` atomically, unless it already holds exactly that.
/// The parent directory must exist.
///
/// A path that exists and is not a regular file — `/dev/null`, a FIFO, `/dev/stderr`, a symlink —
/// is written into, as a shell's `>` would, never renamed over: renaming a temp file over
/// `/dev/null` would replace the device for the whole machine.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<Written, Error> {
    let what = || path.display().to_string();
    if is_special(path)? {
        OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|mut file| file.write_all(contents))
            .map_err(|e| Error::io(what(), e))?;
        return Ok(Written::Updated);
    }
    let existing = match fs::read(path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io(what(), e)),
    };
    if existing.as_deref() == Some(contents) {
        let current = fs::metadata(path).map_err(|e| Error::io(what(), e))?;
        if current.permissions().mode() & 0o7777 == mode {
            return Ok(Written::Unchanged);
        }
        fs::set_permissions(path, Permissions::from_mode(mode))
            .map_err(|e| Error::io(what(), e))?;
        return Ok(Written::Updated);
    }
    let temp = write_temp(path, contents, mode)?;
    if let Err(e) = fs::rename(&temp, path) {
        let _ = fs::remove_file(&temp);
        return Err(Error::io(what(), e));
    }
    sync_parent(path)?;
    Ok(if existing.is_some() {
        Written::Updated
    } else {
        Written::Created
    })
}

/// True when `path` exists and is not a regular file (a device, FIFO, socket, directory or symlink).
fn is_special(path: &Path) -> Result<bool, Error> {
    match fs::symlink_metadata(path) {
        Ok(meta) => Ok(!meta.file_type().is_file()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io(path.display().to_string(), e)),
    }
}

/// Writes a sibling temp file with the final mode already set, fsynced; returns its path. The
/// name is random and `create_new` (`O_EXCL`) never opens what is already there, link or not.
fn write_temp(path: &Path, contents: &[u8], mode: u32) -> Result<PathBuf, Error> {
    use rand::distr::{Alphanumeric, SampleString};
    let name = path
        .file_name()
        .ok_or_else(|| Error::invalid(path.display().to_string(), "not a file path"))?;
    let temp = path.with_file_name(format!(
        ".{}{}{}",
        name.to_string_lossy(),
        outdir::TEMP_MARK,
        Alphanumeric.sample_string(&mut rand::rng(), 12)
    ));
    let result = (|| {
        let mut file: File = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        // The umask may have narrowed the mode given to open(2); set it exactly, before writing.
        file.set_permissions(Permissions::from_mode(mode))?;
        file.write_all(contents)?;
        file.sync_all()
    })();
    match result {
        Ok(()) => Ok(temp),
        Err(e) => {
            if e.kind() != ErrorKind::AlreadyExists {
                let _ = fs::remove_file(&temp);
            }
            Err(Error::io(path.display().to_string(), e))
        }
    }
}

fn sync_parent(path: &Path) -> Result<(), Error> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)
        .and_then(|dir| dir.sync_all())
        .map_err(|e| Error::io(parent.display().to_string(), e))
}

/// What committing a file does to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create,
    Update,
    Unchanged,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Unchanged => "unchanged",
        }
    }
}

/// A set of files under an [`OutDir`], written all together or not at all.
///
/// `commit` first writes every changed file to its temp name; only when all of them are on disk
/// does it rename them into place. A failure while writing temps removes them (and the
/// directories it made) and leaves every target as it was, which is how a tool that fails
/// half-way leaves no partial output. [`FileSet::preview`] is the one decision of what changes,
/// for `--dry-run` and for `commit` itself.
#[derive(Debug, Default)]
pub struct FileSet {
    files: Vec<StagedFile>,
}

#[derive(Debug)]
struct StagedFile {
    /// Path under `--dir`.
    rel: String,
    contents: Vec<u8>,
    mode: u32,
    /// Mode of the directories on its way (see [`OutDir::walk`]).
    dir_mode: u32,
}

/// What a committed [`FileSet`] did (or would do) to each path under `--dir`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Committed {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub unchanged: Vec<String>,
}

impl Committed {
    fn from_actions(actions: &[(String, Action)]) -> Committed {
        let mut done = Committed::default();
        for (rel, action) in actions {
            match action {
                Action::Create => done.created.push(rel.clone()),
                Action::Update => done.updated.push(rel.clone()),
                Action::Unchanged => done.unchanged.push(rel.clone()),
            }
        }
        done
    }
}

/// A temp file on disk, waiting to be renamed over its target.
struct Temp {
    dir: String,
    temp: Vec<u8>,
    name: std::ffi::OsString,
}

impl FileSet {
    pub fn new() -> FileSet {
        FileSet::default()
    }

    /// Adds a file at `rel` under `--dir`; directories on its way get `dir_mode`.
    pub fn add(&mut self, rel: impl Into<String>, contents: Vec<u8>, mode: u32, dir_mode: u32) {
        self.files.push(StagedFile {
            rel: rel.into(),
            contents,
            mode,
            dir_mode,
        });
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// What committing would do to each file, in the order added; writes nothing. A symlink,
    /// FIFO or foreign directory on the way is refused here, before anything is written.
    pub fn preview(&self, out: &OutDir) -> Result<Vec<(String, Action)>, Error> {
        self.files
            .iter()
            .map(|file| Ok((file.rel.clone(), action(out, file)?)))
            .collect()
    }

    /// Writes every file whose content or mode changed; touches none of the others.
    pub fn commit(self, out: &OutDir) -> Result<Committed, Error> {
        let actions = self.preview(out)?;
        self.tidy_dirs(out)?;
        let pending: Vec<&StagedFile> = self
            .files
            .iter()
            .zip(&actions)
            .filter(|(_, (_, action))| *action != Action::Unchanged)
            .map(|(file, _)| file)
            .collect();
        let made = missing_dirs(out, &pending)?;
        let mut dirs: BTreeMap<String, OwnedFd> = BTreeMap::new();
        let mut temps = Vec::new();
        if let Err(e) = stage(out, &pending, &mut dirs, &mut temps) {
            for temp in &temps {
                let _ = rfs::unlinkat(&dirs[&temp.dir], temp.temp.as_slice(), AtFlags::empty());
            }
            undo_dirs(out, &made);
            return Err(e);
        }
        for temp in &temps {
            let dir = &dirs[&temp.dir];
            let rel = Path::new(&temp.dir).join(&temp.name);
            rfs::renameat(dir, temp.temp.as_slice(), dir, temp.name.as_os_str())
                .map_err(|e| out.io(&rel.to_string_lossy(), e))?;
        }
        // Each directory is synced once, after all its renames (not once per file), and so is
        // the parent of each one made, which holds its new entry.
        for (rel, dir) in &dirs {
            rfs::fsync(dir).map_err(|e| out.io(rel, e))?;
        }
        for rel in &made {
            let (parents, _) = outdir::split(rel)?;
            if let Some(parent) = out.walk(&parents, None)? {
                rfs::fsync(&parent).map_err(|e| out.io(rel, e))?;
            }
        }
        Ok(Committed::from_actions(&actions))
    }

    /// In each directory of this set that exists: brings it (and those on its way) to its mode
    /// even when none of its files changes (a key directory someone opened up is closed again on
    /// the next run), and removes what killed runs left there (the lock is held, so no live
    /// run's temp file is among them).
    fn tidy_dirs(&self, out: &OutDir) -> Result<(), Error> {
        let parents: BTreeMap<String, u32> = self
            .files
            .iter()
            .map(|f| (outdir::parent(&f.rel), f.dir_mode))
            .collect();
        for (rel, mode) in parents {
            let dirs: Vec<&std::ffi::OsStr> = Path::new(&rel).iter().collect();
            if out.walk(&dirs, None)?.is_some() {
                let dir = out
                    .walk(&dirs, Some(mode))?
                    .ok_or_else(|| out.refuse(&rel, "was removed during the run"))?;
                outdir::remove_orphans(out, &dir, &rel)?;
            }
        }
        Ok(())
    }
}

/// The one decision of what a file needs: missing, different (content, mode, or a second name
/// or another owner, which a rename replaces), or already right.
fn action(out: &OutDir, file: &StagedFile) -> Result<Action, Error> {
    Ok(match out.find(&file.rel)? {
        None => Action::Create,
        Some(found)
            if found.contents == file.contents
                && found.stat.st_mode & 0o7777 == file.mode
                && found.stat.st_nlink == 1
                && found.stat.st_uid == out.uid() =>
        {
            Action::Unchanged
        }
        Some(_) => Action::Update,
    })
}

/// The directories `pending` needs that do not exist yet, parents before children, to remove
/// again if staging fails.
fn missing_dirs(out: &OutDir, pending: &[&StagedFile]) -> Result<Vec<String>, Error> {
    let mut missing = Vec::new();
    for file in pending {
        let (dirs, _) = outdir::split(&file.rel)?;
        for depth in 1..=dirs.len() {
            let rel = Path::new("").join(dirs[..depth].iter().collect::<PathBuf>());
            let rel = rel.to_string_lossy().into_owned();
            if !missing.contains(&rel) && out.walk(&dirs[..depth], None)?.is_none() {
                missing.push(rel);
            }
        }
    }
    Ok(missing)
}

/// Writes each pending file's temp file, opening (and making) each directory once.
fn stage(
    out: &OutDir,
    pending: &[&StagedFile],
    dirs: &mut BTreeMap<String, OwnedFd>,
    temps: &mut Vec<Temp>,
) -> Result<(), Error> {
    for file in pending {
        let (parents, name) = outdir::split(&file.rel)?;
        let dir_rel = outdir::parent(&file.rel);
        if !dirs.contains_key(&dir_rel) {
            let fd = out
                .walk(&parents, Some(file.dir_mode))?
                .ok_or_else(|| out.refuse(&dir_rel, "could not be made"))?;
            dirs.insert(dir_rel.clone(), fd);
        }
        let dir = &dirs[&dir_rel];
        // Checked again on the fd the rename will use: nothing can have appeared in between
        // that preview did not see, but a directory opened through a fresh walk is a new fd.
        out.stat_plain(dir, &file.rel, name)?;
        let temp = outdir::write_temp(out, dir, &file.rel, name, &file.contents, file.mode)?;
        temps.push(Temp {
            dir: dir_rel,
            temp,
            name: name.to_os_string(),
        });
    }
    Ok(())
}

/// Removes the (now empty) directories a failed commit made, children first.
fn undo_dirs(out: &OutDir, made: &[String]) {
    for rel in made.iter().rev() {
        if let Ok((parents, name)) = outdir::split(rel) {
            if let Ok(Some(parent)) = out.walk(&parents, None) {
                let _ = rfs::unlinkat(&parent, name, AtFlags::REMOVEDIR);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_sets_mode_and_skips_identical_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        assert_eq!(
            write_atomic(&path, b"secret", 0o600).unwrap(),
            Written::Created
        );
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let mtime = fs::metadata(&path).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(
            write_atomic(&path, b"secret", 0o600).unwrap(),
            Written::Unchanged
        );
        assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), mtime);
        assert_eq!(
            write_atomic(&path, b"other", 0o600).unwrap(),
            Written::Updated
        );
        assert_eq!(fs::read(&path).unwrap(), b"other");
        // No temp file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn write_atomic_writes_into_a_fifo_instead_of_replacing_it() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("report");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || fs::read(fifo).unwrap())
        };
        write_atomic(&fifo, b"report", 0o644).unwrap();
        assert_eq!(reader.join().unwrap(), b"report");
        assert!(!fs::symlink_metadata(&fifo).unwrap().file_type().is_file());
    }

    fn open(dir: &Path) -> OutDir {
        let access = Access::Write {
            mode: 0o700,
            lock_timeout: Duration::ZERO,
        };
        OutDir::open(dir, access).unwrap()
    }

    #[test]
    fn file_set_refuses_to_replace_what_is_not_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("/dev/null", &link).unwrap();
        let mut set = FileSet::new();
        set.add("link", b"x".to_vec(), 0o644, 0o755);
        let error = set.commit(&open(dir.path())).unwrap_err().to_string();
        assert!(error.contains("is a symlink"), "{error}");
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
    }

    #[test]
    fn file_set_creates_private_dirs_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let out = open(dir.path());
        let mut set = FileSet::new();
        set.add("pki/ca/ca.key", b"k".to_vec(), 0o600, 0o700);
        set.add("pki/ca/ca.pem", b"c".to_vec(), 0o644, 0o700);
        let done = set.commit(&out).unwrap();
        assert_eq!(done.created, ["pki/ca/ca.key", "pki/ca/ca.pem"]);
        let mode = fs::metadata(dir.path().join("pki/ca"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        let mut again = FileSet::new();
        again.add("pki/ca/ca.key", b"k".to_vec(), 0o600, 0o700);
        assert_eq!(again.commit(&out).unwrap().unchanged.len(), 1);
    }

    #[test]
    fn file_set_failure_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("blocker"), b"a file, not a dir").unwrap();
        let out = open(dir.path());
        let mut set = FileSet::new();
        set.add("new/a", b"a".to_vec(), 0o644, 0o755);
        set.add("blocker/b", b"b".to_vec(), 0o644, 0o755);
        assert!(set.commit(&out).is_err());
        let mut names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, [outdir::LOCK_FILE, "blocker"]);
    }

    #[test]
    fn a_key_directory_others_can_enter_is_brought_to_0700() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("pki")).unwrap();
        fs::set_permissions(dir.path().join("pki"), Permissions::from_mode(0o777)).unwrap();
        let mut set = FileSet::new();
        set.add("pki/ca.key", b"k".to_vec(), 0o600, 0o700);
        set.commit(&open(dir.path())).unwrap();
        let mode = fs::metadata(dir.path().join("pki"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o700);
    }

    #[test]
    fn orphan_temp_files_are_removed_and_links_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = tempfile::NamedTempFile::new().unwrap();
        fs::write(victim.path(), b"victim").unwrap();
        fs::create_dir(dir.path().join("d")).unwrap();
        let orphan = dir.path().join("d/.a.hardway-tmp.abcdef123456");
        fs::write(&orphan, b"half").unwrap();
        let planted = dir.path().join("d/.a.tmp.12345");
        std::os::unix::fs::symlink(victim.path(), &planted).unwrap();
        let mut set = FileSet::new();
        set.add("d/a", b"a".to_vec(), 0o644, 0o755);
        set.commit(&open(dir.path())).unwrap();
        assert!(fs::symlink_metadata(&orphan).is_err());
        assert!(fs::symlink_metadata(&planted).is_err());
        assert_eq!(fs::read(victim.path()).unwrap(), b"victim");
    }

    #[test]
    fn a_second_writer_waits_for_the_lock_or_gives_up() {
        let dir = tempfile::tempdir().unwrap();
        let first = open(dir.path());
        let error = OutDir::open(
            dir.path(),
            Access::Write {
                mode: 0o700,
                lock_timeout: Duration::ZERO,
            },
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("still holds the lock"),
            "{error}"
        );
        drop(first);
        open(dir.path());
    }
}
