//! The generated files checked by the programs that will read them: systemd-analyze, haproxy,
//! keepalived, Debian's CNI plugins in network namespaces, a YAML parser, and mkcerts' file list.
//! These need root and Debian's packages (scripts/deps.sh); they fail, never skip, without them.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use hardway::doc::{Cluster, ContainerRuntime, KubeProxyMode, PodNetwork};
use hardway::{Node, Role};
// Kubernetes' own YAML (kubelet and kube-proxy configs, add-on manifests) is read as
// `serde_json::Value`: hardway has no typed model of upstream's API objects, only of its own
// document, which is read typed.
use serde_json::{json, Value};
use testkit::cni::{conflist as run_conflist, plugin as cni};

fn require(program: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
        || Path::new(program).is_file();
    assert!(
        found,
        "{program} is missing: install Debian's {package} (scripts/deps.sh does)"
    );
}

/// A root for `systemd-analyze --root`: systemd's own units (else it cannot find
/// sysinit.target), the node's files at their destinations, and a stub for every program a unit
/// runs. Returns the unit paths inside it.
fn systemd_root(root: &Path, out: &Path, node: &Node) -> Vec<PathBuf> {
    std::fs::create_dir_all(root.join("usr/lib/systemd")).unwrap();
    let status = Command::new("cp")
        .args(["-a", "/usr/lib/systemd/system"])
        .arg(root.join("usr/lib/systemd/"))
        .status()
        .unwrap();
    assert!(status.success(), "cannot copy /usr/lib/systemd/system");
    let mut units = Vec::new();
    for (dest, src) in files(node) {
        let target = root.join(dest.trim_start_matches('/'));
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(out.join(&src), &target).unwrap();
        if dest.starts_with("/etc/systemd/system/") {
            let text = std::fs::read_to_string(&target).unwrap();
            for program in exec_programs(&text) {
                let stub = root.join(program.trim_start_matches('/'));
                if !stub.exists() {
                    std::fs::create_dir_all(stub.parent().unwrap()).unwrap();
                    std::fs::write(&stub, "#!/bin/sh\nexit 0\n").unwrap();
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755))
                        .unwrap();
                }
            }
            units.push(target);
        }
    }
    units
}

fn verify_all_units(fixture_name: &str, edit: impl FnOnce(&mut Cluster)) {
    require("systemd-analyze", "systemd");
    let (tmp, out, doc) = render_variant(fixture_name, edit, &[]);
    let cluster = &doc.cluster;
    let mut checked = 0;
    for node in &doc.nodes {
        let root = tmp.path().join("root").join(&node.name);
        let units = systemd_root(&root, &out, node);
        assert!(!units.is_empty());
        testkit::assert_units_verify(&root, &units, &format!("{} ({cluster:?})", node.name));
        checked += units.len();
    }
    assert!(checked > 0);
}

#[test]
fn systemd_verifies_every_unit_lab() {
    verify_all_units("lab.json", |_| {});
}

#[test]
fn systemd_verifies_every_unit_dual_stack() {
    verify_all_units("ebook-dualstack.json", |_| {});
}

#[test]
fn systemd_verifies_every_unit_cri_o_and_flannel() {
    verify_all_units("ebook-dualstack.json", |c| {
        c.container_runtime = Some(ContainerRuntime::CriO);
        c.pod_network = PodNetwork::Flannel;
    });
}

/// The VM test's document: v1.35 on Debian's containerd 1.x, kube-proxy in nftables mode.
#[test]
fn systemd_verifies_every_unit_v1_35_debian_containerd_nftables() {
    verify_all_units("ebook-dualstack.json", |c| {
        c.kubernetes_version = "v1.35.0".into();
        c.container_runtime = Some(ContainerRuntime::Containerd1);
        c.kube_proxy_mode = Some(KubeProxyMode::Nftables);
    });
}

#[test]
fn haproxy_and_keepalived_accept_their_configs() {
    require("haproxy", "haproxy");
    require("keepalived", "keepalived");
    let (_tmp, out, doc) = render("ebook-dualstack.json", &[]);
    let mut checked = 0;
    for name in ["lb1", "lb2"] {
        let n = node(&doc, name);
        let haproxy = out.join(format!("nodes/{name}/etc/haproxy/haproxy.cfg"));
        let o = Command::new("haproxy")
            .arg("-c")
            .arg("-f")
            .arg(&haproxy)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(
            o.status.success() && !stderr.contains("WARNING"),
            "haproxy -c on {name}: {stderr}{}",
            String::from_utf8_lossy(&o.stdout)
        );
        let text = read_dest(&out, n, "/etc/haproxy/haproxy.cfg");
        assert!(text.contains("bind 10.240.0.40:6443"));
        assert!(text.contains("server controller1 10.240.0.21:6443"));
        assert!(text.contains("server controller2 10.240.0.22:6443"));

        let keepalived = out.join(format!("nodes/{name}/etc/keepalived/keepalived.conf"));
        let o = Command::new("keepalived")
            .args(["-t", "-l", "-f"])
            .arg(&keepalived)
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            o.status.success() && said.trim().is_empty(),
            "keepalived -t on {name}: {said}"
        );
        checked += 1;
    }
    assert_eq!(checked, 2);
    // The first lb in document order wins the VIP.
    let prio = |name: &str| {
        let text = read_dest(&out, node(&doc, name), "/etc/keepalived/keepalived.conf");
        text.lines()
            .find_map(|l| l.trim().strip_prefix("priority "))
            .unwrap()
            .parse::<u32>()
            .unwrap()
    };
    assert!(prio("lb1") > prio("lb2"));
    // Controllers holding the VIP themselves (no lb node): keepalived tracks the apiserver.
    let (_tmp, out, doc) = render("lab.json", &[]);
    let conf = out.join("nodes/node-1/etc/keepalived/keepalived.conf");
    let o = Command::new("keepalived")
        .args(["-t", "-l", "-f"])
        .arg(&conf)
        .output()
        .unwrap();
    assert!(o.status.success() && o.stderr.is_empty() && o.stdout.is_empty());
    let text = read_dest(
        &out,
        node(&doc, "node-1"),
        "/etc/keepalived/keepalived.conf",
    );
    let vip = doc.cluster.api.vip.expect("the fixture has a VIP");
    assert!(text.contains("process kube-apiserver") && text.contains(&format!("{vip}/24")));
}

