//! Opening the files node-push sends: only plain files inside `--dir`. A `src` that is a symbolic
//! link (in any component) would send a file from elsewhere — a root-only key landed 0644 on a
//! node that way — and a FIFO would block the read forever, past `--timeout`. Both are refused
//! when the plan is made, before any host is contacted, and again when the upload opens the file.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// `--dir` as the kernel names it (symbolic links in the user's own path resolved), so each
/// file's real path can be compared with what the document says.
pub fn resolve_dir(dir: &Path) -> io::Result<PathBuf> {
    std::fs::canonicalize(dir)
}

/// Opens `path` (under a directory from [`resolve_dir`]) for reading, only if it is a regular file
/// reached without following any symbolic link.
///
/// `O_NOFOLLOW` refuses a link as the last component, `O_NONBLOCK` makes the open of a FIFO
/// return at once instead of waiting for a writer, `fstat` then refuses anything but a regular
/// file, and the kernel's name for the open file (`/proc/self/fd/N`) must be `path` itself: a
/// link in an earlier component resolves elsewhere.
pub fn open_plain(path: &Path) -> io::Result<File> {
    let refused = |why: String| io::Error::new(io::ErrorKind::InvalidInput, why);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => {
                refused("is a symbolic link: node-push sends only plain files inside --dir".into())
            }
            _ => e,
        })?;
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        let what = if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_dir() {
            "a directory"
        } else if kind.is_block_device() || kind.is_char_device() {
            "a device"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        };
        return Err(refused(format!(
            "is {what}: node-push sends only plain files inside --dir"
        )));
    }
    let real = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))?;
    if real != path {
        return Err(refused(format!(
            "resolves to {} through a symbolic link: node-push sends only plain files inside --dir",
            real.display()
        )));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_files_open() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = resolve_dir(tmp.path()).unwrap();
        std::fs::create_dir(dir.join("pki")).unwrap();
        std::fs::write(dir.join("pki/a.pem"), "a").unwrap();
        std::os::unix::fs::symlink("/etc/hostname", dir.join("pki/link.pem")).unwrap();
        std::os::unix::fs::symlink(dir.join("pki"), dir.join("alias")).unwrap();
        assert!(open_plain(&dir.join("pki/a.pem")).is_ok());
        for bad in ["pki/link.pem", "alias/a.pem", "pki"] {
            let e = open_plain(&dir.join(bad)).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad}: {e}");
        }
    }
}
