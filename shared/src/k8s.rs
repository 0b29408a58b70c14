//! The Kubernetes releases hardway renders for, and every difference between them, in one table.
//!
//! Supported are the minors upstream supports on the project's date (2026-12-01): v1.35, v1.36 and
//! v1.37. Adding a release is one entry in [`RELEASES`]; every tool that renders for the document's
//! version looks it up here through [`release`], so an end-of-life or unknown minor is refused in
//! one place. Each entry cites where its values come from upstream.
//!
//! (Issue 13 fills in the per-release flags, config fields and their sources; this is the skeleton
//! the tools share.)

use std::fmt;

/// A Kubernetes version `vMAJOR.MINOR.PATCH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl Version {
    /// Parses `v1.37.2`. The leading `v` is required, as in upstream's release tags.
    pub fn parse(text: &str) -> Result<Version, String> {
        let bad = || format!("{text:?} is not a Kubernetes version like {DEFAULT_VERSION}");
        let rest = text.strip_prefix('v').ok_or_else(bad)?;
        let parts: Vec<&str> = rest.split('.').collect();
        let [major, minor, patch] = parts.as_slice() else {
            return Err(bad());
        };
        let number = |p: &str| -> Result<u32, String> {
            if p.is_empty() || p.len() > 4 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            p.parse().map_err(|_| bad())
        };
        Ok(Version {
            major: number(major)?,
            minor: number(minor)?,
            patch: number(patch)?,
        })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// What differs between one Kubernetes minor and the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// The minor: 37 for v1.37.
    pub minor: u32,
    /// The newest patch release of this minor known to this table.
    pub latest_patch: u32,
    /// Upstream's end of life for this minor (YYYY-MM-DD).
    pub end_of_life: &'static str,
    /// The containerd majors the kubelet of this minor works with.
    pub containerd_majors: &'static [u32],
    /// The pause (sandbox) image the runtime is told to use.
    pub pause_image: &'static str,
    /// The CoreDNS image of the cluster DNS add-on.
    pub coredns_image: &'static str,
    /// Where the values above come from upstream (file and release).
    pub source: &'static str,
}

/// The default version: the newest patch of the newest supported minor.
pub const DEFAULT_VERSION: &str = "v1.37.2";

/// Every supported minor, oldest first.
pub const RELEASES: &[Release] = &[
    Release {
        minor: 35,
        latest_patch: 0,
        end_of_life: "2027-02-28",
        containerd_majors: &[1, 2],
        pause_image: "registry.k8s.io/pause:3.10.1",
        coredns_image: "registry.k8s.io/coredns/coredns:v1.13.1",
        source: "kubernetes/kubernetes release-1.35 cmd/kubeadm/app/constants/constants.go",
    },
    Release {
        minor: 36,
        latest_patch: 0,
        end_of_life: "2027-06-28",
        containerd_majors: &[2],
        pause_image: "registry.k8s.io/pause:3.10.1",
        coredns_image: "registry.k8s.io/coredns/coredns:v1.13.1",
        source: "kubernetes/kubernetes release-1.36 cmd/kubeadm/app/constants/constants.go",
    },
    Release {
        minor: 37,
        latest_patch: 2,
        end_of_life: "2027-10-28",
        containerd_majors: &[2],
        pause_image: "registry.k8s.io/pause:3.10.1",
        coredns_image: "registry.k8s.io/coredns/coredns:v1.13.1",
        source: "kubernetes/kubernetes release-1.37 cmd/kubeadm/app/constants/constants.go",
    },
];

/// The supported minors, for messages: `v1.35, v1.36, v1.37`.
pub fn supported_list() -> String {
    RELEASES
        .iter()
        .map(|r| format!("v1.{}", r.minor))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The release entry for a document's `kubernetes_version`, or why it is refused.
pub fn release(version: &str) -> Result<&'static Release, String> {
    let v = Version::parse(version)?;
    RELEASES
        .iter()
        .find(|r| v.major == 1 && r.minor == v.minor)
        .ok_or_else(|| {
            format!(
                "Kubernetes {version} is not supported (end of life or unknown): use one of {}",
                supported_list()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_the_newest_supported_patch() {
        let newest = RELEASES.last().unwrap();
        assert_eq!(
            DEFAULT_VERSION,
            format!("v1.{}.{}", newest.minor, newest.latest_patch)
        );
        assert!(release(DEFAULT_VERSION).is_ok());
    }

    #[test]
    fn end_of_life_and_malformed_versions_are_refused() {
        assert!(release("v1.33.0").unwrap_err().contains("v1.35, v1.36, v1.37"));
        for bad in ["1.37.2", "v1.37", "v1.37.x", "v1.37.2\nExecStartPre=/bin/sh", ""] {
            assert!(Version::parse(bad).is_err(), "{bad:?}");
        }
    }
}
