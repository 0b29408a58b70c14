//! The mkcluster binary: inventories in, a document out; every bad input exits 2 with exactly one
//! `mkcluster: error:` line naming file:line:column (or the flag) and nothing on stdout.

use std::path::PathBuf;

use assert_cmd::Command;
use hardway::doc::{ContainerRuntime, KubeProxyMode, PodNetwork};
use hardway::{Document, Role};
use ipnet::IpNet;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn mkcluster() -> Command {
    Command::cargo_bin("mkcluster").expect("the binary is built")
}

/// Runs mkcluster; its output read by the tools' own reader (which also validates it).
fn document(args: &[&str], stdin: &str) -> Document {
    let out = mkcluster().args(args).write_stdin(stdin).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stderr.is_empty());
    hardway::doc::parse(std::str::from_utf8(&out.stdout).unwrap(), "stdout").unwrap()
}

fn nets(text: &[&str]) -> Vec<IpNet> {
    text.iter().map(|t| t.parse().unwrap()).collect()
}

/// Runs mkcluster expecting a refusal; asserts the error line contains `expect`.
fn refuse(args: &[&str], stdin: &str, expect: &str) {
    let out = mkcluster().args(args).write_stdin(stdin).output().unwrap();
    let stderr = testkit::assert_one_line_error(&out, "mkcluster", 2);
    assert!(stderr.contains(expect), "expected {expect:?} in {stderr}");
}

const OK: &str = "name,roles\nw1,worker\n";

#[test]
fn csv_to_document_with_defaults() {
    let doc = document(
        &[],
        "# inventory\nroles,name,memory\ncontroller+etcd,c1,\nworker,w1,2G\n",
    );
    assert_eq!(doc.version, hardway::doc::VERSION);
    let cluster = &doc.cluster;
    assert_eq!(cluster.name, "kubernetes");
    assert_eq!(cluster.domain, "example.com");
    assert_eq!(cluster.cluster_domain, "cluster.local");
    // The newest supported release, on containerd 2 with kube-proxy's iptables mode; the
    // document says so, so no later tool guesses.
    assert_eq!(cluster.kubernetes_version, hardway::k8s::DEFAULT_VERSION);
    assert_eq!(
        cluster.container_runtime,
        Some(ContainerRuntime::Containerd2)
    );
    assert_eq!(cluster.kube_proxy_mode, Some(KubeProxyMode::Iptables));
    assert!(cluster.extra.is_empty(), "{:?}", cluster.extra);
    assert_eq!(cluster.networks.node, nets(&["10.240.0.0/24"]));
    assert_eq!(cluster.networks.pod, nets(&["10.200.0.0/16"]));
    assert_eq!(cluster.networks.pod_prefix, [24]);
    assert_eq!(cluster.networks.service, nets(&["10.32.0.0/24"]));
    // Addresses are cidr-alloc's to decide.
    let api = &cluster.api;
    assert_eq!(
        (api.vip, api.port, api.endpoint.as_deref()),
        (None, 6443, None)
    );
    let hypervisor = doc.hypervisor.as_ref().unwrap();
    assert_eq!(
        (
            hypervisor.uri.as_str(),
            hypervisor.network.as_str(),
            hypervisor.gateway,
            hypervisor.pool.as_str()
        ),
        (
            "qemu:///system",
            "kubernetes",
            Some("10.240.0.1".parse().unwrap()),
            "hardway"
        )
    );
    let c1 = &doc.nodes[0];
    assert_eq!(c1.fqdn.as_deref(), Some("c1.example.com"));
    assert_eq!(c1.roles, [Role::Etcd, Role::Controller]);
    assert_eq!((c1.vcpus, c1.memory_mib, c1.disk_gib), (1, 512, 4));
    let w1 = &doc.nodes[1];
    assert_eq!((w1.memory_mib, w1.disk_gib), (2048, 20));
}

