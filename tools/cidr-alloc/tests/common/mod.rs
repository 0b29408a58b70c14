//! What the property tests of hosts.rs and properties.rs both need: the roles a generated node's
//! bit mask names, the cluster networks a generated document carries, one allocator run, the
//! stability check, and the nodes that survive a removal.

use cidr_alloc::{allocate, Options, Previous};
use hardway::{Document, Role};
use proptest::prelude::*;
use serde_json::{json, Value};

/// The roles whose bits are set in `mask` (bit i is `Role::ALL[i]`).
pub fn role_names(mask: u8) -> Vec<&'static str> {
    Role::ALL
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, r)| r.as_str())
        .collect()
}

/// `cluster.networks` of a generated document: IPv4 only, or IPv4 and IPv6 when `dual`.
pub fn networks(dual: bool) -> Value {
    let mut node = vec!["10.240.0.0/24"];
    let mut pod = vec!["10.200.0.0/16"];
    let mut prefix = vec![24];
    let mut service = vec!["10.32.0.0/24"];
    if dual {
        node.push("fd00:10:240::/64");
        pod.push("fd00:10:200::/56");
        prefix.push(64);
        service.push("fd00:10:32::/112");
    }
    json!({"node": node, "pod": pod, "pod_prefix": prefix, "service": service})
}

/// One allocation with default options, `previous` given as `--previous prev.json`.
pub fn run(doc: &Document, previous: Option<&Document>) -> Document {
    let previous = previous.map(|document| Previous {
        path: "prev.json",
        document,
    });
    allocate(doc.clone(), previous, &Options::default()).unwrap()
}

/// The same input gives the same output, a re-run on the output changes nothing, and feeding the
/// output as --previous to the original input gives the output again.
pub fn check_stable(doc: &Document) -> Result<(), TestCaseError> {
    let once = run(doc, None);
    prop_assert_eq!(&once, &run(doc, None));
    prop_assert_eq!(
        hardway::doc::to_string(&run(&once, None)),
        hardway::doc::to_string(&once)
    );
    prop_assert_eq!(&run(doc, Some(&once)), &once);
    Ok(())
}

/// The generated nodes whose `remove` flag is false (`remove` holds a flag for each of them).
pub fn survivors<S: Clone>(specs: &[S], remove: &[bool]) -> Vec<S> {
    specs
        .iter()
        .zip(remove)
        .filter(|(_, gone)| !**gone)
        .map(|(s, _)| s.clone())
        .collect()
}
