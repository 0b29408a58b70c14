//! The quick read against the full read: for every edit, either the quick read refuses it (and
//! the full read, which `--watch` then makes, decides), or both give the same routes, and so
//! the same plan. Plain data only: no kernel.

use super::*;
use crate::nexthops::{NexthopIds, NexthopMode};
use crate::plan::{Address, Owner, Snapshot};
use proptest::prelude::*;
use serde_json::Value;

/// ebook-dualstack.json as route-sync gets it from a pipeline: compact JSON. Nine nodes with
/// both families; worker1 and worker2 have a pod CIDR of each.
fn base() -> Value {
    serde_json::to_value(testkit::fixture_document("ebook-dualstack.json")).unwrap()
}

fn text(v: &Value) -> String {
    serde_json::to_string(v).unwrap()
}

/// The full read, as `--watch` makes it.
fn full(text: &str, scope: &Scope) -> Result<Kept, Error> {
    Kept::read(text.to_string(), "doc", scope, &mut PodRanges::default())
}

/// The plan against a machine on both node networks with none of the routes yet, or its error
/// (a node address off those networks).
fn plan_of(wants: &[Want]) -> Result<plan::Plan, String> {
    let net = |s: &str| s.parse().unwrap();
    let kernel = Snapshot {
        addresses: vec![
            Address {
                ifindex: 2,
                net: net("10.240.0.1/24"),
            },
            Address {
                ifindex: 2,
                net: net("fd00:10:240::1/64"),
            },
        ],
        links: [(2, "br0".to_string())].into(),
        nexthops: Some(Vec::new()),
        ..Snapshot::default()
    };
    let owner = Owner {
        proto: 200,
        table: 254,
    };
    let mode = NexthopMode {
        ids: NexthopIds::DEFAULT,
        enabled: true,
    };
    plan::plan(wants, &kernel, owner, mode).map_err(|e| e.to_string())
}

/// Reads `new` after `kept` both ways, as `--watch` does: the quick read, else the full one
/// (a failed full read keeps the last good document). Checks they agree; returns whether the
/// quick read took it.
fn read_both(kept: &mut Kept, new: &str, scope: &Scope) -> bool {
    let full = full(new, scope);
    match kept.apply_edit(new.to_string(), scope) {
        Ok(()) => {
            let full = full.unwrap_or_else(|e| panic!("the quick read took what fails: {e}"));
            assert_eq!(kept.wants, full.wants);
            assert_eq!(plan_of(&kept.wants), plan_of(&full.wants));
            // What the next quick read starts from is what a full read would have left.
            assert_eq!(kept.spans, full.spans);
            assert_eq!(kept.names, full.names);
            assert_eq!(kept.cidrs, full.cidrs);
            true
        }
        Err(_) => {
            if let Ok(full) = full {
                *kept = full;
            }
            false
        }
    }
}

fn node<'v>(v: &'v mut Value, name: &str) -> &'v mut Value {
    let nodes = v["nodes"].as_array_mut().unwrap();
    nodes.iter_mut().find(|n| n["name"] == name).unwrap()
}

type Edit = fn(&mut Value);

/// (what, the edit, whether the quick read takes it, whether the full read passes it).
const EDITS: [(&str, Edit, bool, bool); 16] = [
    (
        "a node's move",
        |v| node(v, "worker1")["ips"][0] = "10.240.0.99".into(),
        true,
        true,
    ),
    (
        "an IPv6 move",
        |v| node(v, "worker2")["ips"][1] = "fd00:10:240::99".into(),
        true,
        true,
    ),
    (
        "a new pod CIDR",
        |v| node(v, "worker2")["pod_cidrs"][0] = "10.200.7.0/24".into(),
        true,
        true,
    ),
    (
        "a first pod CIDR",
        |v| node(v, "etcd1")["pod_cidrs"] = serde_json::json!(["10.200.5.0/24"]),
        true,
        true,
    ),
    (
        "a rename",
        |v| node(v, "worker2")["name"] = "worker9".into(),
        true,
        true,
    ),
    (
        "a field route-sync skips",
        |v| node(v, "lb1")["memory_mib"] = 4096.into(),
        true,
        true,
    ),
    (
        "another node's pod CIDR",
        |v| node(v, "worker2")["pod_cidrs"][0] = "10.200.0.0/24".into(),
        false,
        false,
    ),
    (
        "a pod CIDR twice",
        |v| node(v, "worker2")["pod_cidrs"][1] = "10.200.1.0/24".into(),
        false,
        false,
    ),
    (
        "host bits",
        |v| node(v, "worker2")["pod_cidrs"][0] = "10.200.1.1/24".into(),
        false,
        false,
    ),
    (
        "not a pod range",
        |v| node(v, "worker2")["pod_cidrs"][0] = "127.0.0.0/24".into(),
        false,
        false,
    ),
    (
        "another node's name",
        |v| node(v, "worker2")["name"] = "etcd1".into(),
        false,
        false,
    ),
    (
        "a name that is no DNS label",
        |v| node(v, "worker2")["name"] = "Worker_2".into(),
        false,
        false,
    ),
    (
        "no address of the pod CIDR's family",
        |v| node(v, "worker1")["ips"] = serde_json::json!(["10.240.0.31"]),
        false,
        false,
    ),
    (
        "a change outside the nodes",
        |v| v["cluster"]["networks"]["service"][0] = "10.33.0.0/24".into(),
        false,
        true,
    ),
    (
        "two nodes' moves",
        |v| {
            node(v, "worker1")["ips"][0] = "10.240.0.98".into();
            node(v, "worker2")["ips"][0] = "10.240.0.99".into();
        },
        false,
        true,
    ),
    (
        "a node removed",
        |v| {
            v["nodes"].as_array_mut().unwrap().pop();
        },
        false,
        true,
    ),
];