/// Every YAML file parses and has the apiVersion and kind its reader expects.
#[test]
fn every_yaml_parses_with_the_right_kind() {
    let expected = [
        (
            "/var/lib/kubelet/kubelet-config.yaml",
            "kubelet.config.k8s.io/v1beta1",
            "KubeletConfiguration",
        ),
        (
            "/var/lib/kube-proxy/kube-proxy-config.yaml",
            "kubeproxy.config.k8s.io/v1alpha1",
            "KubeProxyConfiguration",
        ),
        (
            "/var/lib/kubernetes/kube-scheduler.yaml",
            "kubescheduler.config.k8s.io/v1",
            "KubeSchedulerConfiguration",
        ),
        (
            "/var/lib/kubernetes/audit-policy.yaml",
            "audit.k8s.io/v1",
            "Policy",
        ),
    ];
    let (_tmp, out, doc) = render("ebook-dualstack.json", &[]);
    let mut seen = BTreeSet::new();
    for n in &doc.nodes {
        for (dest, src) in files(n) {
            // The add-ons are multi-document manifests with a test of their own.
            if !dest.ends_with(".yaml") || dest.starts_with("/etc/hardway/addons/") {
                continue;
            }
            let text = std::fs::read_to_string(out.join(&src)).unwrap();
            let value: Value =
                serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{src} is not YAML: {e}"));
            let (_, api, kind) = expected
                .iter()
                .find(|(d, _, _)| *d == dest)
                .unwrap_or_else(|| panic!("unexpected YAML file {dest}"));
            assert_eq!(value["apiVersion"], *api, "{src}");
            assert_eq!(value["kind"], *kind, "{src}");
            seen.insert(dest);
        }
        for (dest, src) in files(n) {
            if dest.ends_with(".conflist") || dest.ends_with(".conf") && dest.contains("/cni/") {
                let _: Value = serde_json::from_slice(&std::fs::read(out.join(&src)).unwrap())
                    .unwrap_or_else(|e| panic!("{src} is not JSON: {e}"));
            }
        }
    }
    assert_eq!(seen.len(), expected.len(), "{seen:?}");
    let w = node(&doc, "worker2");
    let kubelet: Value =
        serde_yaml_ng::from_str(&read_dest(&out, w, "/var/lib/kubelet/kubelet-config.yaml"))
            .unwrap();
    assert_eq!(kubelet["authentication"]["anonymous"]["enabled"], false);
    assert_eq!(kubelet["authentication"]["webhook"]["enabled"], true);
    assert_eq!(kubelet["authorization"]["mode"], "Webhook");
    assert_eq!(kubelet["cgroupDriver"], "systemd");
    assert_eq!(
        kubelet["clusterDNS"],
        json!(["10.32.0.10", "fd00:10:32::a"])
    );
    assert_eq!(kubelet["podCIDR"], "10.200.1.0/24,fd00:10:200:1::/64");
    assert_eq!(kubelet["failCgroupV1"], true);
    assert_eq!(
        kubelet["containerRuntimeEndpoint"],
        "unix:///run/containerd/containerd.sock"
    );
    // The kubelet registers the node under the name its certificate has (system:node:worker2),
    // whatever the machine's hostname is.
    let unit = read_dest(&out, w, "/etc/systemd/system/kubelet.service");
    assert!(
        exec_start(&unit).contains(&"--hostname-override=worker2".to_string()),
        "{unit}"
    );
    let proxy: Value = serde_yaml_ng::from_str(&read_dest(
        &out,
        w,
        "/var/lib/kube-proxy/kube-proxy-config.yaml",
    ))
    .unwrap();
    assert_eq!(proxy["clusterCIDR"], "10.200.0.0/16,fd00:10:200::/56");
    assert_eq!(proxy["hostnameOverride"], "worker2");
    assert_eq!(proxy["mode"], "iptables");
}

