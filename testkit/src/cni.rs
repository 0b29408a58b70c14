//! Debian's CNI plugins (containernetworking-plugins, /usr/lib/cni) run as a container runtime
//! runs them: a conflist's plugins in order, each given the previous one's result, inside a
//! node's network namespace, against a pod's.

use std::path::Path;
use std::process::Stdio;

use serde_json::{json, Value};

use crate::netns::Netns;

/// Where Debian installs the plugins.
pub const PLUGIN_DIR: &str = "/usr/lib/cni";

/// Runs one CNI plugin: `conf` on stdin, CNI_* in the environment, inside `ns` (the node), for
/// the pod namespace at `netns_path`. Returns the plugin's result (`Null` when it prints none).
pub fn plugin(ns: &Netns, command: &str, conf: &Value, netns_path: &str, id: &str) -> Value {
    let path = format!("{PLUGIN_DIR}/{}", conf["type"].as_str().unwrap());
    assert!(
        Path::new(&path).is_file(),
        "{path} is missing: install Debian's containernetworking-plugins (scripts/deps.sh does)"
    );
    let ifname = if conf["type"] == "loopback" {
        "lo"
    } else {
        "eth0"
    };
    let mut child = ns
        .command(&path)
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", id)
        .env("CNI_NETNS", netns_path)
        .env("CNI_IFNAME", ifname)
        .env("CNI_PATH", PLUGIN_DIR)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(conf.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "CNI {command} {path}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.stdout.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

/// The plugins of a conflist run in order (reversed for DEL), each given the previous one's
/// result, as libcni runs them; host-local keeps its leases in `data_dir` instead of
/// /var/lib/cni. Returns the last ADD result.
pub fn conflist(
    ns: &Netns,
    command: &str,
    list: &Value,
    netns_path: &str,
    id: &str,
    data_dir: &Path,
    prev: Option<&Value>,
) -> Value {
    let mut plugins: Vec<Value> = list["plugins"].as_array().unwrap().clone();
    if command == "DEL" {
        plugins.reverse();
    }
    let mut result = prev.cloned().unwrap_or(Value::Null);
    for mut conf in plugins {
        conf["cniVersion"] = list["cniVersion"].clone();
        conf["name"] = list["name"].clone();
        if conf.get("ipam").is_some() {
            conf["ipam"]["dataDir"] = json!(data_dir.display().to_string());
        }
        if !result.is_null() {
            conf["prevResult"] = result.clone();
        }
        let out = plugin(ns, command, &conf, netns_path, id);
        if command == "ADD" {
            result = out;
        }
    }
    result
}
