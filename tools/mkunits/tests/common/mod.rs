//! Shared by mkunits' tests: run the binary on a fixture, read what it wrote.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use serde_json::Value;

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
    pub doc: Value,
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
    let doc = serde_json::from_slice(&out.stdout).expect("stdout is a JSON document");
    Run { out, doc }
}

/// Renders `fixture` into a fresh directory; returns (dir guard, out dir, document).
pub fn render(fixture_name: &str, extra: &[&str]) -> (tempfile::TempDir, PathBuf, Value) {
    let tmp = tempfile::tempdir().unwrap();
    let bin = bin_dir();
    let out = tmp.path().join("out");
    let run = mkunits(&fixture(fixture_name), &out, bin.path(), extra);
    (tmp, out, run.doc)
}

pub fn node<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .unwrap_or_else(|| panic!("no node {name}"))
}

/// `(dest, src)` of each of a node's files.
pub fn files(node: &Value) -> Vec<(String, String)> {
    node["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["dest"].as_str().unwrap().to_string(),
                f["src"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The text of the node's file installed at `dest`.
pub fn read_dest(out: &Path, node: &Value, dest: &str) -> String {
    let (_, src) = files(node)
        .into_iter()
        .find(|(d, _)| d == dest)
        .unwrap_or_else(|| panic!("node {} has no file at {dest}", node["name"]));
    std::fs::read_to_string(out.join(src)).unwrap()
}

pub fn services(node: &Value) -> Vec<String> {
    node["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
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

/// A fixture with some `cluster` fields set as mkcluster would have written them, in a file of
/// its own; returns (dir guard, path).
pub fn variant(fixture_name: &str, cluster: &[(&str, Value)]) -> (tempfile::TempDir, PathBuf) {
    let mut doc: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture(fixture_name)).unwrap()).unwrap();
    for (key, value) in cluster {
        doc["cluster"][*key] = value.clone();
    }
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join(fixture_name);
    std::fs::write(&path, doc.to_string()).unwrap();
    (tmp, path)
}

/// Renders a [`variant`] into a fresh directory; returns (dir guard, out dir, document).
pub fn render_variant(
    fixture_name: &str,
    cluster: &[(&str, Value)],
    extra: &[&str],
) -> (tempfile::TempDir, PathBuf, Value) {
    let (tmp, input) = variant(fixture_name, cluster);
    let bin = bin_dir();
    let out = tmp.path().join("out");
    let run = mkunits(&input, &out, bin.path(), extra);
    (tmp, out, run.doc)
}

/// The TOML file at `dest` on the node, parsed by the `toml` crate.
pub fn read_toml(out: &Path, node: &Value, dest: &str) -> toml::Table {
    let text = read_dest(out, node, dest);
    text.parse::<toml::Table>()
        .unwrap_or_else(|e| panic!("{dest} is not TOML: {e}\n{text}"))
}
