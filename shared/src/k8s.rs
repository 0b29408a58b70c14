//! The Kubernetes releases hardway renders for, and every difference between them, in one table.
//!
//! Supported are the minors upstream supports on the project's date (2026-12-01): v1.35, v1.36 and
//! v1.37. Adding a release is one entry in [`RELEASES`]; every tool that renders for the document's
//! version looks it up here through [`release`], so an end-of-life or unknown minor is refused in
//! one place. Each entry cites where its values come from upstream.
//!
//! What is the same for every supported release (every flag and field mkunits writes exists and
//! is not deprecated in v1.35 to v1.37) is written by mkunits directly; what differs, or may differ
//! in the next release, is a field here.

use std::fmt;

use crate::doc::{Cluster, ContainerRuntime, KubeProxyMode};

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
///
/// The upstream-check helper verifies and edits `latest_patch`, `end_of_life`, `pause_image`,
/// `coredns_image` and `source`: keep those names.
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
    /// `apiVersion` of the kubelet's KubeletConfiguration file.
    pub kubelet_config_api: &'static str,
    /// `apiVersion` of kube-proxy's KubeProxyConfiguration file.
    pub kube_proxy_config_api: &'static str,
    /// `apiVersion` of kube-scheduler's KubeSchedulerConfiguration file.
    pub scheduler_config_api: &'static str,
    /// The kube-proxy modes of this minor that are neither deprecated nor removed.
    pub proxy_modes: &'static [KubeProxyMode],
    /// Where the runtime, apiVersion and mode values come from upstream.
    pub config_source: &'static str,
}

impl Release {
    /// `v1.37`.
    pub fn name(&self) -> String {
        format!("v1.{}", self.minor)
    }

    /// Whether this minor's kubelet works with the runtime, and if not, why (one line).
    pub fn check_runtime(&self, runtime: ContainerRuntime) -> Result<(), String> {
        let major = match runtime {
            ContainerRuntime::Containerd1 => 1,
            ContainerRuntime::Containerd2 => 2,
            // CRI-O releases follow Kubernetes minors: the matching CRI-O is the user's to install.
            ContainerRuntime::CriO => return Ok(()),
        };
        if self.containerd_majors.contains(&major) {
            return Ok(());
        }
        let allowed: Vec<String> = RELEASES
            .iter()
            .filter(|r| r.containerd_majors.contains(&major))
            .map(Release::name)
            .collect();
        Err(format!(
            "containerd {major}.x does not run Kubernetes {}: the kubelet from v1.36 on needs \
             containerd 2.0 or newer (containerd {major}.x is allowed with {}); use containerd-2",
            self.name(),
            if allowed.is_empty() {
                "no supported release".to_string()
            } else {
                allowed.join(", ")
            }
        ))
    }

    /// Whether this minor's kube-proxy offers the mode, and if not, why (one line).
    pub fn check_proxy_mode(&self, mode: KubeProxyMode) -> Result<(), String> {
        if self.proxy_modes.contains(&mode) {
            return Ok(());
        }
        Err(format!(
            "kube-proxy of Kubernetes {} has no supported {} mode",
            self.name(),
            mode.name()
        ))
    }
}

impl KubeProxyMode {
    /// The mode as KubeProxyConfiguration's `mode` spells it.
    pub fn name(self) -> &'static str {
        match self {
            KubeProxyMode::Iptables => "iptables",
            KubeProxyMode::Nftables => "nftables",
        }
    }
}

impl ContainerRuntime {
    /// The runtime as the document and mkcluster's `--container-runtime` spell it.
    pub fn name(self) -> &'static str {
        match self {
            ContainerRuntime::Containerd2 => "containerd-2",
            ContainerRuntime::Containerd1 => "containerd-1",
            ContainerRuntime::CriO => "cri-o",
        }
    }

    /// Parses the document's spelling.
    pub fn parse(text: &str) -> Option<ContainerRuntime> {
        [
            ContainerRuntime::Containerd2,
            ContainerRuntime::Containerd1,
            ContainerRuntime::CriO,
        ]
        .into_iter()
        .find(|r| r.name() == text)
    }
}

/// The default version: the newest patch of the newest supported minor.
pub const DEFAULT_VERSION: &str = "v1.37.2";