/// kube-proxy in the document's nftables mode (GA since v1.33), for every supported release.
#[test]
fn kube_proxy_nftables_mode_renders() {
    for version in ["v1.35.0", "v1.36.0", "v1.37.2"] {
        let (_tmp, out, doc) = render_variant(
            "lab.json",
            |c| {
                c.kubernetes_version = version.into();
                c.kube_proxy_mode = Some(KubeProxyMode::Nftables);
            },
            &[],
        );
        for n in &doc.nodes {
            let proxy: Value = serde_yaml_ng::from_str(&read_dest(
                &out,
                n,
                "/var/lib/kube-proxy/kube-proxy-config.yaml",
            ))
            .unwrap();
            assert_eq!(proxy["apiVersion"], "kubeproxy.config.k8s.io/v1alpha1");
            assert_eq!(proxy["mode"], "nftables", "{version}");
            assert_eq!(proxy["hostnameOverride"], n.name.as_str());
        }
    }
}

/// Flags that Kubernetes up to v1.37 removed or deprecated never appear.
#[test]
fn no_removed_or_deprecated_flags() {
    let forbidden = [
        "--container-runtime=",
        "--network-plugin",
        "--pod-cidr",
        "--api-servers",
        "--insecure-bind-address",
        "--insecure-port",
        "--apiserver-count",
        "--master=",
        "--address=",
        "--port=",
        "--cluster-dns",
        "--cgroup-driver",
        "--anonymous-auth",
        "--client-ca-file=/var/lib/kubelet",
        "--tls-cert-file=/var/lib/kubelet",
        "--container-runtime-endpoint",
        "--reconcile-cidr",
        "--cloud-provider",
        "--service_account",
    ];
    for (fixture_name, runtime) in [
        ("lab.json", ContainerRuntime::Containerd2),
        ("ebook-dualstack.json", ContainerRuntime::CriO),
    ] {
        let (_tmp, out, doc) =
            render_variant(fixture_name, |c| c.container_runtime = Some(runtime), &[]);
        for n in &doc.nodes {
            for (dest, src) in files(n) {
                if !dest.starts_with("/etc/systemd/system/") {
                    continue;
                }
                let text = std::fs::read_to_string(out.join(&src)).unwrap();
                for flag in forbidden {
                    assert!(!text.contains(flag), "{src} uses {flag}");
                }
            }
        }
    }
    let (_tmp, out, doc) = render("lab.json", &[]);
    let cm = read_dest(
        &out,
        node(&doc, "node-1"),
        "/etc/systemd/system/kube-controller-manager.service",
    );
    assert!(cm.contains("--allocate-node-cidrs=false"));
    assert!(cm.contains("--cluster-signing-key-file=/var/lib/kubernetes/ca-key.pem"));
    assert!(cm.contains("--use-service-account-credentials=true"));
    let api = read_dest(
        &out,
        node(&doc, "node-1"),
        "/etc/systemd/system/kube-apiserver.service",
    );
    for flag in [
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
        "--etcd-servers=https://10.240.0.11:2379,https://10.240.0.12:2379,https://10.240.0.13:2379",
        "--requestheader-client-ca-file=/var/lib/kubernetes/front-proxy-ca.pem",
        "--audit-log-path=/var/log/kubernetes/audit.log",
    ] {
        assert!(api.contains(flag), "{flag} missing");
    }
    let endpoint = doc
        .cluster
        .api
        .endpoint
        .as_deref()
        .expect("mkcluster sets the endpoint");
    assert!(api.contains(&format!("--service-account-issuer={endpoint}")));
    let (_tmp, out, doc) = render("ebook-dualstack.json", &[]);
    let api = read_dest(
        &out,
        node(&doc, "controller2"),
        "/etc/systemd/system/kube-apiserver.service",
    );
    assert!(api.contains("--service-cluster-ip-range=10.32.0.0/24,fd00:10:32::/112"));
    // Controllers that are not workers have no kube-proxy but reach pods through route-sync's
    // routes: aggregated API calls go to endpoint addresses.
    assert!(api.contains("--enable-aggregator-routing=true"), "{api}");
    // Where they reach no pod (flannel runs only on workers), the flag would only make
    // webhooks time out; where kube-proxy runs (lab's controllers are workers), Service IPs do.
    let (_tmp, out, doc) = render_variant(
        "ebook-dualstack.json",
        |c| c.pod_network = PodNetwork::Flannel,
        &[],
    );
    let api = read_dest(
        &out,
        node(&doc, "controller2"),
        "/etc/systemd/system/kube-apiserver.service",
    );
    assert!(!api.contains("enable-aggregator-routing"), "{api}");
    let (_tmp, out, doc) = render("lab.json", &[]);
    let api = read_dest(
        &out,
        node(&doc, "node-1"),
        "/etc/systemd/system/kube-apiserver.service",
    );
    assert!(!api.contains("enable-aggregator-routing"), "{api}");
}

