//! mkvm against libvirt's own `test:///default` driver: real libvirt object semantics (define,
//! lookups, XML round trips, pools and volumes), in memory, in milliseconds.
//!
//! The test driver's state lives as long as one connection to it in this process is open, so
//! each test holds a `Host` for its whole run and drives mkvm's library (a second process would
//! see a fresh driver). Tests run in parallel against the same state: each uses its own cluster,
//! node names and address range.

use std::path::PathBuf;
use std::time::Duration;

use hardway::doc::Document;
use hardway::{Exit, Failure};
use mkvm::hypervisor::Host;
use mkvm::wait::Stage;
use mkvm::{mark, plan, UpOptions};

const URI: &str = "test:///default";

struct Fixture {
    _dir: tempfile::TempDir,
    image: PathBuf,
    key: PathBuf,
    host: Host,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    // A qcow2 header is all the preflight reads: magic, version 3, 2 GiB virtual size.
    let mut header = vec![0u8; 512];
    header[..4].copy_from_slice(b"QFI\xfb");
    header[7] = 3;
    header[24..32].copy_from_slice(&(2u64 << 30).to_be_bytes());
    let image = dir.path().join("base.qcow2");
    std::fs::write(&image, header).unwrap();
    let key = dir.path().join("id.pub");
    std::fs::write(
        &key,
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGtlc3Q test@mkvm\n",
    )
    .unwrap();
    Fixture {
        host: Host::open(URI).unwrap(),
        image,
        key,
        _dir: dir,
    }
}

/// lab.json renamed for one test: cluster `name`, network `name`, nodes `name-node-N`, pool
/// `name`, addresses in 10.`octet`.0.0/24.
fn lab(name: &str, octet: u8) -> Document {
    let path = testkit::workspace_root().join("tests/fixtures/lab.json");
    let text = std::fs::read_to_string(path)
        .unwrap()
        .replace("10.240.", &format!("10.{octet}."))
        .replace("\"node-", &format!("\"{name}-node-"));
    let mut doc = hardway::doc::from_str(&text, "lab.json").unwrap();
    doc.cluster.name = name.to_string();
    let hv = doc.hypervisor.as_mut().unwrap();
    hv.uri = URI.into();
    hv.network = name.to_string();
    hv.pool = name.to_string();
    doc
}

fn options(f: &Fixture) -> UpOptions {
    UpOptions {
        connect: Some(URI.into()),
        pool: None,
        pool_dir: None,
        image: f.image.clone(),
        ssh_key: f.key.clone(),
        wait: Stage::Running,
        timeout: Duration::from_secs(10),
        domain_type: "auto".into(),
        recreate: false,
        start: true,
        // The test driver reports a few MiB free; the memory check has its own test.
        overcommit: true,
        prune: false,
        fail_after_node: None,
    }
}

/// What exists on the host for a cluster: domains (by name), volumes in its pool, network, pool.
fn inventory(host: &Host, doc: &Document) -> (Vec<String>, Vec<String>, bool, bool) {
    let mut domains: Vec<String> = host
        .conn
        .list_all_domains(0)
        .unwrap()
        .iter()
        .map(|d| d.name().unwrap())
        .filter(|n| n.starts_with(&format!("{}-", doc.cluster.name)))
        .collect();
    domains.sort();
    let pool = host.pool(&doc.cluster.name).unwrap();
    let mut volumes = pool
        .as_ref()
        .map(|p| p.list_volumes().unwrap())
        .unwrap_or_default();
    volumes.sort();
    let network = host.network(&doc.cluster.name).unwrap().is_some();
    (domains, volumes, network, pool.is_some())
}

