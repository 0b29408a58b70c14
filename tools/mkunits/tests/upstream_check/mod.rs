//! Checks rendered units and configuration files against upstream's list of flags and config
//! fields for one Kubernetes release (data/k8s/v1.MINOR/, see its headers and the README's
//! "Checked against upstream"). Used by tests/upstream.rs; nothing here runs a Kubernetes binary.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The components whose units' ExecStart flags are checked, by program name.
pub const COMPONENTS: [&str; 5] = [
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kube-proxy",
];

/// The configuration kinds whose fields are checked.
pub const KINDS: [&str; 4] = [
    "KubeletConfiguration",
    "KubeProxyConfiguration",
    "KubeSchedulerConfiguration",
    "EncryptionConfiguration",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Deprecated,
    Removed,
}

/// One data file: every name the release has, with its status.
#[derive(Debug, Default)]
pub struct Catalog {
    pub entries: BTreeMap<String, Status>,
    pub api_version: Option<String>,
}

impl Catalog {
    /// Parses `NAME STATUS [# NOTE]` lines; `#` lines are comments, `@apiVersion X` names the
    /// apiVersion. Panics naming file:line on anything else, so a broken data file fails loudly.
    pub fn parse(text: &str, origin: &str) -> Catalog {
        let mut catalog = Catalog::default();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.split(" #").next().unwrap().trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            let at = format!("{origin}:{}", n + 1);
            match words.as_slice() {
                ["@apiVersion", api] => catalog.api_version = Some(api.to_string()),
                [name, status] => {
                    let status = match *status {
                        "ok" => Status::Ok,
                        "deprecated" => Status::Deprecated,
                        "removed" => Status::Removed,
                        other => panic!("{at}: status {other:?} is not ok, deprecated or removed"),
                    };
                    assert!(
                        catalog.entries.insert(name.to_string(), status).is_none(),
                        "{at}: {name} listed twice"
                    );
                }
                _ => panic!("{at}: expected `NAME STATUS`, got {raw:?}"),
            }
        }
        catalog
    }

    /// The status of a flag name or a dotted field path, `None` if the release has no such name.
    /// A path that only leads to listed fields (`authentication.x509`) is Ok; `X.*` covers
    /// everything under X.
    pub fn status(&self, path: &str) -> Option<Status> {
        if let Some(status) = self.entries.get(path) {
            return Some(*status);
        }
        let mut intermediate = false;
        for (name, status) in &self.entries {
            if let Some(map) = name.strip_suffix(".*") {
                if path.starts_with(&format!("{map}.")) {
                    return Some(*status);
                }
            }
            if name.starts_with(&format!("{path}.")) {
                intermediate = true;
            }
        }
        intermediate.then_some(Status::Ok)
    }

    /// The listed name that differs from `path` only in case (`clusterDns` → `clusterDNS`).
    fn case_insensitive(&self, path: &str) -> Option<String> {
        let lower = path.to_lowercase();
        self.entries
            .keys()
            .flat_map(|name| {
                let parts: Vec<&str> = name.split('.').collect();
                (1..=parts.len()).map(move |n| parts[..n].join("."))
            })
            .find(|candidate| candidate.to_lowercase() == lower)
    }
}

/// Everything known about one release: data/k8s/v1.MINOR/*.flags and *.fields.
pub struct Release {
    pub name: String,
    pub flags: BTreeMap<String, Catalog>,
    pub fields: BTreeMap<String, Catalog>,
}

pub fn data_dir() -> PathBuf {
    testkit::workspace_root().join("data/k8s")
}

impl Release {
    /// Loads `data/k8s/v1.MINOR/`; panics if a component or kind has no file there.
    pub fn load(minor: u32) -> Release {
        let name = format!("v1.{minor}");
        let dir = data_dir().join(&name);
        let read = |file: String| {
            let path = dir.join(&file);
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (every supported release needs its data)",
                    path.display()
                )
            });
            Catalog::parse(&text, &path.display().to_string())
        };
        Release {
            flags: COMPONENTS
                .iter()
                .map(|c| (c.to_string(), read(format!("{c}.flags"))))
                .collect(),
            fields: KINDS
                .iter()
                .map(|k| (k.to_string(), read(format!("{k}.fields"))))
                .collect(),
            name,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The release has no such flag or field.
    Unknown,
    Deprecated,
    Removed,
    /// Upstream spells it differently (JSON field names are case-sensitive).
    Case {
        upstream: String,
    },
    WrongApiVersion {
        upstream: String,
        found: String,
    },
    /// An ExecStart argument of a Kubernetes component that is not `--flag[=value]`.
    NotAFlag,
}

/// One thing a rendered file uses that the release does not accept as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub file: String,
    /// `kubelet --pod-infra-container-image` or `KubeletConfiguration clusterDns`.
    pub what: String,
    pub problem: Problem,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} ", self.file, self.what)?;
        match &self.problem {
            Problem::Unknown => write!(f, "does not exist in this release"),
            Problem::Deprecated => write!(f, "is deprecated"),
            Problem::Removed => write!(f, "was removed"),
            Problem::Case { upstream } => write!(f, "is spelled {upstream} upstream"),
            Problem::WrongApiVersion { upstream, found } => {
                write!(f, "has apiVersion {found}, upstream {upstream}")
            }
            Problem::NotAFlag => write!(f, "is not a --flag"),
        }
    }
}