#[test]
fn dual_stack_flags_and_values() {
    let args = [
        "--name",
        "ds",
        "--domain",
        "lab.test",
        "--node-network",
        "fd00:10:240::/64",
        "--node-network",
        "10.240.0.0/24",
        "--pod-network",
        "10.200.0.0/16",
        "--pod-network",
        "fd00:10:200::/56",
        "--pod-prefix",
        "25",
        "--pod-prefix",
        "64",
        "--service-network",
        "10.32.0.0/24",
        "--service-network",
        "fd00:10:32::/112",
        "--api-vip",
        "10.240.0.20",
        "--api-port",
        "8443",
        "--kubernetes-version",
        "v1.36.0",
        "--pod-routing",
        "flannel",
        "--container-runtime",
        "cri-o",
        "--kube-proxy-mode",
        "nftables",
    ];
    let doc = document(&args, "name,roles,ip,pod_cidr\nw1,worker,fd00:10:240::5;10.240.0.5,10.200.0.0/25+fd00:10:200::/64\n");
    let cluster = &doc.cluster;
    let net = &cluster.networks;
    assert_eq!(net.node, nets(&["10.240.0.0/24", "fd00:10:240::/64"]));
    assert_eq!(net.pod_prefix, [25, 64]);
    let api = &cluster.api;
    assert_eq!(
        (api.vip, api.port, api.endpoint.as_deref()),
        (Some("10.240.0.20".parse().unwrap()), 8443, None)
    );
    assert_eq!(cluster.pod_network, PodNetwork::Flannel);
    assert_eq!(cluster.kubernetes_version, "v1.36.0");
    assert_eq!(cluster.container_runtime, Some(ContainerRuntime::CriO));
    assert_eq!(cluster.kube_proxy_mode, Some(KubeProxyMode::Nftables));
    assert_eq!(doc.hypervisor.as_ref().unwrap().network, "ds");
    // IPv4 first, whatever order the inventory gave.
    let ips: Vec<String> = doc.nodes[0].ips.iter().map(ToString::to_string).collect();
    assert_eq!(ips, ["10.240.0.5", "fd00:10:240::5"]);
    assert_eq!(doc.nodes[0].fqdn.as_deref(), Some("w1.lab.test"));
}

#[test]
fn machines_txt_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("machines.txt");
    std::fs::write(
        &path,
        "10.240.0.10 server.kubernetes.local server\n\
         10.240.0.20 node-0.kubernetes.local node-0 10.200.0.0/24\n\
         10.240.0.21 node-1.kubernetes.local node-1 10.200.1.0/24\n",
    )
    .unwrap();
    let doc = document(&["--format", "machines", path.to_str().unwrap()], "");
    assert_eq!(doc.cluster.domain, "kubernetes.local");
    assert_eq!(doc.nodes[0].roles, [Role::Etcd, Role::Controller]);
    assert_eq!(doc.nodes[1].roles, [Role::Worker]);
    let node_1 = &doc.nodes[2];
    assert_eq!(node_1.pod_cidrs, nets(&["10.200.1.0/24"]));
    assert_eq!(node_1.fqdn.as_deref(), Some("node-1.kubernetes.local"));
    assert_eq!(node_1.memory_mib, 1536);
}

#[test]
fn dash_reads_stdin() {
    let doc = document(&["-"], OK);
    assert_eq!(doc.nodes[0].name, "w1");
}

#[test]
fn controller_vip_is_kept_in_the_cluster() {
    let doc = document(
        &[
            "--api-vip",
            "10.240.0.40",
            "--controller-vip",
            "10.240.0.20",
        ],
        OK,
    );
    assert_eq!(doc.cluster.extra["controller_vip"], "10.240.0.20");
}

#[test]
fn help_has_an_example_and_version_works() {
    let out = mkcluster().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(
        help.contains("Examples:") && help.contains("1536 MiB"),
        "{help}"
    );
    assert!(mkcluster()
        .arg("--version")
        .output()
        .unwrap()
        .status
        .success());
}