/// Every certificate, key and kubeconfig a unit or config names is one of `hardway::paths`
/// (mkcerts writes exactly those) and, when mkcerts is built next to this test, is in the node's
/// `files` after `mkcerts | mkunits`.
#[test]
fn every_credential_path_is_mkcerts_or_ours() {
    use ::hardway::paths::{etcd, flannel, kube_proxy, kubelet, kubernetes};
    let known: BTreeSet<&str> = [
        etcd::CA,
        etcd::SERVER_CERT,
        etcd::SERVER_KEY,
        etcd::PEER_CERT,
        etcd::PEER_KEY,
        etcd::HEALTHCHECK_CERT,
        etcd::HEALTHCHECK_KEY,
        kubernetes::CA,
        kubernetes::CA_KEY,
        kubernetes::APISERVER_CERT,
        kubernetes::APISERVER_KEY,
        kubernetes::ETCD_CA,
        kubernetes::APISERVER_ETCD_CLIENT_CERT,
        kubernetes::APISERVER_ETCD_CLIENT_KEY,
        kubernetes::APISERVER_KUBELET_CLIENT_CERT,
        kubernetes::APISERVER_KUBELET_CLIENT_KEY,
        kubernetes::FRONT_PROXY_CA,
        kubernetes::FRONT_PROXY_CLIENT_CERT,
        kubernetes::FRONT_PROXY_CLIENT_KEY,
        kubernetes::SA_KEY,
        kubernetes::SA_PUB,
        kubernetes::ENCRYPTION_CONFIG,
        kubernetes::CONTROLLER_MANAGER_KUBECONFIG,
        kubernetes::SCHEDULER_KUBECONFIG,
        kubelet::CA,
        kubelet::CERT,
        kubelet::KEY,
        kubelet::KUBECONFIG,
        kube_proxy::KUBECONFIG,
        flannel::ETCD_CA,
        flannel::ETCD_CERT,
        flannel::ETCD_KEY,
    ]
    .into_iter()
    .collect();
    let mkcerts = testkit::target_dir().join("mkcerts");
    for network in [PodNetwork::Routes, PodNetwork::Flannel] {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        // The pod network is the document's (as mkcluster sets it), so mkcerts makes flannel's
        // etcd client certificate when flannel is chosen.
        let mut source = testkit::fixture_document("ebook-dualstack.json");
        source.cluster.pod_network = network;
        let source_path = write_document(tmp.path(), "source.json", &source);
        let input = if mkcerts.exists() {
            // The real pipeline: mkcerts' files are then in the document.
            let o = Command::new(&mkcerts)
                .arg("--dir")
                .arg(&out)
                .arg("-f")
                .arg(&source_path)
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "mkcerts: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            let path = tmp.path().join("with-pki.json");
            std::fs::write(&path, &o.stdout).unwrap();
            path
        } else {
            source_path
        };
        let bin = bin_dir();
        let run = mkunits(&input, &out, bin.path(), &[]);
        let mut named = 0;
        for n in &run.doc.nodes {
            let dests: BTreeSet<String> = files(n).into_iter().map(|(d, _)| d).collect();
            for (dest, src) in files(n) {
                if !src.starts_with("nodes/") || dest.ends_with("cluster.json") {
                    continue;
                }
                let text = std::fs::read_to_string(out.join(&src)).unwrap();
                for path in credential_paths(&text) {
                    named += 1;
                    if dests.contains(&path) {
                        continue;
                    }
                    assert!(
                        known.contains(path.as_str()),
                        "{src} names {path}, which neither mkunits nor mkcerts (hardway::paths) makes"
                    );
                    assert!(
                        !mkcerts.exists(),
                        "{src} names {path}, but after mkcerts node {} has no such file",
                        n.name
                    );
                }
            }
        }
        assert!(named > 50, "only {named} credential paths found");
    }
}

/// Absolute paths of certificates, keys, kubeconfigs and credential-bearing configs in a text.
fn credential_paths(text: &str) -> Vec<String> {
    let roots = [
        "/etc/etcd/",
        "/var/lib/kubernetes/",
        "/var/lib/kubelet/",
        "/var/lib/kube-proxy/",
        "/etc/flannel/",
    ];
    let mut found = Vec::new();
    for token in text.split(|c: char| c.is_whitespace() || "=,\"'<>:".contains(c)) {
        if roots.iter().any(|r| token.starts_with(r))
            && (token.ends_with(".pem")
                || token.ends_with(".key")
                || token.ends_with(".pub")
                || token.contains("kubeconfig")
                || token.ends_with("encryption-config.yaml"))
        {
            found.push(token.to_string());
        }
    }
    found
}

