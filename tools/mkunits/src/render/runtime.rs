//! The container runtime on nodes that run pods, as the document's `cluster.container_runtime`
//! names it: its configuration file and its unit.
//!
//! - containerd-2: containerd 2.x from its upstream release, configuration `version = 3`, the
//!   layout of containerd/containerd docs/cri/config.md ("Config versions", "Cgroup Driver",
//!   "Full configuration — In containerd 2.x") as of release 2.1: the CRI plugin split into
//!   `io.containerd.cri.v1.images` (snapshotter, `pinned_images.sandbox`) and
//!   `io.containerd.cri.v1.runtime` (runtimes, cni). CNI binaries are given as `bin_dirs`, a list:
//!   `bin_dir` is deprecated since containerd 2.1 (same file, "DEPRECATED, use `bin_dirs`
//!   instead (since containerd v2.1)"), so containerd 2.1 or newer is needed
//!   (scripts/fetch-kubernetes.sh pins one).
//! - containerd-1: Debian's containerd 1.6 (bookworm) or 1.7 (trixie), configuration
//!   `version = 2` (the same file's containerd 1.x sections), for Kubernetes v1.35 only.
//! - cri-o: a drop-in (crio.conf(5) tables `crio.runtime`, `crio.image`, `crio.network`) with the
//!   systemd cgroup manager and no deprecated key: `conmon_cgroup` is deprecated in CRI-O and left
//!   out, so CRI-O's own default for it applies. CRI-O is not installed here: its drop-in is
//!   checked as TOML by the tests, never loaded.
//!
//! All three use the systemd cgroup driver, as the kubelet's `cgroupDriver: systemd` requires.

use hardway::doc::ContainerRuntime;
use serde_json::{json, Value};

use super::{preflight, toml, Builder, Ctx};
use crate::layout;
use crate::unit::{ExecLine, Unit};

/// Writes the runtime's configuration and unit; returns the unit's name for the kubelet's
/// dependencies.
pub fn render(ctx: &Ctx, b: &mut Builder) -> &'static str {
    let pause = ctx.release.pause_image;
    let cni_bin = ctx.opts.cni_bin_dir.as_str();
    let (name, config_path, config, exec) = match ctx.runtime {
        ContainerRuntime::Containerd2 => (
            "containerd.service",
            layout::CONTAINERD_CONFIG,
            toml(
                &containerd2_config(pause, cni_bin),
                "containerd 2.x, config version 3 (containerd docs/cri/config.md)",
            ),
            ExecLine::new(layout::bin::CONTAINERD2).flag("config", layout::CONTAINERD_CONFIG),
        ),
        ContainerRuntime::Containerd1 => (
            "containerd.service",
            layout::CONTAINERD_CONFIG,
            toml(
                &containerd1_config(pause, cni_bin),
                "containerd 1.6/1.7 (Debian's), config version 2 (containerd docs/cri/config.md)",
            ),
            ExecLine::new(layout::bin::CONTAINERD).flag("config", layout::CONTAINERD_CONFIG),
        ),
        ContainerRuntime::CriO => (
            "crio.service",
            layout::CRIO_CONFIG,
            toml(&crio_config(pause, cni_bin), "CRI-O drop-in (crio.conf(5))"),
            ExecLine::new(layout::bin::CRIO),
        ),
    };
    match ctx.runtime {
        // crio reads every drop-in of its directory; its unit names none of them.
        ContainerRuntime::CriO => b.config_of(name, config_path, config),
        // containerd's unit names its config (--config), which node-push follows.
        _ => b.file(config_path, config),
    }
    let unit = Unit::daemon(
        name,
        description(ctx.runtime),
        documentation(ctx.runtime),
        exec,
    )
    .kind("notify")
    .wants(&["network-online.target"])
    .requires(&[preflight::UNIT])
    .after(&["network-online.target", "local-fs.target", preflight::UNIT]);
    let unit = match ctx.runtime {
        ContainerRuntime::CriO => unit
            .set("LimitNOFILE", "1048576")
            .set("LimitNPROC", "1048576"),
        // As containerd's own containerd.service does.
        _ => unit
            .pre(ExecLine::new(&format!("-{}", layout::bin::MODPROBE)).arg("overlay"))
            .set("LimitNPROC", "infinity")
            .set("LimitCORE", "infinity"),
    }
    .set("Delegate", "yes")
    .set("KillMode", "process")
    .set("TasksMax", "infinity")
    .set("OOMScoreAdjust", "-999");
    b.service(&unit);
    name
}

fn description(runtime: ContainerRuntime) -> &'static str {
    match runtime {
        ContainerRuntime::Containerd2 => "containerd 2 container runtime",
        ContainerRuntime::Containerd1 => "containerd container runtime (Debian's 1.x)",
        ContainerRuntime::CriO => "CRI-O container runtime",
    }
}

fn documentation(runtime: ContainerRuntime) -> &'static str {
    match runtime {
        ContainerRuntime::CriO => "https://github.com/cri-o/cri-o",
        _ => "https://containerd.io",
    }
}

/// The unix socket the kubelet reaches the runtime at.
pub fn socket(runtime: ContainerRuntime) -> &'static str {
    match runtime {
        ContainerRuntime::CriO => layout::CRIO_SOCKET,
        _ => layout::CONTAINERD_SOCKET,
    }
}

/// containerd 2.x, version 3: each key in the table docs/cri/config.md puts it in for 2.x.
pub fn containerd2_config(pause_image: &str, cni_bin_dir: &str) -> Value {
    json!({
        "version": 3,
        "plugins": {
            "io.containerd.cri.v1.images": {
                "snapshotter": "overlayfs",
                "pinned_images": {"sandbox": pause_image},
            },
            "io.containerd.cri.v1.runtime": {
                "containerd": {
                    "default_runtime_name": "runc",
                    "runtimes": {"runc": {
                        "runtime_type": "io.containerd.runc.v2",
                        "options": {"SystemdCgroup": true},
                    }},
                },
                "cni": {"bin_dirs": [cni_bin_dir], "conf_dir": layout::CNI_CONF_DIR},
            },
        },
    })
}

/// containerd 1.6/1.7, version 2: the one CRI plugin `io.containerd.grpc.v1.cri`.
pub fn containerd1_config(pause_image: &str, cni_bin_dir: &str) -> Value {
    json!({
        "version": 2,
        "plugins": {"io.containerd.grpc.v1.cri": {
            "sandbox_image": pause_image,
            "containerd": {
                "snapshotter": "overlayfs",
                "default_runtime_name": "runc",
                "runtimes": {"runc": {
                    "runtime_type": "io.containerd.runc.v2",
                    "options": {"SystemdCgroup": true},
                }},
            },
            "cni": {"bin_dir": cni_bin_dir, "conf_dir": layout::CNI_CONF_DIR},
        }},
    })
}

/// A CRI-O drop-in: the systemd cgroup manager, the pause image and the CNI directories.
pub fn crio_config(pause_image: &str, cni_bin_dir: &str) -> Value {
    json!({
        "crio": {
            "runtime": {"cgroup_manager": "systemd"},
            "image": {"pause_image": pause_image},
            "network": {"network_dir": layout::CNI_CONF_DIR, "plugin_dirs": [cni_bin_dir]},
        },
    })
}
