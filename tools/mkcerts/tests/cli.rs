//! mkcerts as a user runs it, checked with the real consumers of its files: openssl (verify,
//! x509, s_server/s_client), kubectl, and the file system (modes, mtimes).

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use hardway::doc::CertRecord;
use hardway::Document;
use serde::Deserialize;
use serde_json::Value;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_mkcerts")
}

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs mkcerts with `stdin` as its input.
fn mkcerts(args: &[&str], stdin: &str) -> Output {
    testkit::pipe(Command::new(bin()).args(args), stdin)
}

/// Runs mkcerts, asserts success, returns the document it printed.
fn make(dir: &Path, extra: &[&str], input: &str) -> (String, Document) {
    let mut args = vec!["--dir", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = mkcerts(&args, input);
    assert!(
        out.status.success(),
        "mkcerts {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let doc = hardway::doc::parse(&text, "mkcerts' stdout").unwrap();
    (text, doc)
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} (scripts/deps.sh installs it): {e}"))
}

fn certs(doc: &Document) -> &[CertRecord] {
    &doc.pki.as_ref().expect("a pki section").certs
}

fn cert<'a>(doc: &'a Document, name: &str, node: Option<&str>) -> &'a CertRecord {
    doc.pki
        .as_ref()
        .and_then(|pki| pki.cert(name, node))
        .unwrap_or_else(|| panic!("no {name} {node:?} in pki.certs"))
}

/// The key path of a certificate record (every record mkcerts makes has one).
fn key_of(record: &CertRecord) -> &str {
    record.key.as_deref().expect("a key path")
}

/// A row of `mkcerts check -o json`: the shape is the contract.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct CheckRow {
    path: String,
    kind: String,
    subject: String,
    issuer: String,
    not_after: String,
    days_left: i64,
    chain: String,
    key: String,
    status: String,
}

/// `mkcerts --dry-run`'s report.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct DryRun {
    dir: String,
    algorithm: String,
    certificates: Vec<Decision>,
    files: Vec<FilePlan>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Decision {
    name: String,
    node: Option<String>,
    action: String,
    reason: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct FilePlan {
    path: String,
    action: String,
}

/// Every file under `dir`: path → (inode, mtime, mode, contents). A rewrite shows without
/// waiting for the clock to tick: a rename changes the inode, a write in place the mtime.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u64, SystemTime, u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    if !dir.exists() {
        return out;
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let contents = if meta.is_dir() {
                stack.push(path.clone());
                Vec::new()
            } else {
                std::fs::read(&path).unwrap()
            };
            out.insert(
                path,
                (
                    meta.ino(),
                    meta.modified().unwrap(),
                    meta.permissions().mode() & 0o7777,
                    contents,
                ),
            );
        }
    }
    out
}

