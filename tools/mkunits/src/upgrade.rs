//! `--previous FILE`: a running cluster moves one Kubernetes minor at a time, never back.
//!
//! The rule is kubeadm's (kubernetes/kubernetes cmd/kubeadm/app/phases/upgrade/policy.go at
//! 04791b4906602ffda5ccf9bc4c84d3329f1d7080, `EnforceVersionPolicies`): "kubeadm doesn't support
//! upgrades between two minor versions; e.g. a v1.7 -> v1.9 upgrade is not supported", with
//! `MaximumAllowedMinorVersionUpgradeSkew = 1`; the version skew policy it enforces lets a
//! kubelet be older than the API server but never newer, so control planes move first and by one
//! minor. kubeadm also allows a one-minor downgrade (`MaximumAllowedMinorVersionDowngradeSkew`);
//! hardway refuses it: objects the newer API server already stored in etcd may be in a form the
//! older one cannot read, and the way back hardway offers is an etcd snapshot taken before the
//! upgrade (etcd-snapshot restore). Patch releases move freely within a minor, both ways, as
//! kubeadm allows.
//!
//! The check lives in mkunits, not mkcluster: mkunits is the step whose files change what the
//! nodes run, so it guards every way a version reaches them (mkcluster, a hand-edited document,
//! another inventory tool), and mkcluster never sees the running cluster's document.

use std::path::Path;

use hardway::k8s::Version;
use hardway::{Document, Error};

/// The JSON path both versions live at.
const AT: &str = "cluster.kubernetes_version";

/// Refuses a move from `previous` (the running cluster's document, read from `source`) to
/// `next` that skips a minor or goes back one: exit 2, one line naming both versions.
pub fn check(previous: &Document, source: &Path, next: &Document) -> Result<(), Error> {
    let from_text = &previous.cluster.kubernetes_version;
    let to_text = &next.cluster.kubernetes_version;
    let from = Version::parse(from_text)
        .map_err(|why| Error::invalid(format!("{}: {AT}", source.display()), why))?;
    let to = Version::parse(to_text).map_err(|why| Error::invalid(AT, why))?;
    let refusal = refusal(from, to).map(|why| {
        format!(
            "{to} {why} {from}, the version of the running cluster (--previous {}); Kubernetes \
             moves one minor at a time, as kubeadm upgrade enforces",
            source.display()
        )
    });
    match refusal {
        Some(message) => Err(Error::invalid(AT, message)),
        None => Ok(()),
    }
}

/// Why moving from `from` to `to` is refused (completed with `from` by the caller), or `None`
/// for the same version, a patch release either way, or the next minor.
fn refusal(from: Version, to: Version) -> Option<String> {
    if to.major != from.major {
        return Some("changes the major version from".into());
    }
    if to.minor > from.minor + 1 {
        return Some(format!(
            "skips v{}.{} (upgrade to v{}.{} first) coming from",
            from.major,
            from.minor + 1,
            from.major,
            from.minor + 1
        ));
    }
    if to.minor < from.minor {
        return Some(
            "goes back a minor (restore an etcd snapshot from before the upgrade instead) from"
                .into(),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        Version::parse(text).unwrap()
    }

    #[test]
    fn one_minor_up_and_any_patch_are_allowed() {
        for (from, to) in [
            ("v1.36.0", "v1.37.2"),
            ("v1.36.0", "v1.36.0"),
            ("v1.36.0", "v1.36.4"),
            ("v1.36.4", "v1.36.1"),
            ("v1.35.9", "v1.36.0"),
        ] {
            assert_eq!(refusal(v(from), v(to)), None, "{from} -> {to}");
        }
    }

    #[test]
    fn a_skipped_minor_a_downgrade_and_a_new_major_are_refused() {
        let skip = refusal(v("v1.35.4"), v("v1.37.2")).unwrap();
        assert!(skip.contains("skips v1.36"), "{skip}");
        let back = refusal(v("v1.37.2"), v("v1.36.0")).unwrap();
        assert!(back.starts_with("goes back a minor"), "{back}");
        assert!(refusal(v("v1.37.0"), v("v2.0.0")).is_some());
    }
}
