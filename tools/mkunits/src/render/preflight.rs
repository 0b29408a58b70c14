//! The node's preflight: refuse cgroup v1 before anything that needs cgroup v2 starts.
//!
//! The kubelet of Kubernetes v1.35 and later refuses to start on a cgroup v1 host
//! (KubeletConfiguration `failCgroupV1` defaults to true from v1.35: kubernetes/website
//! content/en/docs/concepts/architecture/cgroups.md, "Deprecation of cgroup v1"). Left to the
//! kubelet, that failure shows only in its journal, after containerd has started and node-push
//! has reported the node as done. `hardway-preflight.service` is the first unit of every node
//! that runs the kubelet or the control plane; the runtime and the kubelet `Requires=` it, and
//! node-push, which starts a node's services in order and stops at the first failure, stops
//! there with the check's message.
//!
//! The check is a script mkunits writes (so a test can run the very bytes a node gets): the
//! filesystem type of the cgroup root must be cgroup2fs, as the kubelet itself tests with
//! statfs(2). A hybrid host (cgroup v1 controllers with cgroup2 only at
//! /sys/fs/cgroup/unified) is v1 for the kubelet, and for this check.

use hardway::doc::Node;
use hardway::Role;

use super::Builder;
use crate::unit::{ExecLine, Unit};

pub const UNIT: &str = "hardway-preflight.service";
/// Where the check goes on the node.
pub const SCRIPT: &str = "/usr/local/lib/hardway/check-cgroup2";
/// The cgroup root the kubelet uses.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Nodes running the kubelet or the control plane get the preflight.
pub fn needed(node: &Node) -> bool {
    node.has_role(Role::Worker) || node.has_role(Role::Controller)
}

pub fn render(b: &mut Builder) {
    b.file_mode(
        SCRIPT,
        script().into_bytes(),
        hardway::paths::mode::EXECUTABLE,
    );
    let unit = Unit::oneshot(
        UNIT,
        "hardway preflight: the node runs cgroup v2, which the kubelet needs",
        "https://kubernetes.io/docs/concepts/architecture/cgroups/",
        vec![ExecLine::new(SCRIPT).arg(CGROUP_ROOT)],
    )
    .before(&[
        "containerd.service",
        "crio.service",
        "kubelet.service",
        "kube-apiserver.service",
    ]);
    b.service(&unit);
}

/// POSIX sh; `$1` is the cgroup root (a parameter so a test can point it at a cgroup2 mount and
/// at a cgroup v1 host's root). `stat -f -c %T` prints the filesystem type statfs(2) reports.
/// It names no particular release (every supported one refuses cgroup v1), so an upgrade leaves
/// it, and the runtime and kubelet that `Requires=` its unit, alone.
fn script() -> String {
    format!(
        r#"#!/bin/sh
# Written by mkunits: refuse cgroup v1 before containerd and the kubelet start.
root=${{1:-{CGROUP_ROOT}}}
type=$(stat -f -c %T "$root" 2>/dev/null) || type=missing
if [ "$type" != cgroup2fs ]; then
  echo "hardway-preflight: $root is $type, not cgroup2fs: this node runs cgroup v1, and the kubelet refuses cgroup v1 from Kubernetes v1.35 on (failCgroupV1 defaults to true); boot it with cgroup v2 (systemd.unified_cgroup_hierarchy=1, the default of Debian 11 and later)" >&2
  exit 1
fi
echo "hardway-preflight: $root is cgroup2fs (cgroup v2)"
"#
    )
}