#[test]
fn up_defines_everything_marked_and_a_second_up_changes_nothing() {
    let f = fixture();
    let doc = lab("idem", 41);
    let first = mkvm::up(doc.clone(), &options(&f)).unwrap().doc;
    let (domains, volumes, network, pool) = inventory(&f.host, &doc);
    assert_eq!(domains, ["idem-node-1", "idem-node-2", "idem-node-3"]);
    assert_eq!(volumes.len(), 6, "{volumes:?}");
    assert!(
        volumes.contains(&"idem-idem-node-1.qcow2".to_string()),
        "{volumes:?}"
    );
    assert!(network && pool);

    // Each domain carries the mark, is running, and the document says so.
    for node in &first.nodes {
        let domain = f.host.domain(&node.name).unwrap().unwrap();
        let xml = f.host.domain_xml(&domain).unwrap();
        let mark = mark::vm_mark(&xml).unwrap();
        assert_eq!(
            (mark.cluster.as_str(), mark.node.as_str()),
            ("idem", node.name.as_str())
        );
        assert!(
            xml.contains("type='qemu'"),
            "TCG when the host offers no kvm: {xml}"
        );
        assert!(xml.contains(node.mac.as_deref().unwrap()));
        let vm = node.vm.as_ref().unwrap();
        assert_eq!(vm.state.as_deref(), Some("running"));
        assert_eq!(
            vm.uuid.as_deref(),
            Some(domain.uuid_string().unwrap().as_str())
        );
        assert_eq!(
            vm.extra["console"],
            format!("virsh -c {URI} console {}", node.name)
        );
    }
    let network = f.host.network("idem").unwrap().unwrap();
    let mark = mark::network_mark(&f.host.network_xml(&network).unwrap()).unwrap();
    assert_eq!(mark.cluster, "idem");
    assert_eq!(mark.pool_created.as_deref(), Some("idem"));

    // Idempotent: the same document out, the same UUIDs, nothing redefined.
    let second = mkvm::up(first.clone(), &options(&f)).unwrap().doc;
    assert_eq!(
        hardway::doc::to_string(&second),
        hardway::doc::to_string(&first)
    );
    assert_eq!(inventory(&f.host, &doc).1, volumes);

    // down removes it all and clears the vm sections.
    let (after, removed) = mkvm::down(second, Some(URI), false).unwrap();
    assert!(after.nodes.iter().all(|n| n.vm.is_none()));
    assert_eq!(removed.len(), 3 + 6 + 1 + 1, "{removed:?}");
    assert_eq!(inventory(&f.host, &doc), (vec![], vec![], false, false));
}

#[test]
fn a_changed_size_is_refused_unless_recreate() {
    let f = fixture();
    let doc = lab("resize", 42);
    let first = mkvm::up(doc.clone(), &options(&f)).unwrap().doc;
    let old_uuid = first.nodes[1].vm.as_ref().unwrap().uuid.clone();
    let mut bigger = first.clone();
    bigger.nodes[1].memory_mib = 1024;
    let err = mkvm::up(bigger.clone(), &options(&f)).unwrap_err();
    assert_eq!(err.exit(), Exit::Problem, "{err}");
    assert!(err.to_string().contains("memory_mib 768 -> 1024"), "{err}");
    let mut recreate = options(&f);
    recreate.recreate = true;
    let done = mkvm::up(bigger, &recreate).unwrap().doc;
    assert_ne!(done.nodes[1].vm.as_ref().unwrap().uuid, old_uuid);
    assert_eq!(
        done.nodes[0].vm, first.nodes[0].vm,
        "an unchanged node is left alone"
    );
    let xml = f
        .host
        .domain_xml(&f.host.domain("resize-node-2").unwrap().unwrap())
        .unwrap();
    assert_eq!(mark::vm_mark(&xml).unwrap().memory_mib, 1024);
    mkvm::down(done, Some(URI), false).unwrap();
    assert_eq!(inventory(&f.host, &doc), (vec![], vec![], false, false));
}

