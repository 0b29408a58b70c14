//! Atomic, idempotent file writes.
//!
//! Every file a tool writes goes to a temporary name in the same directory, gets its mode, is
//! fsynced and renamed over the target, so a reader never sees half a file and a failed run leaves
//! the old one. A file whose content and mode already match is not touched at all (its mtime stays),
//! which is what makes a second run of a tool a no-op.

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::Error;

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

/// Creates `dir` and its missing parents with `mode`, and sets `mode` on `dir` if it differs.
pub fn ensure_dir(dir: &Path, mode: u32) -> Result<(), Error> {
    let what = || dir.display().to_string();
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {
            if meta.permissions().mode() & 0o7777 != mode {
                fs::set_permissions(dir, Permissions::from_mode(mode))
                    .map_err(|e| Error::io(what(), e))?;
            }
            Ok(())
        }
        Ok(_) => Err(Error::io(
            what(),
            std::io::Error::new(ErrorKind::AlreadyExists, "exists and is not a directory"),
        )),
        Err(e) if e.kind() == ErrorKind::NotFound => DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(dir)
            .and_then(|()| fs::set_permissions(dir, Permissions::from_mode(mode)))
            .map_err(|e| Error::io(what(), e)),
        Err(e) => Err(Error::io(what(), e)),
    }
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

/// Writes a sibling temp file with the final mode already set, fsynced; returns its path.
fn write_temp(path: &Path, contents: &[u8], mode: u32) -> Result<PathBuf, Error> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::invalid(path.display().to_string(), "not a file path"))?;
    let temp = path.with_file_name(format!(
        ".{}.tmp.{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut file: File = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&temp)?;
        // The umask may have narrowed the mode given to open(2); set it exactly.
        file.set_permissions(Permissions::from_mode(mode))?;
        file.write_all(contents)?;
        file.sync_all()
    })();
    match result {
        Ok(()) => Ok(temp),
        Err(e) => {
            let _ = fs::remove_file(&temp);
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

/// A set of files written all together or not at all.
///
/// `commit` first writes every changed file to its temp name; only when all of them are on disk
/// does it rename them into place. A failure while writing temps removes them and leaves every
/// target as it was, which is how a tool that fails half-way leaves no partial output.
#[derive(Debug, Default)]
pub struct FileSet {
    files: Vec<StagedFile>,
}

#[derive(Debug)]
struct StagedFile {
    path: PathBuf,
    contents: Vec<u8>,
    mode: u32,
    /// Mode of the directories created for it.
    dir_mode: u32,
}

/// What a committed [`FileSet`] did to each path.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Committed {
    pub created: Vec<PathBuf>,
    pub updated: Vec<PathBuf>,
    pub unchanged: Vec<PathBuf>,
}

impl FileSet {
    pub fn new() -> FileSet {
        FileSet::default()
    }

    /// Adds a file; its missing parent directories will be made with `dir_mode`.
    pub fn add(&mut self, path: impl Into<PathBuf>, contents: Vec<u8>, mode: u32, dir_mode: u32) {
        self.files.push(StagedFile {
            path: path.into(),
            contents,
            mode,
            dir_mode,
        });
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Writes every file whose content or mode changed; touches none of the others.
    pub fn commit(self) -> Result<Committed, Error> {
        let mut done = Committed::default();
        let mut pending = Vec::new();
        for file in &self.files {
            // Outputs under a tool's --dir are plain files; anything else there is refused
            // rather than renamed over.
            if is_special(&file.path)? {
                return Err(Error::io(
                    file.path.display().to_string(),
                    std::io::Error::new(
                        ErrorKind::AlreadyExists,
                        "exists and is not a regular file",
                    ),
                ));
            }
            match fs::read(&file.path) {
                Ok(bytes) if bytes == file.contents => {
                    let mode = fs::metadata(&file.path)
                        .map_err(|e| Error::io(file.path.display().to_string(), e))?
                        .permissions()
                        .mode()
                        & 0o7777;
                    if mode == file.mode {
                        done.unchanged.push(file.path.clone());
                    } else {
                        pending.push((file, true));
                    }
                }
                Ok(_) => pending.push((file, true)),
                Err(e) if e.kind() == ErrorKind::NotFound => pending.push((file, false)),
                Err(e) => return Err(Error::io(file.path.display().to_string(), e)),
            }
        }
        let mut temps = Vec::new();
        let mut made_dirs = Vec::new();
        let staged = (|| {
            for (file, existed) in &pending {
                if let Some(parent) = file.path.parent() {
                    if !parent.as_os_str().is_empty() && !parent.exists() {
                        made_dirs.push(first_missing_ancestor(parent));
                        ensure_dir(parent, file.dir_mode)?;
                    }
                }
                temps.push((
                    write_temp(&file.path, &file.contents, file.mode)?,
                    *file,
                    *existed,
                ));
            }
            Ok::<(), Error>(())
        })();
        if let Err(e) = staged {
            for (temp, _, _) in &temps {
                let _ = fs::remove_file(temp);
            }
            for dir in made_dirs.iter().rev() {
                let _ = fs::remove_dir_all(dir);
            }
            return Err(e);
        }
        // Each directory is synced once, after all its renames (not once per file): a set of
        // many files in few directories costs a few fsyncs instead of one per file.
        let mut parents = std::collections::BTreeMap::new();
        for (temp, file, existed) in temps {
            fs::rename(&temp, &file.path)
                .map_err(|e| Error::io(file.path.display().to_string(), e))?;
            parents
                .entry(file.path.parent().map(Path::to_path_buf))
                .or_insert_with(|| file.path.clone());
            if existed {
                done.updated.push(file.path.clone());
            } else {
                done.created.push(file.path.clone());
            }
        }
        for path in parents.values() {
            sync_parent(path)?;
        }
        Ok(done)
    }
}

fn first_missing_ancestor(dir: &Path) -> PathBuf {
    let mut missing = dir.to_path_buf();
    while let Some(parent) = missing.parent() {
        if parent.as_os_str().is_empty() || parent.exists() {
            break;
        }
        missing = parent.to_path_buf();
    }
    missing
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

    #[test]
    fn file_set_refuses_to_replace_what_is_not_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("/dev/null", &link).unwrap();
        let mut set = FileSet::new();
        set.add(&link, b"x".to_vec(), 0o644, 0o755);
        assert!(set
            .commit()
            .unwrap_err()
            .to_string()
            .contains("not a regular file"));
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
    }

    #[test]
    fn file_set_creates_private_dirs_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let mut set = FileSet::new();
        set.add(
            dir.path().join("pki/ca/ca.key"),
            b"k".to_vec(),
            0o600,
            0o700,
        );
        set.add(
            dir.path().join("pki/ca/ca.pem"),
            b"c".to_vec(),
            0o644,
            0o700,
        );
        let done = set.commit().unwrap();
        assert_eq!(done.created.len(), 2);
        let mode = fs::metadata(dir.path().join("pki/ca"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        let mut again = FileSet::new();
        again.add(
            dir.path().join("pki/ca/ca.key"),
            b"k".to_vec(),
            0o600,
            0o700,
        );
        assert_eq!(again.commit().unwrap().unchanged.len(), 1);
    }

    #[test]
    fn file_set_failure_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("blocker"), b"a file, not a dir").unwrap();
        let mut set = FileSet::new();
        set.add(dir.path().join("new/a"), b"a".to_vec(), 0o644, 0o755);
        set.add(dir.path().join("blocker/b"), b"b".to_vec(), 0o644, 0o755);
        assert!(set.commit().is_err());
        let mut names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["blocker"]);
    }
}