#[test]
fn refuses_bad_csv() {
    refuse(&[], "", "<stdin>:1:1: the inventory is empty");
    refuse(&[], "# only a comment\n", "the inventory is empty");
    refuse(
        &[],
        "name,roles\n",
        "<stdin>:1:1: the inventory lists no node",
    );
    refuse(
        &[],
        "name,rolez\nw1,worker\n",
        "<stdin>:1:6: unknown column \"rolez\"",
    );
    refuse(
        &[],
        "name,roles,name\n",
        "<stdin>:1:12: column \"name\" appears twice",
    );
    refuse(
        &[],
        "name,ip\nw1,10.240.0.2\n",
        "<stdin>:1:1: the header row has no \"roles\" column",
    );
    refuse(
        &[],
        "roles\nworker\n",
        "the header row has no \"name\" column",
    );
    refuse(
        &[],
        "name,roles\nw1,worker,extra\n",
        "<stdin>:2:11: this row has 3 fields, the header names 2",
    );
    refuse(
        &[],
        "name,roles\n\nW_1,worker\n",
        "<stdin>:3:1: node name \"W_1\" has 'W'",
    );
    refuse(
        &[],
        "name,roles\n,worker\n",
        "<stdin>:2:1: node name is empty",
    );
    refuse(
        &[],
        "name,roles\nw1,worker\n# c\nw1,etcd\n",
        "<stdin>:4:1: node name \"w1\" is already used on line 2",
    );
    refuse(
        &[],
        "name,roles\nw1,worker+chef\n",
        "<stdin>:2:4: unknown role \"chef\"",
    );
    refuse(&[], "name,roles\nw1,\n", "<stdin>:2:4: no roles");
    refuse(
        &[],
        "name,roles,ip\nw1,worker,10.240.0.256\n",
        "<stdin>:2:11: \"10.240.0.256\" is not an IP address",
    );
    refuse(
        &[],
        "name,roles,ip\nw1,worker,10.240.0.2+10.240.0.3\n",
        "one IPv4 and one IPv6",
    );
    refuse(
        &[],
        "name,roles,ip\nw1,worker,10.9.0.2\n",
        "<stdin>:2:11: 10.9.0.2 is outside the node network (10.240.0.0/24)",
    );
    refuse(
        &[],
        "name,roles,ip\nw1,worker,fd00::2\n",
        "fd00::2 is outside the node network",
    );
    refuse(
        &[],
        "name,roles,pod_cidr\nw1,worker,10.200.0.1/24\n",
        "<stdin>:2:11: \"10.200.0.1/24\" has host bits set",
    );
    refuse(
        &[],
        "name,roles,pod_cidr\nw1,worker,10.9.0.0/24\n",
        "10.9.0.0/24 is outside the pod network (10.200.0.0/16)",
    );
    refuse(
        &[],
        "name,roles,vcpus\nw1,worker,0\n",
        "<stdin>:2:11: vcpus \"0\" is not a whole number above 0",
    );
    refuse(&[], "name,roles,vcpus\nw1,worker,two\n", "vcpus \"two\"");
    refuse(
        &[],
        "name,roles,memory\nw1,worker,lots\n",
        "<stdin>:2:11: memory: \"lots\" is not a size",
    );
    refuse(
        &[],
        "name,roles,memory\nw1,worker,0.3M\n",
        "memory: \"0.3M\" is not a whole number of MiB",
    );
    refuse(
        &[],
        "name,roles,disk\nw1,worker,1.5\n",
        "disk: \"1.5\" is not a whole number of GiB",
    );
    refuse(
        &[],
        "name,roles,disk\nw1,worker,0G\n",
        "disk: \"0G\" is zero",
    );
    refuse(
        &["/nonexistent/nodes.csv"],
        "",
        "cannot read /nonexistent/nodes.csv",
    );
}

#[test]
fn refuses_bad_machines_txt() {
    let m = ["--format", "machines"];
    refuse(&m, "", "machines.txt lists no machine");
    refuse(
        &m,
        "10.240.0.10 server.x\n",
        "<stdin>:1:1: expected IP FQDN HOST [POD_SUBNET], found 2 fields",
    );
    refuse(
        &m,
        "10.240.0.10 a.x a 10.200.0.0/24 more\n",
        "<stdin>:1:33: expected IP FQDN HOST",
    );
    refuse(
        &m,
        "10.240.0.1O server.x server\n",
        "<stdin>:1:1: \"10.240.0.1O\" is not an IP address",
    );
    refuse(
        &m,
        "10.240.0.10 bad_name.x server\n",
        "<stdin>:1:13: \"bad_name.x\" is not a valid DNS name",
    );
    refuse(
        &m,
        "10.240.0.10 server.x Server\n",
        "<stdin>:1:22: node name \"Server\"",
    );
    refuse(
        &m,
        "10.240.0.10 a.x a 10.200.0.0/33\n",
        "<stdin>:1:19: \"10.200.0.0/33\" is not a CIDR range",
    );
    refuse(
        &m,
        "10.240.0.10 a.x a\n10.240.0.11 a.x a\n",
        "<stdin>:2:17: node name \"a\" is already used on line 1",
    );
}