fn text_of(cert_path: &Path) -> String {
    let out = run(
        "openssl",
        &[
            "x509",
            "-noout",
            "-text",
            "-in",
            cert_path.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "openssl x509 {}", cert_path.display());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_leaf_verifies_against_its_ca_and_has_the_right_usages() {
    let dir = tempfile::tempdir().unwrap();
    let (_, doc) = make(dir.path(), &[], &fixture("ebook-dualstack.json"));
    let ca_by_subject: BTreeMap<String, String> = certs(&doc)
        .iter()
        .filter(|c| c.name.ends_with("-ca"))
        .map(|c| (c.subject.clone(), c.path.clone()))
        .collect();
    assert_eq!(ca_by_subject.len(), 3);
    let mut leaves = 0;
    for record in certs(&doc) {
        let path = dir.path().join(&record.path);
        let ca = dir.path().join(&ca_by_subject[&record.issuer]);
        let out = run(
            "openssl",
            &[
                "verify",
                "-CAfile",
                ca.to_str().unwrap(),
                path.to_str().unwrap(),
            ],
        );
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains(": OK"),
            "{}: {}{}",
            path.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !record.name.ends_with("-ca") {
            leaves += 1;
        }
    }
    // 3 etcd × 2 + 2 apiservers + 2 kubelets + 9 cluster-wide clients.
    assert_eq!(leaves, 6 + 2 + 2 + 8, "{:#?}", certs(&doc));

    let x509 =
        |name: &str, node: Option<&str>| text_of(&dir.path().join(&cert(&doc, name, node).path));
    let both = "TLS Web Server Authentication, TLS Web Client Authentication";
    let etcd = x509("etcd-peer", Some("etcd2"));
    assert!(etcd.contains(both), "{etcd}");
    for san in [
        "DNS:etcd2, DNS:etcd2.example.com",
        "IP Address:10.240.0.12",
        "IP Address:FD00:10:240:0:0:0:0:C",
        "DNS:localhost",
        "IP Address:127.0.0.1",
        "IP Address:0:0:0:0:0:0:0:1",
    ] {
        assert!(etcd.contains(san), "{san} missing: {etcd}");
    }
    let api = x509("kube-apiserver", Some("controller2"));
    assert!(
        api.contains("TLS Web Server Authentication") && !api.contains("Client Authentication"),
        "{api}"
    );
    for san in [
        "DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.cluster.local",
        "IP Address:10.32.0.1",
        "IP Address:FD00:10:32:0:0:0:0:1",
        "DNS:controller2.example.com",
        "IP Address:10.240.0.22",
        "IP Address:10.240.0.40",
        "DNS:lb1",
        "IP Address:10.240.0.41",
        "DNS:localhost",
    ] {
        assert!(api.contains(san), "{san} missing: {api}");
    }
    let kubelet = x509("kubelet", Some("worker2"));
    assert!(
        kubelet.contains("O = system:nodes, CN = system:node:worker2"),
        "{kubelet}"
    );
    assert!(
        kubelet.contains(both) && kubelet.contains("IP Address:10.240.0.32"),
        "{kubelet}"
    );
    for (name, subject) in [
        (
            "kube-proxy",
            "O = system:node-proxier, CN = system:kube-proxy",
        ),
        (
            "kube-controller-manager",
            "O = system:kube-controller-manager, CN = system:kube-controller-manager",
        ),
        (
            "kube-scheduler",
            "O = system:kube-scheduler, CN = system:kube-scheduler",
        ),
        ("admin", "O = system:masters, CN = admin"),
        (
            "etcd-healthcheck-client",
            "CN = kube-etcd-healthcheck-client",
        ),
        ("apiserver-etcd-client", "CN = kube-apiserver-etcd-client"),
        ("front-proxy-client", "CN = front-proxy-client"),
    ] {
        let text = x509(name, None);
        assert!(
            text.contains(&format!("Subject: {subject}")),
            "{name}: {text}"
        );
        assert!(
            text.contains("TLS Web Client Authentication")
                && !text.contains("Server Authentication"),
            "{name}: {text}"
        );
    }
    assert!(x509("apiserver-etcd-client", None).contains("Issuer: CN = etcd-ca"));
    assert!(x509("front-proxy-client", None).contains("Issuer: CN = front-proxy-ca"));
    let ca = x509("kubernetes-ca", None);
    assert!(
        ca.contains("CA:TRUE") && ca.contains("Certificate Sign"),
        "{ca}"
    );
    // The service-account public key is the private key's.
    let derived = run(
        "openssl",
        &[
            "pkey",
            "-pubout",
            "-in",
            dir.path().join("pki/cluster/sa.key").to_str().unwrap(),
        ],
    );
    assert_eq!(
        String::from_utf8(derived.stdout).unwrap(),
        std::fs::read_to_string(dir.path().join("pki/cluster/sa.pub")).unwrap()
    );
}

/// `openssl s_server` on a loopback port, killed on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn apiserver_certificate_serves_tls_for_the_service_name_and_ip() {
    let dir = tempfile::tempdir().unwrap();
    let (_, doc) = make(dir.path(), &[], &fixture("lab.json"));
    let path = |name: &str, node: Option<&str>, field: &str| {
        let record = cert(&doc, name, node);
        let rel = match field {
            "key" => key_of(record),
            _ => &record.path,
        };
        dir.path().join(rel).display().to_string()
    };
    let port = free_port();
    let server = Server(
        Command::new("openssl")
            .args([
                "s_server",
                "-accept",
                &format!("127.0.0.1:{port}"),
                "-naccept",
                "10",
                "-quiet",
            ])
            .args(["-cert", &path("kube-apiserver", Some("node-1"), "path")])
            .args(["-key", &path("kube-apiserver", Some("node-1"), "key")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start openssl s_server"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "s_server did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let ca = path("kubernetes-ca", None, "path");
    let client = |check: &[&str]| {
        let out = Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &format!("127.0.0.1:{port}"),
                "-CAfile",
                &ca,
                "-verify_return_error",
            ])
            .args(check)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    let ok = "Verify return code: 0 (ok)";
    let by_name = client(&["-verify_hostname", "kubernetes.default.svc.cluster.local"]);
    assert!(by_name.contains(ok), "{by_name}");
    let by_ip = client(&["-verify_ip", "10.32.0.1"]);
    assert!(by_ip.contains(ok), "{by_ip}");
    let by_vip = client(&["-verify_ip", "10.240.0.2"]);
    assert!(by_vip.contains(ok), "{by_vip}");
    let wrong = client(&["-verify_hostname", "kubernetes.evil.example"]);
    assert!(
        !wrong.contains(ok) && wrong.contains("hostname mismatch"),
        "{wrong}"
    );
    drop(server);
}

#[test]
fn kubeconfigs_work_with_kubectl_and_point_at_the_right_server_and_user() {
    let dir = tempfile::tempdir().unwrap();
    let (_, doc) = make(dir.path(), &[], &fixture("ebook-dualstack.json"));
    let endpoint = doc.cluster.api.endpoint.clone().expect("an API endpoint");
    let cases = [
        (
            "pki/kubeconfigs/admin.kubeconfig",
            "https://127.0.0.1:6443",
            "admin",
        ),
        // The one a user runs kubectl with on the hypervisor: through the API endpoint.
        (
            "pki/kubeconfigs/admin-external.kubeconfig",
            endpoint.as_str(),
            "admin",
        ),
        (
            "pki/kubeconfigs/kube-controller-manager.kubeconfig",
            "https://127.0.0.1:6443",
            "system:kube-controller-manager",
        ),
        (
            "pki/kubeconfigs/kube-scheduler.kubeconfig",
            "https://127.0.0.1:6443",
            "system:kube-scheduler",
        ),
        (
            "pki/kubeconfigs/kube-proxy.kubeconfig",
            endpoint.as_str(),
            "system:kube-proxy",
        ),
        (
            "pki/nodes/worker1/kubelet.kubeconfig",
            endpoint.as_str(),
            "system:node:worker1",
        ),
        (
            "pki/nodes/worker2/kubelet.kubeconfig",
            endpoint.as_str(),
            "system:node:worker2",
        ),
    ];
    for (file, server, user) in cases {
        let path = dir.path().join(file);
        let out = run(
            "kubectl",
            &[
                "config", "view", "--minify", "--kubeconfig", path.to_str().unwrap(),
                "-o", "jsonpath={.clusters[0].cluster.server} {.users[0].name} {.contexts[0].context.user}",
            ],
        );
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            format!("{server} {user} {user}"),
            "{file}"
        );
        // The embedded client certificate is the one on disk, and chains to the embedded CA.
        let raw = run(
            "kubectl",
            &[
                "config",
                "view",
                "--raw",
                "--minify",
                "--kubeconfig",
                path.to_str().unwrap(),
                "-o",
                "jsonpath={.users[0].user.client-certificate-data}",
            ],
        );
        assert!(
            !raw.stdout.is_empty(),
            "{file}: no embedded client certificate"
        );
        // client-go's keys: `apiVersion` (camelCase type meta), never `api-version`.
        let text = std::fs::read_to_string(&path).unwrap();
        let keys: serde_yaml_ng::Mapping = serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(
            keys.get("apiVersion").and_then(|v| v.as_str()),
            Some("v1"),
            "{file}"
        );
        assert_eq!(
            keys.get("kind").and_then(|v| v.as_str()),
            Some("Config"),
            "{file}"
        );
        assert!(!keys.contains_key("api-version"), "{file}");
        let api_version = run(
            "kubectl",
            &[
                "config",
                "view",
                "--kubeconfig",
                path.to_str().unwrap(),
                "-o",
                "jsonpath={.apiVersion}",
            ],
        );
        assert_eq!(String::from_utf8_lossy(&api_version.stdout), "v1", "{file}");
    }
    // The external one is for the user, not for a node.
    let files = || doc.nodes.iter().flat_map(|n| &n.files);
    assert!(files().all(|f| !f.src.contains("admin-external")));
    // Every kubeconfig is installed where the components read it.
    let dests: Vec<&str> = files().map(|f| f.dest.as_str()).collect();
    for dest in [
        "/var/lib/kubelet/kubeconfig",
        "/var/lib/kube-proxy/kubeconfig",
        "/var/lib/kubernetes/admin.kubeconfig",
        "/var/lib/kubernetes/kube-scheduler.kubeconfig",
    ] {
        assert!(dests.contains(&dest), "{dest} not installed");
    }
}

#[test]
fn a_second_run_writes_no_file_and_prints_the_same_document() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("ebook-dualstack.json");
    let (first, _) = make(dir.path(), &[], &input);
    let before = snapshot(dir.path());
    let (second, _) = make(dir.path(), &[], &input);
    assert_eq!(first, second, "the same input printed a different document");
    // Its own output as input changes nothing either.
    let (third, _) = make(dir.path(), &[], &first);
    assert_eq!(first, third);
    assert_eq!(snapshot(dir.path()), before, "a re-run touched files");
}

#[test]
fn changing_one_nodes_ip_reissues_only_that_nodes_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let (_, before) = make(dir.path(), &[], &fixture("ebook-dualstack.json"));
    let files_before = snapshot(dir.path());
    let mut input = before.clone();
    input.nodes[0].ips[0] = "10.240.0.111".parse().unwrap(); // etcd1
    input.nodes[5].ips[0] = "10.240.0.131".parse().unwrap(); // worker1
    let (_, after) = make(dir.path(), &[], &hardway::doc::to_string(&input));
    let changed: Vec<String> = certs(&after)
        .iter()
        .filter(|c| cert(&before, &c.name, c.node.as_deref()).sha256 != c.sha256)
        .map(|c| format!("{}@{}", c.name, c.node.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(
        changed,
        ["etcd-server@etcd1", "etcd-peer@etcd1", "kubelet@worker1"]
    );
    let files_after = snapshot(dir.path());
    let mut touched: Vec<String> = files_after
        .iter()
        .filter(|(path, state)| files_before.get(*path) != Some(state) && !state.3.is_empty())
        .map(|(path, _)| path.strip_prefix(dir.path()).unwrap().display().to_string())
        .collect();
    touched.sort();
    assert_eq!(
        touched,
        [
            "pki/nodes/etcd1/etcd-peer.pem",
            "pki/nodes/etcd1/etcd-server.pem",
            "pki/nodes/worker1/kubelet.kubeconfig",
            "pki/nodes/worker1/kubelet.pem",
        ]
    );
    let new_sans = &cert(&after, "kubelet", Some("worker1")).sans;
    assert!(
        new_sans.iter().any(|san| san == "10.240.0.131"),
        "{new_sans:?}"
    );
}

/// Asserts a failed run: exit `code`, one `mkcerts: error:` line on stderr naming `mentions`,
/// nothing on stdout.
fn assert_fails(out: &Output, code: i32, mentions: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {stderr}");
    assert!(
        out.stdout.is_empty(),
        "stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with("mkcerts: error: ") && lines[0].contains(mentions),
        "{stderr}"
    );
}

#[test]
fn bad_input_fails_with_one_line_and_leaves_the_directory_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let input = fixture("lab.json");
    make(&out_dir, &[], &input);
    let before = snapshot(dir.path());
    let out = out_dir.to_str().unwrap();
    let mut doc: Value = serde_json::from_str(&input).unwrap();
    // A new node, so a run that got further would have something to write.
    let mut extra = doc["nodes"][2].clone();
    extra["name"] = "node-4".into();
    extra["ips"] = serde_json::json!(["10.240.0.14"]);
    doc["nodes"].as_array_mut().unwrap().push(extra);

    let mut no_networks = doc.clone();
    no_networks["cluster"]
        .as_object_mut()
        .unwrap()
        .remove("networks");
    assert_fails(
        &mkcerts(&["--dir", out], &no_networks.to_string()),
        2,
        "networks",
    );

    let mut no_ip = doc.clone();
    no_ip["nodes"][3]["ips"] = serde_json::json!([]);
    assert_fails(
        &mkcerts(&["--dir", out], &no_ip.to_string()),
        2,
        "nodes[3].ips",
    );

    let good = doc.to_string();
    let other = tempfile::tempdir().unwrap();
    let other_out = other.path().to_str().unwrap();
    make(other.path(), &[], &input);
    let ca = |d: &str, f: &str| format!("{d}/pki/ca/{f}");
    // An unreadable CA key, and one that is not a key.
    let fresh = dir.path().join("fresh");
    let fresh = fresh.to_str().unwrap();
    assert_fails(
        &mkcerts(
            &[
                "--dir",
                fresh,
                "--ca-cert",
                &ca(other_out, "kubernetes-ca.pem"),
                "--ca-key",
                "/nonexistent/ca-key.pem",
            ],
            &good,
        ),
        2,
        "/nonexistent/ca-key.pem",
    );
    assert_fails(
        &mkcerts(
            &[
                "--dir",
                fresh,
                "--ca-cert",
                &ca(other_out, "kubernetes-ca.pem"),
                "--ca-key",
                &ca(other_out, "kubernetes-ca.pem"),
            ],
            &good,
        ),
        2,
        "not a usable private key",
    );
    // A CA certificate that does not match its key.
    assert_fails(
        &mkcerts(
            &[
                "--dir",
                fresh,
                "--ca-cert",
                &ca(other_out, "kubernetes-ca.pem"),
                "--ca-key",
                &ca(other_out, "etcd-ca-key.pem"),
            ],
            &good,
        ),
        2,
        "does not match",
    );
    // A different CA than the one OUT already holds is never imported over it.
    assert_fails(
        &mkcerts(
            &[
                "--dir",
                out,
                "--ca-cert",
                &ca(other_out, "kubernetes-ca.pem"),
                "--ca-key",
                &ca(other_out, "kubernetes-ca-key.pem"),
            ],
            &good,
        ),
        2,
        "never overwrites a CA",
    );
    // A CA key in OUT that was damaged.
    let damaged = tempfile::tempdir().unwrap();
    make(damaged.path(), &[], &input);
    std::fs::write(damaged.path().join("pki/ca/etcd-ca-key.pem"), "not a key\n").unwrap();
    let damaged_before = snapshot(damaged.path());
    assert_fails(
        &mkcerts(&["--dir", damaged.path().to_str().unwrap()], &good),
        2,
        "etcd-ca-key.pem",
    );
    assert_eq!(snapshot(damaged.path()), damaged_before);
    testkit::require_root();
    // A --dir under a regular file, and a read-only one (a read-only bind mount in a private
    // mount namespace: root ignores permission bits, not a read-only mount).
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let under_file = format!("{}/out", file.display());
    // A bad --dir is bad input (exit 2), found before anything is made.
    assert_fails(
        &mkcerts(&["--dir", &under_file], &good),
        2,
        "a-file: is not a directory",
    );
    std::fs::remove_file(&file).unwrap();
    let script = format!(
        "mount --bind -o ro {out} {out} && exec {} --dir {out}",
        bin()
    );
    let ro = testkit::pipe(
        Command::new("unshare").args(["--mount", "--propagation", "private", "sh", "-c", &script]),
        &good,
    );
    assert_fails(&ro, 3, "Read-only file system");

    assert!(
        !Path::new(fresh).exists(),
        "a failed first run left {fresh}"
    );
    assert_eq!(
        snapshot(dir.path()),
        before,
        "a failed run changed the directory"
    );
}

#[test]
fn no_key_material_on_stdout_or_in_the_document() {
    let dir = tempfile::tempdir().unwrap();
    let (text, doc) = make(dir.path(), &[], &fixture("lab.json"));
    let dry = mkcerts(
        &["renew", "--dir", dir.path().to_str().unwrap(), "--dry-run"],
        &text,
    );
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    let plan: DryRun = serde_json::from_slice(&dry.stdout).unwrap();
    assert!(
        plan.certificates.iter().any(|c| c.action == "reissue"),
        "{plan:?}"
    );
    for output in [text.as_bytes(), &dry.stdout, &dry.stderr] {
        let output = String::from_utf8_lossy(output);
        assert!(!output.contains("PRIVATE KEY"), "{output}");
        for record in certs(&doc) {
            let key = std::fs::read_to_string(dir.path().join(key_of(record))).unwrap();
            let body: String = key.lines().nth(1).unwrap().chars().take(40).collect();
            assert!(
                !output.contains(&body),
                "key material of {} printed",
                key_of(record)
            );
        }
        let secret =
            std::fs::read_to_string(dir.path().join("pki/cluster/encryption-config.yaml")).unwrap();
        let secret = secret
            .lines()
            .find_map(|l| l.trim().strip_prefix("secret: "))
            .unwrap();
        assert!(!output.contains(secret), "the encryption key was printed");
    }
}

#[test]
fn keys_and_kubeconfigs_are_0600_in_0700_directories() {
    let dir = tempfile::tempdir().unwrap();
    let (_, doc) = make(
        &dir.path().join("out"),
        &[],
        &fixture("ebook-dualstack.json"),
    );
    let out = dir.path().join("out");
    for (path, (_, _, mode, _)) in snapshot(&out) {
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let want = if path.is_dir() {
            0o700
        } else if name.ends_with("-key.pem")
            || name.ends_with(".key")
            || name.contains("kubeconfig")
            || name == "encryption-config.yaml"
            || name == ".hardway.lock"
        {
            0o600
        } else {
            0o644
        };
        assert_eq!(mode, want, "{} is {mode:o}", path.display());
    }
    assert_eq!(
        std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o700
    );
    for file in doc.nodes.iter().flat_map(|n| &n.files) {
        let src = out.join(&file.src);
        let mode = std::fs::metadata(&src).unwrap().permissions().mode() & 0o777;
        assert_eq!(format!("0{mode:o}"), file.mode, "{}", src.display());
        let sha = hardway::fsutil::sha256_hex(&std::fs::read(&src).unwrap());
        assert_eq!(sha, file.sha256);
        assert!(file.src.starts_with("pki/"));
    }
}

#[test]
fn check_reports_every_certificate_and_exits_1_on_problems() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    make(dir.path(), &[], &fixture("lab.json"));
    let out = run(bin(), &["check", "--dir", d]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<CheckRow> = serde_json::from_slice(&out.stdout).unwrap();
    // 3 CAs + 20 leaves + 8 kubeconfigs (3 kubelets, admin twice, controller manager,
    // scheduler, kube-proxy).
    let kinds = |kind: &str| rows.iter().filter(|r| r.kind == kind).count();
    assert_eq!((kinds("certificate"), kinds("kubeconfig")), (23, 8));
    assert!(
        rows.iter()
            .all(|r| (r.status.as_str(), r.chain.as_str(), r.key.as_str())
                == ("ok", "valid", "matches")),
        "{rows:#?}"
    );

    let warn = run(bin(), &["check", "--dir", d, "--warn-days", "400"]);
    assert_eq!(warn.status.code(), Some(1));
    let table = run(
        bin(),
        &["check", "--dir", d, "-o", "table", "--warn-days", "400"],
    );
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(table.starts_with("PATH"), "{table}");
    let admin = testkit::table_row(&table, "pki/cluster/admin.pem");
    assert_eq!(admin.last(), Some(&"expiring"), "{table}");

    // A key that is not the certificate's.
    std::fs::copy(
        dir.path().join("pki/cluster/admin-key.pem"),
        dir.path().join("pki/cluster/kube-proxy-key.pem"),
    )
    .unwrap();
    let bad = run(bin(), &["check", "--dir", d]);
    assert_eq!(bad.status.code(), Some(1));
    let rows: Vec<CheckRow> = serde_json::from_slice(&bad.stdout).unwrap();
    let proxy = rows
        .iter()
        .find(|r| r.path == "pki/cluster/kube-proxy.pem")
        .unwrap();
    assert_eq!(
        (proxy.status.as_str(), proxy.key.as_str()),
        ("bad key", "mismatch")
    );
    // A certificate from another PKI does not chain.
    let other = tempfile::tempdir().unwrap();
    make(other.path(), &[], &fixture("lab.json"));
    std::fs::copy(
        other.path().join("pki/cluster/admin.pem"),
        dir.path().join("pki/cluster/admin.pem"),
    )
    .unwrap();
    let rows: Vec<CheckRow> =
        serde_json::from_slice(&run(bin(), &["check", "--dir", d]).stdout).unwrap();
    let admin = rows
        .iter()
        .find(|r| r.path == "pki/cluster/admin.pem")
        .unwrap();
    assert_eq!(admin.chain, "invalid");
}

#[test]
fn renew_reissues_every_leaf_and_keeps_cas_and_keys() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (text, before) = make(dir.path(), &[], &fixture("lab.json"));
    let keys_before = snapshot(dir.path());
    let out = mkcerts(&["renew", "--dir", d], &text);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = hardway::doc::parse(std::str::from_utf8(&out.stdout).unwrap(), "renew").unwrap();
    for record in certs(&after) {
        let old = cert(&before, &record.name, record.node.as_deref());
        let is_ca = record.name.ends_with("-ca");
        assert_eq!(old.sha256 == record.sha256, is_ca, "{}", record.name);
        let key = dir.path().join(key_of(record));
        assert_eq!(
            keys_before[&key].3,
            std::fs::read(&key).unwrap(),
            "{} changed",
            key.display()
        );
    }
    let kubeconfig = dir.path().join("pki/kubeconfigs/admin.kubeconfig");
    assert_ne!(
        keys_before[&kubeconfig].3,
        std::fs::read(&kubeconfig).unwrap()
    );
}

