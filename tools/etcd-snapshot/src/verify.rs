//! etcd's snapshot integrity check, as `etcdctl snapshot restore` makes it before restoring.
//!
//! A snapshot from the Maintenance API is the bbolt database followed by the sha256 of it (32
//! bytes); bbolt files are whole pages of 512-byte multiples, so `size % 512 == 32` tells a
//! snapshot with its hash from a bare copied `db` file. Source: etcd v3.4
//! clientv3/snapshot/v3_snapshot.go (`hasChecksum := (size % 512) == sha256.Size`, then the
//! sha256 of `size - 32` bytes must equal the trailer) and etcdserver/api/v3rpc/maintenance.go
//! (`Snapshot` appends `h.Sum(nil)` after the database).

use sha2::{Digest, Sha256};

const HASH: usize = 32;

/// Checks the trailer; returns the sha256 of the whole file (what the report records).
pub fn verify(bytes: &[u8]) -> Result<String, String> {
    if bytes.len() < 512 + HASH || bytes.len() % 512 != HASH {
        return Err(format!(
            "{} bytes is not a bbolt database followed by its sha256 (want 512*N + 32): not an etcd snapshot, or cut short",
            bytes.len()
        ));
    }
    let (db, trailer) = bytes.split_at(bytes.len() - HASH);
    if Sha256::digest(db).as_slice() != trailer {
        return Err(
            "the sha256 etcd appended does not match the database: the file is corrupt".into(),
        );
    }
    Ok(hardway::fsutil::sha256_hex(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(db: &[u8]) -> Vec<u8> {
        let mut bytes = db.to_vec();
        bytes.extend_from_slice(&Sha256::digest(db));
        bytes
    }

    #[test]
    fn a_good_trailer_passes_and_any_flipped_byte_fails() {
        let good = snapshot(&[7u8; 4096]);
        assert!(verify(&good).is_ok());
        let mut bad = good.clone();
        bad[100] ^= 1;
        assert!(verify(&bad).unwrap_err().contains("corrupt"));
        assert!(verify(&good[..good.len() - 1]).is_err());
        assert!(verify(&[7u8; 4096]).is_err(), "a bare db has no trailer");
    }
}