#[test]
fn each_edit_is_read_quickly_or_left_to_the_full_read() {
    let before = text(&base());
    for (what, edit, quick, passes) in EDITS {
        let mut v = base();
        edit(&mut v);
        let new = text(&v);
        assert_eq!(full(&new, &Scope::Host(None)).is_ok(), passes, "{what}");
        let mut kept = full(&before, &Scope::Host(None)).unwrap();
        assert_eq!(
            read_both(&mut kept, &new, &Scope::Host(None)),
            quick,
            "{what}"
        );
    }
}

#[test]
fn raw_edits_of_the_text() {
    let before = text(&base());
    let name = "\"name\":\"worker1\"";
    let cases = [
        // Whitespace inside the node: the same routes.
        (
            "spaced",
            before.replacen(name, "\"name\" : \"worker1\" ", 1),
            true,
        ),
        // Not JSON any more.
        (
            "trailing comma",
            before.replacen(name, &format!("{name},"), 1),
            false,
        ),
        // A node added in front of worker1: the edit spans more than one object.
        (
            "a node added",
            before.replacen(
                &format!("{{{name}"),
                &format!("{{\"name\":\"w0\",\"pod_cidrs\":[]}},{{{name}"),
                1,
            ),
            false,
        ),
        ("the same text", before.clone(), true),
    ];
    for (what, new, quick) in cases {
        let mut kept = full(&before, &Scope::Host(None)).unwrap();
        assert_eq!(
            read_both(&mut kept, &new, &Scope::Host(None)),
            quick,
            "{what}"
        );
    }
}

#[test]
fn the_node_route_sync_runs_on() {
    let me = Scope::Node("worker1".into());
    let before = text(&base());
    let mut kept = full(&before, &me).unwrap();
    let mut v = base();
    node(&mut v, "worker1")["ips"][0] = "10.240.0.99".into();
    assert!(read_both(&mut kept, &text(&v), &me), "its own move");
    node(&mut v, "worker1")["name"] = "worker7".into();
    assert!(full(&text(&v), &me).is_err());
    assert!(!read_both(&mut kept, &text(&v), &me), "renamed away");
}

#[test]
fn edits_one_after_another_keep_the_spans_right() {
    let mut v = base();
    let mut kept = full(&text(&v), &Scope::Host(None)).unwrap();
    let steps: [Edit; 4] = [
        |v| node(v, "worker1")["ips"][0] = "10.240.0.199".into(),
        |v| node(v, "worker2")["pod_cidrs"][0] = "10.200.11.0/24".into(),
        |v| node(v, "etcd1")["name"] = "e".into(),
        |v| node(v, "lb2")["pod_cidrs"] = serde_json::json!(["10.200.1.0/24"]),
    ];
    for (i, step) in steps.into_iter().enumerate() {
        step(&mut v);
        assert!(
            read_both(&mut kept, &text(&v), &Scope::Host(None)),
            "step {i}"
        );
    }
}