#[test]
fn foreign_objects_with_the_same_names_are_refused_and_survive_down() {
    let f = fixture();
    let doc = lab("foreign", 43);
    // A domain named like node 2 and a network named like the cluster's, neither marked.
    let foreign_domain = f
        .host
        .conn
        .define_domain_xml(
            "<domain type='qemu'><name>foreign-node-2</name><memory unit='MiB'>64</memory>\
             <vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os></domain>",
        )
        .unwrap();
    let err = mkvm::up(doc.clone(), &options(&f)).unwrap_err();
    assert_eq!(err.exit(), Exit::Usage, "{err}");
    assert!(err.to_string().contains("foreign-node-2"), "{err}");
    assert_eq!(
        inventory(&f.host, &doc).0,
        ["foreign-node-2"],
        "preflight touched nothing"
    );

    // down on the same document leaves the foreign domain alone.
    mkvm::down(doc.clone(), Some(URI), false).unwrap();
    assert!(f.host.domain("foreign-node-2").unwrap().is_some());
    foreign_domain.undefine().unwrap();

    let net = f
        .host
        .conn
        .define_network_xml(
            "<network><name>foreign</name><ip address='10.143.0.1' prefix='24'/></network>",
        )
        .unwrap();
    let err = mkvm::up(doc.clone(), &options(&f)).unwrap_err();
    assert_eq!(err.exit(), Exit::Usage);
    assert!(err.to_string().contains("is not mkvm's"), "{err}");
    mkvm::down(doc.clone(), Some(URI), false).unwrap();
    assert!(
        f.host.network("foreign").unwrap().is_some(),
        "a foreign network survives down"
    );
    net.undefine().unwrap();

    // Our own cluster up, then a foreign domain appears under a name down would look at:
    // down removes ours and keeps it.
    let up = mkvm::up(doc.clone(), &options(&f)).unwrap().doc;
    let stranger = f
        .host
        .conn
        .define_domain_xml(
            "<domain type='qemu'><name>foreign-node-9</name><memory unit='MiB'>64</memory>\
             <vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os></domain>",
        )
        .unwrap();
    mkvm::down(up, Some(URI), false).unwrap();
    assert_eq!(
        inventory(&f.host, &doc),
        (vec!["foreign-node-9".into()], vec![], false, false)
    );
    stranger.undefine().unwrap();
}

#[test]
fn a_foreign_volume_in_the_pool_is_refused() {
    let f = fixture();
    let doc = lab("vols", 44);
    let pool = f
        .host
        .conn
        .define_storage_pool_xml(
            "<pool type='dir'><name>vols</name><target><path>/var/lib/libvirt/images/vols</path></target></pool>",
            0,
        )
        .unwrap();
    pool.create(0).unwrap();
    let volume = virt::storage_vol::StorageVol::create_xml(
        &pool,
        "<volume><name>vols-vols-node-3.qcow2</name><capacity>1024</capacity></volume>",
        0,
    )
    .unwrap();
    let err = mkvm::up(doc.clone(), &options(&f)).unwrap_err();
    assert_eq!(err.exit(), Exit::Usage);
    assert!(err.to_string().contains("vols-vols-node-3.qcow2"), "{err}");
    assert!(inventory(&f.host, &doc).0.is_empty());
    volume.delete(0).unwrap();
    pool.destroy().unwrap();
    pool.undefine().unwrap();
}

#[test]
fn a_failure_after_the_second_node_rolls_back_everything_this_run_made() {
    let f = fixture();
    let doc = lab("rollback", 45);
    let mut opts = options(&f);
    opts.fail_after_node = Some(2);
    let err = mkvm::up(doc.clone(), &opts).unwrap_err();
    assert_eq!(err.exit(), Exit::External);
    let message = err.to_string();
    assert!(message.contains("injected failure"), "{message}");
    assert!(message.contains("rolled back 8 object(s)"), "{message}");
    // Pool, network, 2 x (2 volumes + domain): all gone, nothing orphaned.
    assert_eq!(inventory(&f.host, &doc), (vec![], vec![], false, false));

    // A rollback removes only what this run made: nodes from an earlier run stay.
    let mut two = doc.clone();
    two.nodes.truncate(2);
    mkvm::up(two, &options(&f)).unwrap();
    let mut opts = options(&f);
    opts.fail_after_node = Some(3);
    let err = mkvm::up(doc.clone(), &opts).unwrap_err();
    // Node 3's two volumes and domain, and its DHCP and DNS entries added to the network.
    assert!(err.to_string().contains("rolled back 5 object(s)"), "{err}");
    let network = f.host.network("rollback").unwrap().unwrap();
    let (dhcp, dns) = plan::network_hosts(&f.host.network_xml(&network).unwrap());
    assert_eq!(
        (dhcp.len(), dns.len()),
        (2, 2),
        "the network's entries are back to two nodes"
    );
    let (domains, volumes, network, pool) = inventory(&f.host, &doc);
    assert_eq!(domains, ["rollback-node-1", "rollback-node-2"]);
    assert_eq!(volumes.len(), 4);
    assert!(network && pool);
    mkvm::down(doc.clone(), Some(URI), false).unwrap();
    assert_eq!(inventory(&f.host, &doc), (vec![], vec![], false, false));
}

