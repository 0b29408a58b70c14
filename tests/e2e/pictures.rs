//! The pictures of the plan (`cidr-alloc -o dot`, `-o dot-routes`, `route-sync --dry-run -o
//! dot`) through Debian's Graphviz: for every example inventory, and its dual-stack and flannel
//! variants, `dot -Tsvg` accepts both pictures; the SVG's text holds every node name, address
//! and pod CIDR; the routes picture has one `route` arrow per route route-sync keeps at each
//! viewpoint (the real route-sync binary, one run per viewpoint); and the 9-node layout has no
//! two nodes overlapping (`dot -Tjson` positions and sizes). Also: the committed README
//! pictures under docs/ are what `make pictures` makes now.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use hardway::Document;
use serde::Deserialize;

/// One inventory and the mkcluster arguments that make its document.
struct Case {
    name: String,
    mkcluster: Vec<String>,
}

fn cases() -> Vec<Case> {
    let root = testkit::workspace_root();
    let mut examples: Vec<PathBuf> = std::fs::read_dir(root.join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    examples.sort();
    let mut cases: Vec<Case> = examples
        .iter()
        .map(|csv| Case {
            name: csv.file_stem().unwrap().to_string_lossy().into_owned(),
            mkcluster: testkit::example_args(csv),
        })
        .collect();
    let with = |csv: &str, extra: &[&str]| {
        let mut args = testkit::example_args(&root.join(csv));
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    cases.push(Case {
        name: "ebook-dual-stack".into(),
        mkcluster: with(
            "examples/ebook-9node.csv",
            &[
                "--node-network",
                "10.240.0.0/24",
                "--node-network",
                "fd00:10:240::/64",
                "--pod-network",
                "10.200.0.0/16",
                "--pod-network",
                "fd00:10:200::/56",
                "--service-network",
                "10.32.0.0/24",
                "--service-network",
                "fd00:10:32::/112",
            ],
        ),
    });
    cases.push(Case {
        name: "lab-flannel".into(),
        mkcluster: with("examples/lab.csv", &["--pod-routing", "flannel"]),
    });
    cases
}

/// Runs `program args` (a workspace binary or Graphviz) with `input` on stdin; panics with its
/// stderr unless it exits 0 with nothing on stderr (dot warns there about what it drew badly).
fn run(program: &Path, args: &[&str], input: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new(program)
        .args(args)
        .current_dir(testkit::workspace_root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (scripts/deps.sh installs graphviz)",
                program.display()
            )
        });
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.is_empty(),
        "{} {args:?}: {stderr}",
        program.display()
    );
    out.stdout
}

fn dot(format: &str, picture: &[u8]) -> Vec<u8> {
    run(Path::new("dot"), &[format], picture)
}

/// The document a case's inventory gives.
fn document(case: &Case) -> Vec<u8> {
    let args: Vec<&str> = case.mkcluster.iter().map(String::as_str).collect();
    let inventory = run(&testkit::bin("mkcluster"), &args, b"");
    run(&testkit::bin("cidr-alloc"), &[], &inventory)
}

/// Every piece of text an SVG draws.
fn svg_texts(svg: &[u8]) -> BTreeSet<String> {
    let text = std::str::from_utf8(svg).unwrap();
    // dot -Tsvg starts with the SVG 1.1 DOCTYPE, which roxmltree reads only when allowed.
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let tree = roxmltree::Document::parse_with_options(text, options).unwrap();
    tree.descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text().map(|t| t.trim().to_string()))
        .collect()
}

/// The parts of `dot -Tjson` the checks read.
#[derive(Deserialize)]
struct Layout {
    #[serde(default)]
    objects: Vec<Object>,
    #[serde(default)]
    edges: Vec<Edge>,
}

#[derive(Deserialize)]
struct Object {
    name: String,
    /// Set on subgraphs only: the nodes they hold.
    nodes: Option<Vec<usize>>,
    pos: Option<String>,
    width: Option<String>,
    height: Option<String>,
}

#[derive(Deserialize)]
struct Edge {
    tail: usize,
    class: Option<String>,
    label: Option<String>,
}

fn layout(picture: &[u8]) -> Layout {
    serde_json::from_slice(&dot("-Tjson", picture)).unwrap()
}