#[test]
fn a_leaf_expiring_within_renew_before_is_reissued() {
    let dir = tempfile::tempdir().unwrap();
    let (text, before) = make(
        dir.path(),
        &["--days", "10", "--renew-before", "5d"],
        &fixture("lab.json"),
    );
    // A renewal window as long as the validity would re-issue on every run: refused.
    let out = mkcerts(
        &["--dir", dir.path().to_str().unwrap(), "--days", "10"],
        &text,
    );
    assert_fails(&out, 2, "--renew-before: 30d is not shorter than --days 10");
    // A bare number once meant days here: refused, with the spelling that keeps it.
    let out = mkcerts(
        &["--dir", dir.path().to_str().unwrap(), "--renew-before", "3"],
        &text,
    );
    assert_fails(&out, 2, "--renew-before: \"3\" has no unit: write 3d");
    let (_, same) = make(dir.path(), &["--renew-before", "5d"], &text);
    assert_eq!(before, same);
    let (_, after) = make(dir.path(), &[], &text);
    let admin = cert(&after, "admin", None);
    assert_ne!(admin.sha256, cert(&before, "admin", None).sha256);
    assert_eq!(
        cert(&after, "etcd-ca", None).sha256,
        cert(&before, "etcd-ca", None).sha256
    );
    // RFC 3339 in UTC: later sorts after.
    assert!(admin.not_after > cert(&before, "admin", None).not_after);
}