/// One random change of the document, as a `--watch` might see it written.
#[derive(Debug, Clone)]
enum Change {
    Name(usize, &'static str),
    Ips(usize, Vec<&'static str>),
    PodCidrs(usize, Vec<&'static str>),
    Skipped(usize, u32),
    Service(&'static str),
    Remove(usize),
    /// A byte inserted at (or removed from) a position, as a fraction of the text's length.
    Insert(f64, char),
    Delete(f64),
}

const NAMES: [&str; 5] = ["worker1", "worker2", "etcd1", "n9", "Bad_Name"];
const IPS: [&str; 6] = [
    "10.240.0.31",
    "10.240.0.77",
    "fd00:10:240::1f",
    "fd00:10:240::77",
    "10.240.0.32",
    "192.0.2.1",
];
const CIDRS: [&str; 7] = [
    "10.200.0.0/24",
    "10.200.1.0/24",
    "10.200.9.0/24",
    "fd00:10:200::/64",
    "fd00:10:200:9::/64",
    "10.200.9.1/24",
    "127.0.0.0/24",
];

fn change() -> impl Strategy<Value = Change> {
    let i = 0..9usize;
    prop_oneof![
        (i.clone(), prop::sample::select(&NAMES[..])).prop_map(|(i, n)| Change::Name(i, n)),
        (i.clone(), prop::sample::subsequence(&IPS[..], 0..3)).prop_map(|(i, v)| Change::Ips(i, v)),
        (i.clone(), prop::sample::subsequence(&CIDRS[..], 0..3))
            .prop_map(|(i, v)| Change::PodCidrs(i, v)),
        (i.clone(), 0..5000u32).prop_map(|(i, m)| Change::Skipped(i, m)),
        prop::sample::select(&["10.32.0.0/24", "10.200.9.0/24"][..]).prop_map(Change::Service),
        i.prop_map(Change::Remove),
        (
            0.0..1.0f64,
            prop::sample::select(&[' ', ',', '"', '}', '1'][..])
        )
            .prop_map(|(at, c)| Change::Insert(at, c)),
        (0.0..1.0f64).prop_map(Change::Delete),
    ]
}

/// The new text: `change` applied to `v` (kept as the last document written), or to its text.
fn apply(v: &mut Value, change: &Change) -> String {
    // A byte edit may have left no nodes to change, `nodes` no array, or the service network
    // no array: a change with nothing to change is skipped, never a panic.
    if let Change::Service(s) = change {
        if let Some(first) = v.pointer_mut("/cluster/networks/service/0") {
            *first = (*s).into();
        }
    }
    let mut none = Vec::new();
    let nodes = v
        .get_mut("nodes")
        .and_then(Value::as_array_mut)
        .unwrap_or(&mut none);
    let len = nodes.len();
    let mut set = |i: usize, key: &str, value: Value| {
        if let Some(node) = nodes[i % len].as_object_mut() {
            node.insert(key.into(), value);
        }
    };
    match change {
        _ if len == 0 => {}
        Change::Name(i, n) => set(*i, "name", (*n).into()),
        Change::Ips(i, ips) => set(*i, "ips", serde_json::json!(ips)),
        Change::PodCidrs(i, c) => set(*i, "pod_cidrs", serde_json::json!(c)),
        Change::Skipped(i, m) => set(*i, "memory_mib", (*m).into()),
        Change::Remove(i) if len > 1 => drop(nodes.remove(i % len)),
        _ => {}
    }
    let mut new = text(v);
    let at = |f: &f64, n: usize| ((*f * n as f64) as usize).min(n.saturating_sub(1));
    match change {
        Change::Insert(f, c) => new.insert(at(f, new.len()), *c),
        Change::Delete(f) if !new.is_empty() => drop(new.remove(at(f, new.len()))),
        _ => {}
    }
    new
}

proptest! {
    #[test]
    fn the_quick_read_agrees_with_the_full_read(
        changes in prop::collection::vec(change(), 1..6),
        on_a_node in any::<bool>(),
    ) {
        let scope = if on_a_node { Scope::Node("worker1".into()) } else { Scope::Host(None) };
        let mut v = base();
        let mut kept = full(&text(&v), &scope).unwrap();
        for change in &changes {
            let new = apply(&mut v, change);
            read_both(&mut kept, &new, &scope);
            // A byte edit is made to the text only: when the result is JSON, the next change
            // starts from it.
            if let Ok(written) = serde_json::from_str::<Value>(&new) {
                v = written;
            }
        }
    }
}

#[test]
fn a_cluster_across_hypervisors_is_always_read_in_full() {
    let mut v = serde_json::to_value(testkit::fixture_document("hypervisors/two.json")).unwrap();
    let hv_a = Scope::Host(Some("hv-a".into()));
    let mut kept = full(&text(&v), &hv_a).unwrap();
    assert!(kept.spans.is_empty());
    // hardway::doc checks each node against its hypervisor's slice (10.240.0.128/25 for hv-b's),
    // over the whole document: the quick read leaves every edit to the full read.
    node(&mut v, "node-b1")["ips"][0] = "10.240.0.140".into();
    assert!(full(&text(&v), &hv_a).is_ok());
    assert!(
        !read_both(&mut kept, &text(&v), &hv_a),
        "a move inside the slice"
    );
    node(&mut v, "node-b1")["ips"][0] = "10.240.0.99".into();
    assert!(full(&text(&v), &hv_a).is_err());
    assert!(
        !read_both(&mut kept, &text(&v), &hv_a),
        "a move out of the slice"
    );
}