/// The `route` arrows of a picture as (viewpoint node, label), e.g. ("node/worker1",
/// "10.200.1.0/24 via 10.240.0.32").
fn route_arrows(layout: &Layout) -> Vec<(String, String)> {
    let mut arrows: Vec<(String, String)> = layout
        .edges
        .iter()
        .filter(|e| e.class.as_deref() == Some("route"))
        .map(|e| {
            (
                layout.objects[e.tail].name.clone(),
                e.label.clone().unwrap_or_default(),
            )
        })
        .collect();
    arrows.sort();
    arrows
}

#[test]
fn pictures_of_every_example_hold_the_whole_plan() {
    let cidr_alloc = testkit::bin("cidr-alloc");
    for case in cases() {
        let doc_json = document(&case);
        let doc: Document = serde_json::from_slice(&doc_json).unwrap();
        let infra = run(&cidr_alloc, &["-o", "dot"], &doc_json);
        let routes = run(&cidr_alloc, &["-o", "dot-routes"], &doc_json);
        assert_eq!(
            infra,
            run(&cidr_alloc, &["-o", "dot"], &doc_json),
            "{}: not deterministic",
            case.name
        );
        let (infra_texts, routes_texts) = (
            svg_texts(&dot("-Tsvg", &infra)),
            svg_texts(&dot("-Tsvg", &routes)),
        );
        for node in &doc.nodes {
            let mut wanted = vec![node.name.clone()];
            wanted.extend(node.ips.iter().map(ToString::to_string));
            for texts in [&infra_texts, &routes_texts] {
                for text in &wanted {
                    assert!(
                        texts.contains(text),
                        "{}: {text} missing from a picture: {texts:?}",
                        case.name
                    );
                }
            }
            for cidr in &node.pod_cidrs {
                assert!(
                    infra_texts.contains(&format!("pods {cidr}")),
                    "{}: {cidr} not in the infrastructure",
                    case.name
                );
                assert!(
                    routes_texts.contains(&cidr.to_string()),
                    "{}: {cidr} not in the routes",
                    case.name
                );
            }
        }
        if let Some(ips) = &doc.cluster.service_ips {
            let kubernetes = ips
                .kubernetes
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            assert!(
                infra_texts.contains(&format!("kubernetes {kubernetes}")),
                "{}: {infra_texts:?}",
                case.name
            );
        }
        assert_routes_match_route_sync(&case, &doc, &doc_json, &layout(&routes));
    }
}

/// The cidr-alloc routes picture has exactly the arrows that `route-sync --dry-run -o dot` draws
/// at each viewpoint, and each of those has one arrow per pod CIDR it routes.
fn assert_routes_match_route_sync(case: &Case, doc: &Document, doc_json: &[u8], all: &Layout) {
    let route_sync = testkit::bin("route-sync");
    let mut from_route_sync = Vec::new();
    let mut views: Vec<Vec<&str>> = vec![vec!["--host"]];
    views.extend(doc.nodes.iter().map(|n| vec!["--node", n.name.as_str()]));
    for view in views {
        let mut args = view.clone();
        args.extend(["--dry-run", "-o", "dot"]);
        let arrows = route_arrows(&layout(&run(&route_sync, &args, doc_json)));
        let own = doc
            .nodes
            .iter()
            .find(|n| Some(&n.name.as_str()) == view.get(1))
            .map_or(0, |n| n.pod_cidrs.len());
        let pod_cidrs: usize = doc.nodes.iter().map(|n| n.pod_cidrs.len()).sum();
        assert_eq!(
            arrows.len(),
            pod_cidrs - own,
            "{} {view:?}: {arrows:?}",
            case.name
        );
        from_route_sync.extend(arrows);
    }
    from_route_sync.sort();
    assert_eq!(route_arrows(all), from_route_sync, "{}", case.name);
}

/// Pairwise: no two node boxes of a laid-out picture overlap (sizes in inches, positions in
/// points, as `dot -Tjson` gives them).
fn assert_no_overlap(what: &str, layout: &Layout) {
    let boxes: Vec<(&str, [f64; 4])> = layout
        .objects
        .iter()
        .filter(|o| o.nodes.is_none())
        .map(|o| {
            let num = |s: &Option<String>| s.as_deref().unwrap().parse::<f64>().unwrap();
            let (x, y) = o.pos.as_deref().unwrap().split_once(',').unwrap();
            let (x, y): (f64, f64) = (x.parse().unwrap(), y.parse().unwrap());
            let (w, h) = (num(&o.width) * 72.0 / 2.0, num(&o.height) * 72.0 / 2.0);
            (o.name.as_str(), [x - w, y - h, x + w, y + h])
        })
        .collect();
    assert!(boxes.len() > 9, "{what}: {} nodes laid out", boxes.len());
    for (i, (a, p)) in boxes.iter().enumerate() {
        for (b, q) in &boxes[i + 1..] {
            let apart = p[2] <= q[0] || q[2] <= p[0] || p[3] <= q[1] || q[3] <= p[1];
            assert!(apart, "{what}: {a} {p:?} overlaps {b} {q:?}");
        }
    }
}