#[test]
fn an_external_ca_is_imported_and_used() {
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (
        ca_dir.path().join("corp-ca.pem"),
        ca_dir.path().join("corp-ca-key.pem"),
    );
    let made = run(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            "/CN=corp-ca",
            "-days",
            "200",
            "-keyout",
            key_path.to_str().unwrap(),
            "-out",
            cert_path.to_str().unwrap(),
        ],
    );
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let flags = [
        "--ca-cert",
        cert_path.to_str().unwrap(),
        "--ca-key",
        key_path.to_str().unwrap(),
    ];
    let (text, doc) = make(dir.path(), &flags, &fixture("lab.json"));
    assert_eq!(
        std::fs::read(dir.path().join("pki/ca/kubernetes-ca.pem")).unwrap(),
        std::fs::read(&cert_path).unwrap()
    );
    let api = dir
        .path()
        .join(&cert(&doc, "kube-apiserver", Some("node-2")).path);
    let out = run(
        "openssl",
        &[
            "verify",
            "-CAfile",
            cert_path.to_str().unwrap(),
            api.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A leaf never outlives its CA.
    assert_eq!(
        cert(&doc, "admin", None).not_after,
        cert(&doc, "kubernetes-ca", None).not_after
    );
    // Later runs, with or without the flags, keep it and write nothing.
    let before = snapshot(dir.path());
    let (again, _) = make(dir.path(), &flags, &text);
    let (plain, _) = make(dir.path(), &["--renew-before", "0d"], &text);
    assert_eq!(again, text);
    assert_eq!(plain, text);
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn dry_run_plans_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let input = fixture("lab.json");
    let dry = mkcerts(&["--dir", out_dir.to_str().unwrap(), "--dry-run"], &input);
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    assert!(!out_dir.exists(), "--dry-run wrote {}", out_dir.display());
    let plan: DryRun = serde_json::from_slice(&dry.stdout).unwrap();
    assert!(!plan.certificates.is_empty() && !plan.files.is_empty());
    assert!(
        plan.certificates.iter().all(|c| c.action == "create"),
        "{plan:#?}"
    );
    assert!(plan.files.iter().all(|f| f.action == "create"), "{plan:#?}");
    let (text, _) = make(&out_dir, &[], &input);
    let dry = mkcerts(&["--dir", out_dir.to_str().unwrap(), "--dry-run"], &text);
    let plan: DryRun = serde_json::from_slice(&dry.stdout).unwrap();
    assert!(
        plan.certificates.iter().all(|c| c.action == "reuse"),
        "{plan:#?}"
    );
    assert!(
        plan.files.iter().all(|f| f.action == "unchanged"),
        "{plan:#?}"
    );
}

#[test]
fn rsa_keys_and_switching_algorithm_rekeys_leaves_but_keeps_cas() {
    let dir = tempfile::tempdir().unwrap();
    let mut doc = testkit::fixture_document("lab.json");
    doc.nodes.truncate(1);
    let (text, rsa) = make(
        dir.path(),
        &["--key-algorithm", "rsa-2048"],
        &hardway::doc::to_string(&doc),
    );
    assert_eq!(rsa.pki.unwrap().algorithm, "rsa-2048");
    let api = dir.path().join("pki/nodes/node-1/kube-apiserver.pem");
    let api_text = text_of(&api);
    assert!(
        api_text.contains("Public-Key: (2048 bit)") && api_text.contains("sha256WithRSAEncryption"),
        "{api_text}"
    );
    let ca = dir.path().join("pki/ca/kubernetes-ca.pem");
    assert!(run(
        "openssl",
        &[
            "verify",
            "-CAfile",
            ca.to_str().unwrap(),
            api.to_str().unwrap()
        ]
    )
    .status
    .success());
    // Without the flag the document's algorithm holds: nothing changes.
    let (same, _) = make(dir.path(), &[], &text);
    assert_eq!(same, text);
    let out = mkcerts(
        &[
            "--dir",
            dir.path().to_str().unwrap(),
            "--key-algorithm",
            "ecdsa-p256",
        ],
        &text,
    );
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("rekey kube-apiserver for node-1")
            && stderr.contains("kubernetes-ca keeps its rsa-2048 key"),
        "{stderr}"
    );
    let ec = text_of(&api);
    assert!(
        ec.contains("id-ecPublicKey") && ec.contains("sha256WithRSAEncryption"),
        "{ec}"
    );
}