#[test]
fn cni_bridge_conflist_gives_an_address_in_the_pod_cidr_and_del_releases_it() {
    let (_tmp, out, doc) = render("ebook-dualstack.json", &[]);
    let w = node(&doc, "worker2");
    let list: Value =
        serde_json::from_str(&read_dest(&out, w, "/etc/cni/net.d/10-bridge.conflist")).unwrap();
    let loopback: Value =
        serde_json::from_str(&read_dest(&out, w, "/etc/cni/net.d/99-loopback.conf")).unwrap();
    let cidrs: Vec<ipnet::IpNet> = w.pod_cidrs.clone();

    let node_ns = testkit::netns::Netns::new("mkun");
    let pod_ns = testkit::netns::Netns::new("mkup");
    let pod_path = format!("/var/run/netns/{}", pod_ns.name());
    let data = tempfile::tempdir().unwrap();
    let id = format!("mkunits-test-{}", std::process::id());

    let lo = cni(&node_ns, "ADD", &loopback, &pod_path, &id);
    assert!(!lo.is_null());
    let result = run_conflist(&node_ns, "ADD", &list, &pod_path, &id, data.path(), None);
    let ips: Vec<ipnet::IpNet> = result["ips"]
        .as_array()
        .unwrap_or_else(|| panic!("no ips in {result}"))
        .iter()
        .map(|ip| ip["address"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(ips.len(), 2, "{result}");
    for cidr in &cidrs {
        let ip = ips
            .iter()
            .find(|ip| ip.addr().is_ipv6() == cidr.addr().is_ipv6())
            .unwrap_or_else(|| panic!("no address for {cidr} in {result}"));
        assert!(cidr.contains(&ip.addr()), "{ip} is not in {cidr}");
        assert_eq!(ip.prefix_len(), cidr.prefix_len());
        let shown = pod_ns.ip(&["addr", "show", "dev", "eth0"]);
        assert!(shown.contains(&ip.addr().to_string()), "{shown}");
        // The lease is on disk under the network's name.
        assert!(data
            .path()
            .join("bridge")
            .join(ip.addr().to_string())
            .exists());
    }
    // The node side: cni0 holds the gateway of the pod CIDR, as route-sync expects.
    let bridge = node_ns.ip(&["addr", "show", "dev", "cni0"]);
    assert!(bridge.contains("10.200.1.1/24"), "{bridge}");

    run_conflist(
        &node_ns,
        "DEL",
        &list,
        &pod_path,
        &id,
        data.path(),
        Some(&result),
    );
    for ip in &ips {
        assert!(
            !data
                .path()
                .join("bridge")
                .join(ip.addr().to_string())
                .exists(),
            "DEL left the lease of {ip}"
        );
    }
    let links = pod_ns.ip(&["link", "show"]);
    assert!(!links.contains("eth0"), "DEL left eth0: {links}");
    cni(&node_ns, "DEL", &loopback, &pod_path, &id);
}

/// Debian's containerd 1.x itself reads the config mkunits writes for a v1.35 + containerd-1
/// document: the values land in the tables it uses (a key in the wrong table would leave its
/// default in the dump: SystemdCgroup false, /opt/cni/bin).
#[test]
fn debian_containerd_1_loads_its_config_with_systemd_cgroups_and_cni_dirs() {
    require("containerd", "containerd");
    let (_tmp, out, doc) = render_variant(
        "lab.json",
        |c| {
            c.kubernetes_version = "v1.35.0".into();
            c.container_runtime = Some(ContainerRuntime::Containerd1);
        },
        &["--cni-bin-dir", "/usr/lib/cni"],
    );
    let n = node(&doc, "node-1");
    let unit = read_dest(&out, n, "/etc/systemd/system/containerd.service");
    assert_eq!(
        exec_start(&unit)[0],
        "/usr/bin/containerd",
        "Debian's binary"
    );
    let (_, src) = files(n)
        .into_iter()
        .find(|(d, _)| d == "/etc/containerd/config.toml")
        .unwrap();
    let o = Command::new("containerd")
        .arg("--config")
        .arg(out.join(src))
        .args(["config", "dump"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "containerd config dump: {stderr}");
    let dump = String::from_utf8_lossy(&o.stdout);
    let pause = ::hardway::k8s::release("v1.35.0").unwrap().pause_image;
    for line in [
        "version = 2".to_string(),
        "SystemdCgroup = true".to_string(),
        "bin_dir = \"/usr/lib/cni\"".to_string(),
        "conf_dir = \"/etc/cni/net.d\"".to_string(),
        format!("sandbox_image = \"{pause}\""),
    ] {
        assert!(
            dump.lines().any(|l| l.trim() == line),
            "{line} not in containerd's view of the config:\n{dump}"
        );
    }
    assert!(!dump.contains("SystemdCgroup = false"), "{dump}");
}

/// The containerd 2 config (`version = 3`) against containerd 2's documented layout. containerd 2
/// is NOT installed here (Debian ships 1.6/1.7; scripts/fetch-kubernetes.sh fetches 2.x where
/// the internet is reachable), so no containerd 2 reads this file in this test: it is parsed
/// with the `toml` crate and every key is checked to sit in the table containerd 2.x reads it
/// from, per containerd/containerd docs/cri/config.md as of v2.1 ("Config versions": version 3
/// from v2.0; "Cgroup Driver — In containerd 2.x":
/// `[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options] SystemdCgroup`;
/// "Full configuration — In containerd 2.x": `[plugins.'io.containerd.cri.v1.images']
/// snapshotter`, `[...images'.pinned_images] sandbox`, `[...runtime'.cni] bin_dirs` (a list;
/// `bin_dir` deprecated since v2.1) and `conf_dir`), and no containerd 1.x table is left in it.
#[test]
fn containerd_2_config_has_the_documented_version_3_layout() {
    for version in ["v1.35.0", "v1.36.0", "v1.37.2"] {
        let (_tmp, out, doc) =
            render_variant("lab.json", |c| c.kubernetes_version = version.into(), &[]);
        let n = node(&doc, "node-1");
        let unit = read_dest(&out, n, "/etc/systemd/system/containerd.service");
        assert_eq!(
            exec_start(&unit)[0],
            "/usr/local/bin/containerd",
            "upstream's binary"
        );
        let config = read_toml(&out, n, "/etc/containerd/config.toml");
        assert_eq!(config["version"].as_integer(), Some(3), "{config}");
        let plugins = config["plugins"].as_table().unwrap();
        let names: BTreeSet<&str> = plugins.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "io.containerd.cri.v1.images",
                "io.containerd.cri.v1.runtime"
            ]
            .into(),
            "only the v3 CRI plugins; no io.containerd.grpc.v1.cri (1.x) keys"
        );
        let images = plugins["io.containerd.cri.v1.images"].as_table().unwrap();
        assert_eq!(images["snapshotter"].as_str(), Some("overlayfs"));
        assert_eq!(
            images["pinned_images"]["sandbox"].as_str(),
            Some(::hardway::k8s::release(version).unwrap().pause_image)
        );
        let runtime = plugins["io.containerd.cri.v1.runtime"].as_table().unwrap();
        let containerd = runtime["containerd"].as_table().unwrap();
        assert_eq!(containerd["default_runtime_name"].as_str(), Some("runc"));
        let runc = containerd["runtimes"]["runc"].as_table().unwrap();
        assert_eq!(runc["runtime_type"].as_str(), Some("io.containerd.runc.v2"));
        assert_eq!(runc["options"]["SystemdCgroup"].as_bool(), Some(true));
        let cni = runtime["cni"].as_table().unwrap();
        assert!(
            cni.get("bin_dir").is_none(),
            "bin_dir is deprecated in containerd 2.1"
        );
        let dirs: Vec<&str> = cni["bin_dirs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap())
            .collect();
        assert_eq!(dirs, ["/usr/lib/cni"]);
        assert_eq!(cni["conf_dir"].as_str(), Some("/etc/cni/net.d"));
    }
}

/// The preflight script a node gets, run for real: accepted on a cgroup2 filesystem, refused
/// with its message on what /sys/fs/cgroup is on a cgroup v1 host (a tmpfs holding the v1
/// hierarchies). Both mounts are made in a private mount namespace (`unshare --mount`), so the
/// machine's own mounts are untouched. And on this machine's real /sys/fs/cgroup it agrees with
/// the kernel's own mount table. Needs root (mount).
#[test]
fn preflight_refuses_cgroup_v1_and_accepts_cgroup_v2() {
    testkit::require_root();
    require("unshare", "util-linux");
    let (tmp, out, doc) = render("lab.json", &[]);
    let n = node(&doc, "node-1");
    let unit = read_dest(&out, n, "/etc/systemd/system/hardway-preflight.service");
    assert_eq!(
        exec_start(&unit),
        ["/usr/local/lib/hardway/check-cgroup2", "/sys/fs/cgroup"]
    );
    let (_, src) = files(n)
        .into_iter()
        .find(|(d, _)| d == "/usr/local/lib/hardway/check-cgroup2")
        .unwrap();
    let script = out.join(src);
    let mountpoint = tmp.path().join("cgroup");
    std::fs::create_dir(&mountpoint).unwrap();
    let run_in_mount_ns = |fstype: &str| {
        let command = format!(
            "mount -t {fstype} none '{m}' && exec '{s}' '{m}'",
            m = mountpoint.display(),
            s = script.display()
        );
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &command])
            .output()
            .unwrap()
    };
    let v2 = run_in_mount_ns("cgroup2");
    assert!(
        v2.status.success(),
        "cgroup2fs refused: {}",
        String::from_utf8_lossy(&v2.stderr)
    );
    assert!(String::from_utf8_lossy(&v2.stdout).contains("is cgroup2fs"));
    let v1 = run_in_mount_ns("tmpfs");
    assert_eq!(v1.status.code(), Some(1));
    let said = String::from_utf8_lossy(&v1.stderr);
    assert_eq!(said.lines().count(), 1, "{said}");
    assert!(
        said.contains("is tmpfs, not cgroup2fs")
            && said.contains("the kubelet refuses cgroup v1 from Kubernetes v1.35 on"),
        "{said}"
    );
    // This machine: the script's verdict is the kernel's mount table's.
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let is_v2 = mounts.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.get(1) == Some(&"/sys/fs/cgroup") && f.get(2) == Some(&"cgroup2")
    });
    let here = Command::new(&script)
        .arg("/sys/fs/cgroup")
        .output()
        .unwrap();
    assert_eq!(here.status.success(), is_v2, "{here:?}");
}