#[test]
fn nine_node_pictures_have_no_overlapping_nodes() {
    let case = cases()
        .into_iter()
        .find(|c| c.name == "ebook-9node")
        .unwrap();
    let doc_json = document(&case);
    let cidr_alloc = testkit::bin("cidr-alloc");
    for output in ["dot", "dot-routes"] {
        let picture = run(&cidr_alloc, &["-o", output], &doc_json);
        assert_no_overlap(output, &layout(&picture));
    }
}

/// docs/ebook-9node.svg and docs/ebook-9node-routes.svg are what scripts/pictures.sh draws now
/// (`make pictures`). Byte for byte: `dot -Tsvg` is deterministic for one input and Graphviz
/// version, and CI installs the same Debian graphviz as the machine that made them; on another
/// version, run `make pictures` and commit.
#[test]
fn readme_pictures_are_current() {
    let root = testkit::workspace_root();
    let out = tempfile::tempdir().unwrap();
    let status = Command::new("bash")
        .arg(root.join("scripts/pictures.sh"))
        .arg("docs")
        .arg(out.path())
        .env("HARDWAY_BIN", testkit::target_dir())
        .status()
        .unwrap();
    assert!(status.success(), "scripts/pictures.sh failed");
    for name in ["ebook-9node.svg", "ebook-9node-routes.svg"] {
        let committed = std::fs::read(root.join("docs").join(name)).unwrap();
        let fresh = std::fs::read(out.path().join(name)).unwrap();
        assert!(
            committed == fresh,
            "docs/{name} is stale: run `make pictures` and commit it"
        );
    }
}

/// Strings the document does not validate (the libvirt network, URI and host are mkvm's to
/// check) reach the picture escaped: dot reads it without a warning and draws them verbatim.
#[test]
fn hostile_strings_are_drawn_verbatim() {
    let case = cases().into_iter().find(|c| c.name == "lab").unwrap();
    let mut doc: serde_json::Value = serde_json::from_slice(&document(&case)).unwrap();
    let network = r#"net"] evil [label="x\N<b>&amp;'"#;
    let uri = r#"qemu+ssh://h"o\st/system?<i>"#;
    doc["hypervisor"]["network"] = network.into();
    doc["hypervisor"]["uri"] = uri.into();
    doc["nodes"][0]["host"] = r#"other"\host"#.into();
    let doc_json = serde_json::to_vec(&doc).unwrap();
    let cidr_alloc = testkit::bin("cidr-alloc");
    let infra = svg_texts(&dot("-Tsvg", &run(&cidr_alloc, &["-o", "dot"], &doc_json)));
    let routes = svg_texts(&dot(
        "-Tsvg",
        &run(&cidr_alloc, &["-o", "dot-routes"], &doc_json),
    ));
    assert!(infra.contains(network), "{infra:?}");
    assert!(
        infra.contains(uri) && routes.contains(uri),
        "{infra:?} {routes:?}"
    );
    assert!(infra.contains(r#"other"\host"#), "{infra:?}");
}

/// `-o dot` on route-sync draws a plan: without --dry-run, or for a node the document lacks,
/// it fails like every tool (exit 2, one line, nothing on stdout).
#[test]
fn route_sync_dot_needs_dry_run_and_a_known_node() {
    let case = cases().into_iter().find(|c| c.name == "lab").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.json");
    std::fs::write(&path, document(&case)).unwrap();
    let route_sync = |args: &[&str]| {
        Command::new(testkit::bin("route-sync"))
            .args(args)
            .arg("-f")
            .arg(&path)
            .output()
            .unwrap()
    };
    let line =
        testkit::assert_one_line_error(&route_sync(&["--host", "-o", "dot"]), "route-sync", 2);
    assert!(line.contains("--dry-run"), "{line}");
    let line = testkit::assert_one_line_error(
        &route_sync(&["--node", "nope", "--dry-run", "-o", "dot"]),
        "route-sync",
        2,
    );
    assert!(line.contains("nope"), "{line}");
}
