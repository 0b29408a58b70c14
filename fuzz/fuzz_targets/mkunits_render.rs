//! mkunits' document-to-files path without I/O: any document the reader accepts (and validates)
//! renders or is refused, never a panic; and no rendered file carries a line the templates did
//! not write. Every line is free of control characters (tab aside), and in a systemd unit every
//! line is blank, a comment, a `[Section]`, a `\`-continuation, or `Key=` with a key the
//! templates write for the fixtures (an injected `ExecStartPre=` is not one of them).
#![no_main]

use std::collections::BTreeSet;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

const FIXTURES: [&str; 2] = [
    include_str!("../../tests/fixtures/lab.json"),
    include_str!("../../tests/fixtures/ebook-dualstack.json"),
];

/// The unit keys the templates write, learnt by rendering the fixtures.
fn template_keys() -> &'static BTreeSet<String> {
    static KEYS: OnceLock<BTreeSet<String>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut keys = BTreeSet::new();
        for fixture in FIXTURES {
            let mut doc = hardway::doc::from_str(fixture, "fixture").expect("fixtures read");
            // The pod network is the document's choice (mkcluster's); learn both.
            for pod_network in [hardway::doc::PodNetwork::Routes, hardway::doc::PodNetwork::Flannel] {
                doc.cluster.pod_network = pod_network;
                let opts = mkunits::Options::default();
                let Ok(plans) = mkunits::render::render(&doc, &opts) else {
                    continue;
                };
                for file in plans.iter().flat_map(|p| &p.files) {
                    if is_unit(&file.dest) {
                        let text = String::from_utf8_lossy(&file.contents);
                        keys.extend(unit_lines(&text).filter_map(|l| key(l).map(String::from)));
                    }
                }
            }
        }
        assert!(keys.contains("ExecStart"), "the fixtures render units");
        keys
    })
}

fn is_unit(dest: &str) -> bool {
    dest.contains("/systemd/system/")
}

/// The lines of a unit that stand on their own (not continuations of the one before).
fn unit_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut continued = false;
    text.lines().filter(move |line| {
        let own = !continued;
        continued = line.ends_with('\\');
        own
    })
}

fn key(line: &str) -> Option<&str> {
    line.split_once('=').map(|(k, _)| k)
}

fuzz_target!(|data: &[u8]| {
    let keys = template_keys();
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(document) = hardway::doc::from_str(text, "fuzz") else {
        return;
    };
    if document.validate().is_err() {
        return;
    }
    let Ok(plans) = mkunits::render::render(&document, &mkunits::Options::default()) else {
        return;
    };
    for file in plans.iter().flat_map(|p| &p.files) {
        let Ok(text) = std::str::from_utf8(&file.contents) else {
            continue; // binary data (none today) is not a config
        };
        for line in text.lines() {
            assert!(
                !line.chars().any(|c| c.is_control() && c != '\t' || c == '\u{2028}' || c == '\u{2029}'),
                "{}: a control character in {line:?}",
                file.dest
            );
        }
        if is_unit(&file.dest) {
            for line in unit_lines(text) {
                let plain = line.is_empty() || line.starts_with(['#', ';', '[']);
                let known = key(line).is_some_and(|k| keys.contains(k));
                assert!(plain || known, "{}: a line no template writes: {line:?}", file.dest);
            }
        }
    }
});