/// Seed 004's shape: one node with all four roles. It holds the VIP with keepalived tracking its
/// own apiserver (haproxy could not bind the API port beside it), and every unit verifies.
#[test]
fn single_node_with_every_role() {
    require("systemd-analyze", "systemd");
    require("keepalived", "keepalived");
    let tmp = tempfile::tempdir().unwrap();
    let mut doc = testkit::fixture_document("lab.json");
    doc.nodes.truncate(1);
    doc.nodes[0].roles = vec![Role::Etcd, Role::Controller, Role::Worker, Role::Lb];
    let input = write_document(tmp.path(), "single.json", &doc);
    let bin = bin_dir();
    let out = tmp.path().join("out");
    let run = mkunits(&input, &out, bin.path(), &["--etcd-profile", "slow"]);
    let n = &run.doc.nodes[0];
    assert_eq!(
        services(n),
        [
            "hardway-preflight.service",
            "hardway-kernel.service",
            "route-sync.service",
            "etcd.service",
            "kube-apiserver.service",
            "kube-controller-manager.service",
            "kube-scheduler.service",
            "hardway-addons.service",
            "hardway-pod-cidrs.timer",
            "hardway-masquerade.service",
            "containerd.service",
            "kubelet.service",
            "kube-proxy.service",
            "keepalived.service",
        ]
    );
    let etcd = read_dest(&out, n, "/etc/systemd/system/etcd.service");
    assert!(etcd.contains("--initial-cluster=node-1=https://10.240.0.11:2380 \\"));
    let keepalived = read_dest(&out, n, "/etc/keepalived/keepalived.conf");
    assert!(keepalived.contains("process kube-apiserver"));
    let conf = out.join("nodes/node-1/etc/keepalived/keepalived.conf");
    let o = Command::new("keepalived")
        .args(["-t", "-l", "-f"])
        .arg(&conf)
        .output()
        .unwrap();
    assert!(o.status.success() && o.stderr.is_empty() && o.stdout.is_empty());
    let root = tmp.path().join("root");
    let units = systemd_root(&root, &out, n);
    testkit::assert_units_verify(&root, &units, "the node's units");
}