/// The key in `cluster` that mkcluster's `--allow-unsupported-version` sets to `true`: later
/// tools then render an end-of-life or unknown version with the nearest supported release's
/// table (and say so on stderr) instead of refusing it.
pub const ALLOW_UNSUPPORTED: &str = "allow_unsupported_version";

// The configuration apiVersions are the same for v1.35 to v1.37: KubeletConfiguration
// v1beta1 (staging/src/k8s.io/kubelet/config/v1beta1/register.go), KubeProxyConfiguration
// v1alpha1 (staging/src/k8s.io/kube-proxy/config/v1alpha1/register.go; the v1alpha2 directory
// of 2019 is gone), KubeSchedulerConfiguration v1 (GA since v1.25, pkg/scheduler/apis/config/v1).
const KUBELET_CONFIG_API: &str = "kubelet.config.k8s.io/v1beta1";
const KUBE_PROXY_CONFIG_API: &str = "kubeproxy.config.k8s.io/v1alpha1";
const SCHEDULER_CONFIG_API: &str = "kubescheduler.config.k8s.io/v1";
// nftables is GA since v1.33 (KEP-3866); IPVS is deprecated from v1.35 (the v1.35 release
// announcement of 2025-12-17, CHANGELOG/CHANGELOG-1.35.md) and never offered; iptables stays the
// default.
const PROXY_MODES: &[KubeProxyMode] = &[KubeProxyMode::Iptables, KubeProxyMode::Nftables];

/// Every supported minor, oldest first.
pub const RELEASES: &[Release] = &[
    Release {
        minor: 35,
        latest_patch: 0,
        end_of_life: "2027-02-28",
        // v1.35 is the last minor whose kubelet supports containerd 1.x (SIG Node, in the v1.35
        // release announcement of 2025-12-17 and CHANGELOG/CHANGELOG-1.35.md).
        containerd_majors: &[1, 2],
        pause_image: "registry.k8s.io/pause:3.10.1",
        coredns_image: "registry.k8s.io/coredns/coredns:v1.13.1",
        source: "kubernetes/kubernetes release-1.35 cmd/kubeadm/app/constants/constants.go",
        kubelet_config_api: KUBELET_CONFIG_API,
        kube_proxy_config_api: KUBE_PROXY_CONFIG_API,
        scheduler_config_api: SCHEDULER_CONFIG_API,
        proxy_modes: PROXY_MODES,
        config_source: "kubernetes/kubernetes release-1.35 CHANGELOG/CHANGELOG-1.35.md",
    },
    Release {
        minor: 36,
        latest_patch: 0,
        end_of_life: "2027-06-28",
        // The kubelet of v1.36 and later needs containerd 2.0+ (CHANGELOG-1.36.md).
        containerd_majors: &[2],
        pause_image: "registry.k8s.io/pause:3.10.1",
        coredns_image: "registry.k8s.io/coredns/coredns:v1.13.1",
        source: "kubernetes/kubernetes release-1.36 cmd/kubeadm/app/constants/constants.go",
        kubelet_config_api: KUBELET_CONFIG_API,
        kube_proxy_config_api: KUBE_PROXY_CONFIG_API,
        scheduler_config_api: SCHEDULER_CONFIG_API,
        proxy_modes: PROXY_MODES,
        config_source: "kubernetes/kubernetes release-1.36 CHANGELOG/CHANGELOG-1.36.md",
    },
    Release {
        minor: 37,
        latest_patch: 2,
        end_of_life: "2027-10-28",
        containerd_majors: &[2],
        pause_image: "registry.k8s.io/pause:3.10.1",
        coredns_image: "registry.k8s.io/coredns/coredns:v1.13.1",
        source: "kubernetes/kubernetes release-1.37 cmd/kubeadm/app/constants/constants.go",
        kubelet_config_api: KUBELET_CONFIG_API,
        kube_proxy_config_api: KUBE_PROXY_CONFIG_API,
        scheduler_config_api: SCHEDULER_CONFIG_API,
        proxy_modes: PROXY_MODES,
        config_source: "kubernetes/kubernetes release-1.37 CHANGELOG/CHANGELOG-1.37.md",
    },
];