fn judge(catalog: &Catalog, path: &str) -> Option<Problem> {
    match catalog.status(path) {
        Some(Status::Ok) => None,
        Some(Status::Deprecated) => Some(Problem::Deprecated),
        Some(Status::Removed) => Some(Problem::Removed),
        None => Some(match catalog.case_insensitive(path) {
            Some(upstream) => Problem::Case { upstream },
            None => Problem::Unknown,
        }),
    }
}

/// The component a unit runs and its ExecStart arguments, continuations folded; `None` for
/// units of other programs.
pub fn component_exec(unit: &str) -> Option<(&'static str, Vec<String>)> {
    let folded = unit.replace("\\\n", " ");
    let line = folded.lines().find_map(|l| l.strip_prefix("ExecStart="))?;
    let mut words = line.split_whitespace();
    let program = words.next()?.trim_start_matches(['-', '@', '+', '!']);
    let base = program.rsplit('/').next().unwrap();
    let component = COMPONENTS.into_iter().find(|c| *c == base)?;
    Some((component, words.map(str::to_string).collect()))
}

/// The findings for one systemd unit's ExecStart flags.
pub fn check_unit(release: &Release, unit: &str, file: &str) -> Vec<Finding> {
    let Some((component, args)) = component_exec(unit) else {
        return Vec::new();
    };
    let catalog = &release.flags[component];
    args.iter()
        .filter_map(|arg| {
            let (what, problem) = match arg.strip_prefix("--") {
                Some(flag) => {
                    let name = flag.split('=').next().unwrap();
                    (format!("{component} --{name}"), judge(catalog, name)?)
                }
                None => (format!("{component} {arg}"), Problem::NotAFlag),
            };
            Some(Finding {
                file: file.to_string(),
                what,
                problem,
            })
        })
        .collect()
}

/// Every dotted path in a YAML document; list elements share their list's path.
pub fn field_paths(value: &serde_yaml_ng::Value, prefix: &str, out: &mut Vec<String>) {
    match value {
        serde_yaml_ng::Value::Mapping(map) => {
            for (key, child) in map {
                let key = match key {
                    serde_yaml_ng::Value::String(s) => s.clone(),
                    other => serde_yaml_ng::to_string(other).unwrap().trim().to_string(),
                };
                let path = if prefix.is_empty() {
                    key
                } else {
                    format!("{prefix}.{key}")
                };
                out.push(path.clone());
                field_paths(child, &path, out);
            }
        }
        serde_yaml_ng::Value::Sequence(items) => {
            for item in items {
                field_paths(item, prefix, out);
            }
        }
        _ => {}
    }
}

/// The kind of a YAML file if it is one of [`KINDS`], with the parsed document.
pub fn config_kind(text: &str) -> Option<(&'static str, serde_yaml_ng::Value)> {
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).ok()?;
    let kind = doc.get("kind")?.as_str()?;
    let kind = KINDS.into_iter().find(|k| *k == kind)?;
    Some((kind, doc))
}

/// The findings for one configuration file (none for YAML of other kinds).
pub fn check_config(release: &Release, text: &str, file: &str) -> Vec<Finding> {
    let Some((kind, doc)) = config_kind(text) else {
        return Vec::new();
    };
    let catalog = &release.fields[kind];
    let mut findings = Vec::new();
    let found = doc
        .get("apiVersion")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string();
    if let Some(upstream) = &catalog.api_version {
        if *upstream != found {
            findings.push(Finding {
                file: file.to_string(),
                what: format!("{kind} apiVersion"),
                problem: Problem::WrongApiVersion {
                    upstream: upstream.clone(),
                    found,
                },
            });
        }
    }
    let mut paths = Vec::new();
    field_paths(&doc, "", &mut paths);
    for path in paths {
        if let Some(problem) = judge(catalog, &path) {
            findings.push(Finding {
                file: file.to_string(),
                what: format!("{kind} {path}"),
                problem,
            });
        }
    }
    findings
}

/// What checking a whole output directory found, and how much it looked at.
#[derive(Debug, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
    /// Units checked per component, configuration files checked per kind.
    pub checked: BTreeMap<&'static str, usize>,
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Checks every `*.service` and `*.yaml` file mkcerts and mkunits wrote under `out`.
pub fn check_tree(release: &Release, out: &Path) -> Report {
    let mut files = Vec::new();
    files_under(out, &mut files);
    files.sort();
    let mut report = Report::default();
    for path in files {
        let name = path.strip_prefix(out).unwrap().display().to_string();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if ext == "service" {
            let unit = std::fs::read_to_string(&path).unwrap();
            if let Some((component, _)) = component_exec(&unit) {
                *report.checked.entry(component).or_default() += 1;
                report.findings.extend(check_unit(release, &unit, &name));
            }
        } else if ext == "yaml" || ext == "yml" {
            let text = std::fs::read_to_string(&path).unwrap();
            if let Some((kind, _)) = config_kind(&text) {
                *report.checked.entry(kind).or_default() += 1;
                report.findings.extend(check_config(release, &text, &name));
            }
        }
    }
    report
}