#[test]
fn refuses_bad_flags() {
    refuse(
        &["--name", "My Cluster"],
        OK,
        "--name: the cluster name is a DNS label",
    );
    refuse(
        &["--domain", "ex ample.com"],
        OK,
        "--domain: \"ex ample.com\" is not a valid DNS name",
    );
    refuse(&["--cluster-domain=-x.local"], OK, "--cluster-domain:");
    refuse(
        &["--kubernetes-version", "1.32"],
        OK,
        "--kubernetes-version: \"1.32\" is not a Kubernetes version like v1.37.2",
    );
    refuse(
        &["--node-network", "10.240.0.0/33"],
        OK,
        "--node-network: \"10.240.0.0/33\" is not a CIDR range",
    );
    refuse(
        &[
            "--node-network",
            "10.240.0.0/24",
            "--node-network",
            "10.241.0.0/24",
        ],
        OK,
        "--node-network: give at most one IPv4 and one IPv6 range",
    );
    refuse(
        &["--pod-network", "10.200.0.5/16"],
        OK,
        "--pod-network: \"10.200.0.5/16\" has host bits set",
    );
    refuse(&["--service-network", "x"], OK, "--service-network:");
    refuse(
        &["--pod-prefix", "16"],
        OK,
        "--pod-prefix: /16 does not split pod network 10.200.0.0/16",
    );
    refuse(
        &["--pod-prefix", "24", "--pod-prefix", "64"],
        OK,
        "--pod-prefix: 2 prefixes for 1 pod networks",
    );
    refuse(
        &["--pod-prefix", "x"],
        OK,
        "invalid value 'x' for '--pod-prefix <LEN>'",
    );
    refuse(
        &["--api-vip", "10.240.0"],
        OK,
        "--api-vip: \"10.240.0\" is not an IP address",
    );
    refuse(&["--controller-vip", "vip"], OK, "--controller-vip:");
    refuse(&["--api-port", "0"], OK, "--api-port");
    refuse(
        &["--format", "yaml"],
        OK,
        "invalid value 'yaml' for '--format <FORMAT>'",
    );
    refuse(&["--no-such-flag"], OK, "--no-such-flag");
}

#[test]
fn end_of_life_versions_and_runtimes_they_cannot_run_are_refused() {
    for version in ["v1.33.0", "v1.34.4", "v1.38.0", "v2.0.0"] {
        refuse(
            &["--kubernetes-version", version],
            OK,
            &format!(
                "--kubernetes-version: Kubernetes {version} is not supported (end of life or \
                 unknown): use one of v1.35, v1.36, v1.37 (or --allow-unsupported-version)"
            ),
        );
    }
    for version in ["v1.36.0", "v1.37.2"] {
        refuse(
            &[
                "--kubernetes-version",
                version,
                "--container-runtime",
                "containerd-1",
            ],
            OK,
            "--container-runtime: containerd 1.x does not run Kubernetes v1.3",
        );
    }
    refuse(&["--container-runtime", "containerd"], OK, "containerd-2");
    refuse(
        &["--kube-proxy-mode", "ipvs"],
        OK,
        "'--kube-proxy-mode <MODE>'",
    );
    refuse(
        &[
            "--kubernetes-version",
            "v1.33",
            "--allow-unsupported-version",
        ],
        OK,
        "--kubernetes-version: \"v1.33\" is not a Kubernetes version",
    );
}

/// The VM test's document: Debian's containerd 1.x on the last release that runs it.
#[test]
fn v1_35_on_debian_containerd() {
    let doc = document(
        &[
            "--kubernetes-version",
            "v1.35.0",
            "--container-runtime",
            "containerd-1",
        ],
        OK,
    );
    assert_eq!(doc.cluster.kubernetes_version, "v1.35.0");
    assert_eq!(
        doc.cluster.container_runtime,
        Some(ContainerRuntime::Containerd1)
    );
}

/// The opt-out is explicit and recorded, so the tools after mkcluster accept the version too.
#[test]
fn allow_unsupported_version_is_recorded() {
    let doc = document(
        &[
            "--kubernetes-version",
            "v1.33.0",
            "--allow-unsupported-version",
            "--container-runtime",
            "containerd-1",
        ],
        OK,
    );
    assert_eq!(doc.cluster.kubernetes_version, "v1.33.0");
    assert_eq!(doc.cluster.extra[hardway::k8s::ALLOW_UNSUPPORTED], true);
    // Rendered with v1.35's table, whose kubelet still runs containerd 1.x.
    assert_eq!(
        doc.cluster.container_runtime,
        Some(ContainerRuntime::Containerd1)
    );
}

#[test]
fn every_example_parses() {
    for entry in std::fs::read_dir(root().join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "csv") {
            let out = mkcluster()
                .arg(&path)
                .args(["--node-network", "0.0.0.0/0"])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