/// The supported minors, for messages: `v1.35, v1.36, v1.37`.
pub fn supported_list() -> String {
    RELEASES
        .iter()
        .map(Release::name)
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

/// The release to render an unsupported version with, after the user opted out of the check
/// (`--allow-unsupported-version`): the supported minor nearest to it. Only malformed versions
/// and majors other than 1 are refused.
pub fn nearest_release(version: &str) -> Result<&'static Release, String> {
    let v = Version::parse(version)?;
    if v.major != 1 {
        return Err(format!("Kubernetes {version} is not a 1.x version"));
    }
    let (oldest, newest) = (&RELEASES[0], &RELEASES[RELEASES.len() - 1]);
    Ok(RELEASES
        .iter()
        .find(|r| r.minor == v.minor)
        .unwrap_or(if v.minor < oldest.minor {
            oldest
        } else {
            newest
        }))
}

/// The release a cluster section renders with: its version's entry; with
/// [`ALLOW_UNSUPPORTED`] set, the nearest one and a warning to log. Errors are one line for the
/// JSON path `cluster.kubernetes_version`.
pub fn release_for(cluster: &Cluster) -> Result<(&'static Release, Option<String>), String> {
    let version = &cluster.kubernetes_version;
    match release(version) {
        Ok(r) => Ok((r, None)),
        Err(why) if allows_unsupported(cluster) => {
            let r = nearest_release(version).map_err(|_| why)?;
            Ok((
                r,
                Some(format!(
                    "warning: Kubernetes {version} is not supported ({ALLOW_UNSUPPORTED} is set): \
                     rendering with the {} table",
                    r.name()
                )),
            ))
        }
        Err(why) => Err(format!(
            "{why} (or record the opt-out: mkcluster --allow-unsupported-version)"
        )),
    }
}

/// Whether the document records mkcluster's `--allow-unsupported-version`.
pub fn allows_unsupported(cluster: &Cluster) -> bool {
    cluster.extra.get(ALLOW_UNSUPPORTED) == Some(&serde_json::Value::Bool(true))
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
    fn containerd_1_only_with_v1_35() {
        assert!(release("v1.35.0")
            .unwrap()
            .check_runtime(ContainerRuntime::Containerd1)
            .is_ok());
        for v in ["v1.36.0", "v1.37.2"] {
            let why = release(v)
                .unwrap()
                .check_runtime(ContainerRuntime::Containerd1)
                .unwrap_err();
            assert!(
                why.contains("allowed with v1.35") && !why.contains('\n'),
                "{why}"
            );
            let r = release(v).unwrap();
            assert!(r.check_runtime(ContainerRuntime::Containerd2).is_ok());
            assert!(r.check_runtime(ContainerRuntime::CriO).is_ok());
        }
    }

    #[test]
    fn the_opt_out_renders_with_the_nearest_release() {
        assert_eq!(nearest_release("v1.33.0").unwrap().minor, 35);
        assert_eq!(nearest_release("v1.99.0").unwrap().minor, 37);
        assert_eq!(nearest_release("v1.36.4").unwrap().minor, 36);
        assert!(nearest_release("v2.0.0").is_err());
        let doc = crate::doc::from_str(
            r#"{"version": 1, "cluster": {"name": "k", "domain": "example.com",
                "cluster_domain": "cluster.local", "kubernetes_version": "v1.33.0",
                "networks": {"node": [], "pod": [], "pod_prefix": [], "service": []},
                "api": {"port": 6443}}}"#,
            "t",
        )
        .unwrap();
        let mut cluster = doc.cluster;
        assert!(release_for(&cluster)
            .unwrap_err()
            .contains("--allow-unsupported-version"));
        cluster.extra.insert(ALLOW_UNSUPPORTED.into(), true.into());
        let (r, warning) = release_for(&cluster).unwrap();
        assert_eq!(r.minor, 35);
        assert!(warning.unwrap().contains("v1.35 table"));
    }

    #[test]
    fn end_of_life_and_malformed_versions_are_refused() {
        assert!(release("v1.33.0")
            .unwrap_err()
            .contains("v1.35, v1.36, v1.37"));
        for bad in [
            "1.37.2",
            "v1.37",
            "v1.37.x",
            "v1.37.2\nExecStartPre=/bin/sh",
            "",
        ] {
            assert!(Version::parse(bad).is_err(), "{bad:?}");
        }
    }
}