#[test]
fn help_shows_an_example_and_version_works() {
    let help = run(bin(), &["--help"]);
    let text = String::from_utf8(help.stdout).unwrap();
    assert!(
        text.contains("mkcerts --dir out") && text.contains("check") && text.contains("renew"),
        "{text}"
    );
    let version = run(bin(), &["--version"]);
    assert!(String::from_utf8(version.stdout)
        .unwrap()
        .starts_with("mkcerts "));
}

/// The apiserver certificate names a VIP only when a node answers on it (hardway::vip): the lbs'
/// API VIP yes; docs/sources.md#seed-003's controller VIP, which no unit puts on a node, no.
#[test]
fn apiserver_names_the_held_api_vip_and_not_the_unheld_controller_vip() {
    let dir = tempfile::tempdir().unwrap();
    let mut input = testkit::fixture_document("ebook-dualstack.json");
    input
        .cluster
        .extra
        .insert("controller_vip".into(), "10.240.0.20".into());
    let out = mkcerts(
        &["--dir", dir.path().to_str().unwrap()],
        &hardway::doc::to_string(&input),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: cluster.controller_vip 10.240.0.20: no node holds it"),
        "{stderr}"
    );
    let doc = hardway::doc::parse(std::str::from_utf8(&out.stdout).unwrap(), "stdout").unwrap();
    for controller in ["controller1", "controller2"] {
        let path = dir
            .path()
            .join(&cert(&doc, "kube-apiserver", Some(controller)).path);
        let out = run(
            "openssl",
            &[
                "x509",
                "-noout",
                "-ext",
                "subjectAltName",
                "-in",
                path.to_str().unwrap(),
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let ips: Vec<&str> = text
            .split(", ")
            .filter_map(|s| s.trim().strip_prefix("IP Address:"))
            .collect();
        assert!(ips.contains(&"10.240.0.40"), "{controller}: {text}");
        assert!(!ips.contains(&"10.240.0.20"), "{controller}: {text}");
    }
}

#[test]
fn a_node_that_left_leaves_no_files_and_the_others_keep_theirs() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("lab.json");
    let (_, doc) = make(dir.path(), &[], &input);
    let gone = doc.nodes[2].name.clone();
    assert!(dir.path().join("pki/nodes").join(&gone).is_dir());
    let mut smaller = doc.clone();
    smaller.nodes.remove(2);
    // The remaining nodes' own files (cluster-wide ones may be re-issued: SANs list the nodes).
    let others = |dir: &Path| -> BTreeMap<_, _> {
        let nodes = dir.join("pki/nodes");
        snapshot(dir)
            .into_iter()
            .filter(|(p, _)| {
                p.parent().and_then(Path::parent) == Some(nodes.as_path())
                    && !p.starts_with(nodes.join(&gone))
            })
            .collect()
    };
    let before = others(dir.path());
    assert!(!before.is_empty());
    let out = mkcerts(
        &["--dir", dir.path().to_str().unwrap()],
        &hardway::doc::to_string(&smaller),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!dir.path().join("pki/nodes").join(&gone).exists());
    assert_eq!(others(dir.path()), before, "another node's files changed");
}
