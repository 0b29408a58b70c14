//! The base image preflight: read the header's magic so a wrong file (a VMDK, an ISO, a text
//! file, a truncated download) is refused before libvirt builds overlays on it.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::error::MkvmError;

/// A base image mkvm can back overlays with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Qcow2,
    Raw,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Qcow2 => "qcow2",
            Format::Raw => "raw",
        }
    }
}

/// What the header says: the format and the virtual size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BaseImage {
    pub format: Format,
    pub virtual_size: u64,
}

const QCOW2_MAGIC: &[u8; 4] = b"QFI\xfb";
/// Other formats' magics, named in the refusal so the user knows what they gave.
const OTHER_MAGICS: &[(&[u8], usize, &str)] = &[
    (b"KDMV", 0, "VMDK"),
    (b"<<< ", 0, "VDI"),
    (b"vhdxfile", 0, "VHDX"),
    (b"QED\0", 0, "QED"),
    (b"conectix", 0, "VHD"),
    (b"CD001", 0x8001, "ISO 9660"),
];

/// Reads the header of `path`: qcow2 by its magic (virtual size at offset 24), raw when it carries
/// an MBR/GPT boot signature (0x55AA at byte 510) — a raw file without one is no bootable disk.
pub fn inspect(path: &Path) -> Result<BaseImage, MkvmError> {
    let at = format!("--image {}", path.display());
    let mut file = File::open(path).map_err(|e| {
        MkvmError::preflight(
            &at,
            format!("cannot open the base image: {e}; build one with scripts/image.sh"),
        )
    })?;
    let size = file
        .metadata()
        .map_err(|e| MkvmError::preflight(&at, e.to_string()))?
        .len();
    let mut header = vec![0u8; 0x8006];
    let mut filled = 0;
    while filled < header.len() {
        match file.read(&mut header[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) => return Err(MkvmError::preflight(&at, e.to_string())),
        }
    }
    header.truncate(filled);
    if header.len() >= 32 && &header[..4] == QCOW2_MAGIC {
        let virtual_size = u64::from_be_bytes(header[24..32].try_into().expect("8 bytes"));
        return Ok(BaseImage {
            format: Format::Qcow2,
            virtual_size,
        });
    }
    for (magic, offset, name) in OTHER_MAGICS {
        if header.len() >= offset + magic.len() && &header[*offset..offset + magic.len()] == *magic
        {
            return Err(MkvmError::preflight(
                &at,
                format!("is a {name} image; mkvm takes qcow2 or raw (convert with qemu-img convert -O qcow2)"),
            ));
        }
    }
    if header.len() >= 512 && header[510] == 0x55 && header[511] == 0xAA {
        return Ok(BaseImage {
            format: Format::Raw,
            virtual_size: size,
        });
    }
    Err(MkvmError::preflight(
        &at,
        "is neither qcow2 (no QFI\\xfb magic) nor a raw disk (no boot signature at byte 510); build one with scripts/image.sh",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, bytes).unwrap();
        f
    }

    #[test]
    fn reads_qcow2_magic_and_size() {
        let mut header = vec![0u8; 512];
        header[..4].copy_from_slice(QCOW2_MAGIC);
        header[7] = 3;
        header[24..32].copy_from_slice(&(2u64 << 30).to_be_bytes());
        let f = write(&header);
        assert_eq!(
            inspect(f.path()).unwrap(),
            BaseImage {
                format: Format::Qcow2,
                virtual_size: 2 << 30
            }
        );
    }

    #[test]
    fn refuses_other_formats_and_text() {
        let f = write(b"KDMV\x01\0\0\0 rest of a vmdk");
        assert!(inspect(f.path()).unwrap_err().to_string().contains("VMDK"));
        let f = write(b"not an image at all\n");
        assert!(inspect(f.path())
            .unwrap_err()
            .to_string()
            .contains("neither qcow2"));
        let mut mbr = vec![0u8; 1024];
        mbr[510] = 0x55;
        mbr[511] = 0xAA;
        let f = write(&mbr);
        assert_eq!(inspect(f.path()).unwrap().format, Format::Raw);
        assert!(inspect(Path::new("/nonexistent/base.qcow2")).is_err());
    }
}