/// PyPI's kubernetes-validate (scripts/deps.sh installs it in /opt/hardway/venv).
fn kubernetes_validate() -> PathBuf {
    let path = std::env::var_os("KUBERNETES_VALIDATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/hardway/venv/bin/kubernetes-validate"));
    assert!(
        path.is_file(),
        "{} is missing: run scripts/deps.sh (pip install kubernetes-validate==1.37.0 in a venv)",
        path.display()
    );
    path
}

/// Every object of a multi-document YAML file.
fn yaml_objects(text: &str) -> Vec<Value> {
    use serde::Deserialize;
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

const ADDONS: [&str; 2] = [
    "/etc/hardway/addons/coredns.yaml",
    "/etc/hardway/addons/apiserver-to-kubelet.yaml",
];

/// Each add-on manifest, rendered for each supported release, passes kubernetes-validate's
/// strict check against that release's OpenAPI schemas (kubernetes-validate 1.37.0 ships
/// v1.35.0-v1.37.0). What this does not run: an apiserver (no Kubernetes server binary here),
/// so admission and defaulting are not exercised; `kubectl apply --dry-run=client` is no help
/// offline (it needs the server's discovery even with --validate=false).
#[test]
fn addon_manifests_validate_against_every_supported_release() {
    let validate = kubernetes_validate();
    for fixture_name in ["lab.json", "ebook-dualstack.json"] {
        for release in hardway::k8s::RELEASES {
            let tmp = tempfile::tempdir().unwrap();
            let mut doc = testkit::fixture_document(fixture_name);
            let version = format!("v1.{}.{}", release.minor, release.latest_patch);
            doc.cluster.kubernetes_version = version.clone();
            let input = write_document(tmp.path(), "doc.json", &doc);
            let bin = bin_dir();
            let out = tmp.path().join("out");
            let run = mkunits(&input, &out, bin.path(), &[]);
            let applier = run
                .doc
                .nodes_with(Role::Controller)
                .min_by_key(|n| n.name.clone())
                .unwrap();
            for dest in ADDONS {
                let (_, src) = files(applier)
                    .into_iter()
                    .find(|(d, _)| d == dest)
                    .unwrap_or_else(|| panic!("{dest} missing on {}", applier.name));
                let o = Command::new(&validate)
                    .args(["--strict", "--kubernetes-version"])
                    .arg(format!("1.{}.0", release.minor))
                    .arg(out.join(&src))
                    .output()
                    .unwrap();
                assert!(
                    o.status.success(),
                    "{fixture_name} {version} {dest}: {}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                );
                let passed = String::from_utf8_lossy(&o.stdout)
                    .matches(" passed ")
                    .count()
                    + String::from_utf8_lossy(&o.stderr)
                        .matches(" passed ")
                        .count();
                let objects = yaml_objects(&std::fs::read_to_string(out.join(&src)).unwrap());
                assert_eq!(passed, objects.len(), "every object checked: {o:?}");
            }
            let dns = yaml_objects(&read_dest(&out, applier, ADDONS[0]));
            let deployment = dns.iter().find(|o| o["kind"] == "Deployment").unwrap();
            assert_eq!(
                deployment["spec"]["template"]["spec"]["containers"][0]["image"],
                release.coredns_image
            );
        }
    }
}

/// Where the add-ons go and what they say: one controller (the first by name) gets them and
/// the units that apply them; kube-dns sits at the document's DNS addresses, both families in
/// a dual-stack cluster; the Corefile serves the document's cluster domain; the apiserver's
/// kubelet client (mkcerts' CN) is bound to the kubelet API role.
#[test]
fn addons_go_to_the_first_controller_with_the_documents_dns_and_domain() {
    require("systemd-analyze", "systemd");
    let (_tmp, out, doc) = render("ebook-dualstack.json", &[]);
    for name in ["controller2", "worker1", "lb1"] {
        assert!(
            !files(node(&doc, name))
                .iter()
                .any(|(d, _)| d.contains("/addons/")),
            "{name} got add-ons"
        );
    }
    let c1 = node(&doc, "controller1");
    let order = services(c1);
    let at = |u: &str| order.iter().position(|s| s == u).unwrap();
    assert!(at("kube-apiserver.service") < at("hardway-addons.service"));
    assert!(at("hardway-addons.service") < at("hardway-pod-cidrs.timer"));

    let objects = yaml_objects(&read_dest(&out, c1, ADDONS[0]));
    let kinds: Vec<&str> = objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
            "Deployment",
            "Service"
        ]
    );
    let service = &objects[5];
    let dns = &doc
        .cluster
        .service_ips
        .as_ref()
        .expect("mkcluster sets service IPs")
        .dns;
    assert_eq!(service["metadata"]["name"], "kube-dns");
    assert_eq!(service["metadata"]["namespace"], "kube-system");
    assert_eq!(service["spec"]["clusterIPs"], json!(dns));
    assert_eq!(service["spec"]["clusterIP"], json!(dns[0]));
    assert_eq!(service["spec"]["ipFamilyPolicy"], "RequireDualStack");
    assert_eq!(service["spec"]["ipFamilies"], json!(["IPv4", "IPv6"]));
    assert_eq!(objects[4]["spec"]["replicas"], 2);
    let corefile = objects[3]["data"]["Corefile"].as_str().unwrap();
    assert!(
        corefile.contains("kubernetes cluster.local in-addr.arpa ip6.arpa {"),
        "{corefile}"
    );
    // kubelet's clusterDNS and the Service agree.
    let kubelet: Value = serde_yaml_ng::from_str(&read_dest(
        &out,
        node(&doc, "worker1"),
        "/var/lib/kubelet/kubelet-config.yaml",
    ))
    .unwrap();
    assert_eq!(kubelet["clusterDNS"], service["spec"]["clusterIPs"]);

    let rbac = yaml_objects(&read_dest(&out, c1, ADDONS[1]));
    assert_eq!(
        rbac[0]["metadata"]["name"],
        "system:kube-apiserver-to-kubelet"
    );
    assert_eq!(
        rbac[1]["subjects"][0]["name"],
        hardway::paths::cert::APISERVER_KUBELET_CLIENT_USER
    );
    assert_eq!(rbac[1]["roleRef"]["name"], rbac[0]["metadata"]["name"]);

    for script in [
        "/etc/hardway/addons/apply.sh",
        "/etc/hardway/addons/pod-cidrs.sh",
    ] {
        let entry = c1.files.iter().find(|f| f.dest == script).unwrap();
        assert_eq!(entry.mode, "0755");
        let o = Command::new("sh")
            .arg("-n")
            .arg(out.join(&entry.src))
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "sh -n {script}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // The timer and the units it and the add-ons run verify (with every other unit of the node).
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let units = systemd_root(&root, &out, c1);
    let timer = root.join("etc/systemd/system/hardway-pod-cidrs.timer");
    assert!(units.contains(&timer), "{units:?}");
    testkit::assert_units_verify(&root, &units, "the node's units and the pod-cidrs timer");
}

/// pod-cidrs.sh's own logic, run by sh against a stand-in kubectl that answers from files: what
/// it patches, what it skips, what it reports. No apiserver runs here (no Kubernetes server
/// binary on this machine), so the Node API itself is not exercised; the patch it sends is
/// checked as JSON against the Node fields it sets (spec.podCIDR, spec.podCIDRs).
#[test]
fn pod_cidrs_script_sets_empty_ones_skips_unregistered_and_reports_mismatches() {
    let (tmp, out, doc) = render("ebook-dualstack.json", &[]);
    let c1 = node(&doc, "controller1");
    let script = read_dest(&out, c1, "/etc/hardway/addons/pod-cidrs.sh");
    let state = tmp.path().join("api");
    std::fs::create_dir(&state).unwrap();
    let stub = tmp.path().join("kubectl");
    // `get node NAME ...` prints NAME|CIDRS when state/NAME exists, nothing otherwise;
    // `patch node NAME --type=merge -p JSON` appends JSON to state/NAME.patch.
    std::fs::write(
        &stub,
        format!(
            "#!/bin/sh\nstate={}\nwhile [ \"$1\" != get ] && [ \"$1\" != patch ]; do shift; done\n\
             verb=$1; node=$3\n\
             if [ \"$verb\" = get ]; then [ -f \"$state/$node\" ] && printf '%s|%s' \"$node\" \"$(cat \"$state/$node\")\"; exit 0; fi\n\
             printf '%s\\n' \"$6\" >> \"$state/$node.patch\"\n",
            state.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(script.contains("kubectl=/usr/local/bin/kubectl\n"));
    let runnable = tmp.path().join("pod-cidrs.sh");
    std::fs::write(
        &runnable,
        script.replace(
            "kubectl=/usr/local/bin/kubectl\n",
            &format!("kubectl={}\n", stub.display()),
        ),
    )
    .unwrap();
    let run = || Command::new("sh").arg(&runnable).output().unwrap();
    let patches = |node: &str| -> Vec<Value> {
        std::fs::read_to_string(state.join(format!("{node}.patch")))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };

    // worker1 registered without CIDRs, worker2 not registered yet.
    std::fs::write(state.join("worker1"), "").unwrap();
    let o = run();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        patches("worker1"),
        [
            json!({"spec": {"podCIDR": "10.200.0.0/24", "podCIDRs": ["10.200.0.0/24", "fd00:10:200::/64"]}})
        ]
    );
    assert!(patches("worker2").is_empty());

    // worker1 now holds them: nothing to do; worker2 registered with other CIDRs: reported.
    std::fs::write(state.join("worker1"), "10.200.0.0/24 fd00:10:200::/64").unwrap();
    std::fs::write(state.join("worker2"), "10.99.0.0/24").unwrap();
    let o = run();
    assert_eq!(o.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("node worker2 has podCIDRs 10.99.0.0/24 but the document says 10.200.1.0/24 fd00:10:200:1::/64"),
        "{stderr}"
    );
    assert_eq!(patches("worker1").len(), 1, "no second patch");
    assert!(
        patches("worker2").is_empty(),
        "a mismatch is never overwritten"
    );
}