#[test]
fn preflight_refuses_overlap_memory_and_bad_inputs_touching_nothing() {
    let f = fixture();
    let doc = lab("pre", 46);
    // An active network on the same range.
    let net = f
        .host
        .conn
        .create_network_xml(
            "<network><name>pre-other</name><ip address='10.46.0.1' prefix='16'/></network>",
        )
        .unwrap();
    let err = mkvm::up(doc.clone(), &options(&f)).unwrap_err();
    assert_eq!(err.exit(), Exit::Usage);
    assert!(err.to_string().contains("overlaps"), "{err}");
    assert!(err.to_string().contains("pre-other"), "{err}");
    net.destroy().unwrap();

    let mut huge = doc.clone();
    huge.nodes[0].memory_mib = 1 << 40;
    let mut strict = options(&f);
    strict.overcommit = false;
    let err = mkvm::up(huge.clone(), &strict).unwrap_err();
    assert_eq!(err.exit(), Exit::Usage);
    assert!(err.to_string().contains("--overcommit"), "{err}");

    let mut opts = options(&f);
    opts.image = f.image.with_file_name("missing.qcow2");
    assert_eq!(
        mkvm::up(doc.clone(), &opts).unwrap_err().exit(),
        Exit::Usage
    );
    let mut opts = options(&f);
    opts.ssh_key = f.key.with_file_name("missing.pub");
    assert_eq!(
        mkvm::up(doc.clone(), &opts).unwrap_err().exit(),
        Exit::Usage
    );
    let mut opts = options(&f);
    std::fs::write(f.image.with_file_name("text.img"), "hello").unwrap();
    opts.image = f.image.with_file_name("text.img");
    let err = mkvm::up(doc.clone(), &opts).unwrap_err();
    assert!(err.to_string().contains("neither qcow2"), "{err}");
    assert_eq!(inventory(&f.host, &doc), (vec![], vec![], false, false));
}

#[test]
fn status_reports_each_node() {
    let f = fixture();
    let doc = lab("stat", 47);
    let rows = mkvm::status(&doc, Some(URI)).unwrap();
    assert!(rows.iter().all(|r| r.state == "missing" && !r.owned));
    let up = mkvm::up(doc.clone(), &options(&f)).unwrap().doc;
    let rows = mkvm::status(&up, Some(URI)).unwrap();
    assert!(
        rows.iter().all(|r| r.state == "running" && r.owned),
        "{rows:?}"
    );
    mkvm::down(up, Some(URI), false).unwrap();
}

#[test]
fn dry_run_prints_parseable_xml_and_touches_nothing() {
    let f = fixture();
    let doc = lab("dry", 48);
    let plan = mkvm::dry_run(&doc, &options(&f)).unwrap();
    for xml in [
        plan["network"].as_str().unwrap(),
        plan["pool"].as_str().unwrap(),
    ] {
        roxmltree::Document::parse(xml).unwrap();
    }
    for node in plan["nodes"].as_array().unwrap() {
        roxmltree::Document::parse(node["domain"].as_str().unwrap()).unwrap();
        assert!(node["volumes"][1]["content"]["user-data"]
            .as_str()
            .unwrap()
            .starts_with("#cloud-config"));
    }
    assert_eq!(inventory(&f.host, &doc), (vec![], vec![], false, false));
}

#[test]
fn no_start_defines_without_starting() {
    let f = fixture();
    let doc = lab("nostart", 49);
    let mut opts = options(&f);
    opts.start = false;
    let done = mkvm::up(doc.clone(), &opts).unwrap().doc;
    for node in &done.nodes {
        let vm = node.vm.as_ref().unwrap();
        assert_eq!(vm.state.as_deref(), Some("shut-off"));
        assert_eq!(vm.extra["stage"], "defined");
    }
    assert_eq!(inventory(&f.host, &doc).0.len(), 3);
    mkvm::down(done, Some(URI), false).unwrap();
}

