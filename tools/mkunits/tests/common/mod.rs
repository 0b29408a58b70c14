//! Shared by mkunits' tests: run the binary on a fixture, read what it wrote.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use hardway::doc::Cluster;
use hardway::{Document, Node};

pub fn fixture(name: &str) -> PathBuf {
    testkit::workspace_root().join("tests/fixtures").join(name)
}

/// A directory holding a stand-in `route-sync` (its bytes are only copied, never run here).
pub fn bin_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("route-sync"), b"#!/bin/sh\nexit 0\n").unwrap();
    dir
}

/// One run of mkunits on a document file.
pub struct Run {
    pub out: Output,
    pub doc: Document,
}

pub fn mkunits(doc: &Path, out_dir: &Path, bin: &Path, extra: &[&str]) -> Run {
    let out = Command::cargo_bin("mkunits")
        .unwrap()
        .arg("--dir")
        .arg(out_dir)
        .arg("--bin-dir")
        .arg(bin)
        .arg("-f")
        .arg(doc)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mkunits failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::str::from_utf8(&out.stdout).expect("stdout is UTF-8");
    let doc = hardway::doc::parse(text, "mkunits' stdout").unwrap_or_else(|e| panic!("{e}"));
    Run { out, doc }
}

/// Renders `fixture` into a fresh directory; returns (dir guard, out dir, document).
pub fn render(fixture_name: &str, extra: &[&str]) -> (tempfile::TempDir, PathBuf, Document) {
    let tmp = tempfile::tempdir().unwrap();
    let bin = bin_dir();
    let out = tmp.path().join("out");
    let run = mkunits(&fixture(fixture_name), &out, bin.path(), extra);
    (tmp, out, run.doc)
}

pub fn node<'a>(doc: &'a Document, name: &str) -> &'a Node {
    doc.node(name).unwrap_or_else(|| panic!("no node {name}"))
}

/// `(dest, src)` of each of a node's files.
pub fn files(node: &Node) -> Vec<(String, String)> {
    node.files
        .iter()
        .map(|f| (f.dest.clone(), f.src.clone()))
        .collect()
}

/// The text of the node's file installed at `dest`.
pub fn read_dest(out: &Path, node: &Node, dest: &str) -> String {
    std::fs::read_to_string(testkit::node_file(out, node, dest)).unwrap()
}

pub fn services(node: &Node) -> Vec<String> {
    node.services.clone()
}

/// Writes `doc` to `dir/name` as a tool would read it; returns the path.
pub fn write_document(dir: &Path, name: &str, doc: &Document) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string(doc).unwrap()).unwrap();
    path
}

/// Every program a unit's ExecStart/ExecStartPre lines run (the `-` prefix removed).
pub fn exec_programs(unit: &str) -> Vec<String> {
    unit.lines()
        .filter_map(|l| {
            l.strip_prefix("ExecStart=")
                .or_else(|| l.strip_prefix("ExecStartPre="))
        })
        .map(|rest| {
            rest.split_whitespace()
                .next()
                .unwrap()
                .trim_start_matches('-')
                .to_string()
        })
        .collect()
}

/// The ExecStart command line of a unit, continuations folded, split into words.
pub fn exec_start(unit: &str) -> Vec<String> {
    let folded = unit.replace("\\\n", " ");
    let line = folded
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("an ExecStart line");
    line.split_whitespace().map(str::to_string).collect()
}

/// A fixture with its `cluster` changed by `edit` (fields set as mkcluster would have written
/// them), in a file of its own; returns (dir guard, path).
pub fn variant(
    fixture_name: &str,
    edit: impl FnOnce(&mut Cluster),
) -> (tempfile::TempDir, PathBuf) {
    let mut doc = testkit::fixture_document(fixture_name);
    edit(&mut doc.cluster);
    let tmp = tempfile::tempdir().unwrap();
    let path = write_document(tmp.path(), fixture_name, &doc);
    (tmp, path)
}

/// Renders a [`variant`] into a fresh directory; returns (dir guard, out dir, document).
pub fn render_variant(
    fixture_name: &str,
    edit: impl FnOnce(&mut Cluster),
    extra: &[&str],
) -> (tempfile::TempDir, PathBuf, Document) {
    let (tmp, input) = variant(fixture_name, edit);
    let bin = bin_dir();
    let out = tmp.path().join("out");
    let run = mkunits(&input, &out, bin.path(), extra);
    (tmp, out, run.doc)
}

/// The TOML file at `dest` on the node, parsed by the `toml` crate.
pub fn read_toml(out: &Path, node: &Node, dest: &str) -> toml::Table {
    let text = read_dest(out, node, dest);
    text.parse::<toml::Table>()
        .unwrap_or_else(|e| panic!("{dest} is not TOML: {e}\n{text}"))
}