#[test]
fn prune_removes_only_owned_domains_of_dropped_nodes_and_only_when_asked() {
    let f = fixture();
    let doc = lab("prune", 50);
    mkvm::up(doc.clone(), &options(&f)).unwrap();
    let pool = f.host.pool("prune").unwrap().unwrap();
    let volume = |name: &str| {
        virt::storage_vol::StorageVol::create_xml(
            &pool,
            &format!("<volume><name>{name}</name><capacity>1024</capacity></volume>"),
            0,
        )
        .unwrap()
    };
    // Named like nodes of this cluster, but not mkvm's for it: a domain without the mark (and a
    // volume named as mkvm would name its overlay), and another cluster's marked domain that
    // lists volumes in this pool.
    let unmarked = f
        .host
        .conn
        .define_domain_xml(
            "<domain type='qemu'><name>prune-node-9</name><memory unit='MiB'>64</memory>\
             <vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os></domain>",
        )
        .unwrap();
    let lookalike = volume("prune-prune-node-9.qcow2");
    let other_cluster = f
        .host
        .conn
        .define_domain_xml(&format!(
            "<domain type='qemu'><name>prune-node-8</name><metadata><hardway:vm \
             xmlns:hardway='{}' cluster='other' node='prune-node-8' pool='prune' \
             overlay='prune-prune-node-8.qcow2' seed='prune-prune-node-8-seed.iso'/></metadata>\
             <memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os>\
             </domain>",
            mark::NS
        ))
        .unwrap();
    let others_overlay = volume("prune-prune-node-8.qcow2");
    let others_seed = volume("prune-prune-node-8-seed.iso");
    let foreign = [
        "prune-prune-node-8-seed.iso",
        "prune-prune-node-8.qcow2",
        "prune-prune-node-9.qcow2",
    ];

    let mut two = doc.clone();
    two.nodes.truncate(2);
    let node_3 = mkvm::Orphan {
        uri: URI.into(),
        domain: "prune-node-3".into(),
        volumes: vec![
            "prune/prune-prune-node-3.qcow2".into(),
            "prune/prune-prune-node-3-seed.iso".into(),
        ],
        removed: false,
    };
    // Without --prune: reported, kept.
    let kept = mkvm::up(two.clone(), &options(&f)).unwrap();
    assert_eq!(kept.orphans, std::slice::from_ref(&node_3));
    let (domains, volumes, _, _) = inventory(&f.host, &doc);
    assert_eq!(
        domains,
        [
            "prune-node-1",
            "prune-node-2",
            "prune-node-3",
            "prune-node-8",
            "prune-node-9"
        ]
    );
    assert_eq!(volumes.len(), 6 + foreign.len(), "{volumes:?}");

    // With --prune: node 3's domain and its two volumes go, nothing else.
    let mut prune = options(&f);
    prune.prune = true;
    let pruned = mkvm::up(two.clone(), &prune).unwrap();
    assert_eq!(
        pruned.orphans,
        [mkvm::Orphan {
            removed: true,
            ..node_3
        }]
    );
    let (domains, volumes, network, _) = inventory(&f.host, &doc);
    assert_eq!(
        domains,
        [
            "prune-node-1",
            "prune-node-2",
            "prune-node-8",
            "prune-node-9"
        ]
    );
    let mut expected: Vec<String> = ["prune-node-1", "prune-node-2"]
        .iter()
        .flat_map(|n| [format!("prune-{n}-seed.iso"), format!("prune-{n}.qcow2")])
        .chain(foreign.iter().map(|v| v.to_string()))
        .collect();
    expected.sort();
    assert_eq!(volumes, expected);
    assert!(network);
    assert_eq!(pruned.doc, kept.doc, "the kept nodes are untouched");

    // A second run has nothing left to prune.
    assert_eq!(mkvm::up(two.clone(), &prune).unwrap().orphans, []);

    mkvm::down(two, Some(URI), false).unwrap();
    assert!(f.host.domain("prune-node-9").unwrap().is_some());
    assert!(f.host.domain("prune-node-8").unwrap().is_some());
    for v in [lookalike, others_overlay, others_seed] {
        v.delete(0).unwrap();
    }
    unmarked.undefine().unwrap();
    other_cluster.undefine().unwrap();
    f.host.remove_pool_if_empty("prune").unwrap();
    assert_eq!(inventory(&f.host, &doc), (vec![], vec![], false, false));
}
