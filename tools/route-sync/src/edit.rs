//! `--watch`'s quick read: the new document as an edit of one node of the last good one.
//!
//! A node's move rewrites a few bytes of one node's object, yet a full read parses and checks
//! all 10,000 nodes again (about 6 ms) for the same routes but one node's. [`Kept`] keeps the
//! last good document's text, each node's byte span in it, the names and pod CIDRs every node
//! holds, and the routes wanted. When the new text differs from the kept one only inside one
//! node's span (their common prefix and suffix say where), the new document is the kept one
//! with that node's JSON object replaced by another: if the new bytes there parse, alone, as one
//! node, the document parses too, and to the same view but that node. So only that node is
//! parsed and checked — its name a DNS label no other node has, each pod CIDR a pod range of
//! the same networks, a network address no other node has, with a node address of its family
//! ([`plan::node_wants`]) — and its routes replace its old ones.
//!
//! Anything else (a change outside the nodes, in two of them, a node added or removed, a
//! document that lists hypervisors: `hardway::doc` checks those over the whole document) and
//! any check that fails is left to the full read, which gives the same routes or the error the tool
//! always gave, at its JSON path: the quick read only ever says "same as a full read" or "ask a
//! full read".

use std::ops::Range;

use foldhash::{HashMap, HashMapExt};
use ipnet::IpNet;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::document::{Cluster, Document, Node, PodRanges};
use crate::error::Error;
use crate::plan::{self, Scope, Want};

/// The last good document, kept to read the next one as an edit of it.
#[derive(Debug)]
pub struct Kept {
    text: String,
    /// Each node's JSON object in `text`, `{` to `}`; empty when they could not be found, or
    /// the document lists hypervisors (then every read is a full one).
    spans: Vec<Range<usize>>,
    /// Node name → index.
    names: HashMap<String, usize>,
    /// Pod CIDR → index of the node that has it.
    cidrs: HashMap<IpNet, usize>,
    /// The document's version and networks, with no nodes (and no hypervisors).
    frame: Document<'static>,
    /// The routes the document asks for, sorted by destination, as [`plan::wanted`] gives them.
    pub wants: Vec<Want>,
}

/// Just where each node's object lies in the text (the other fields are skipped).
#[derive(Deserialize)]
struct NodeTexts<'a> {
    #[serde(default, borrow)]
    nodes: Vec<&'a RawValue>,
}

impl Kept {
    /// The full read: parses and checks the whole document (`known` as in
    /// [`Document::parse_knowing`]) and finds each node's span for the next quick read.
    pub fn read(
        text: String,
        source: &str,
        scope: &Scope,
        known: &mut PodRanges,
    ) -> Result<Kept, Error> {
        let document = {
            let _span = crate::timing::span("parse");
            Document::parse_knowing(&text, source, known)?
        };
        let wants = plan::wanted(&document, scope)?;
        let names = document.nodes.iter().enumerate();
        let names = names.map(|(i, n)| (n.name.to_string(), i)).collect();
        let mut cidrs = HashMap::with_capacity(wants.len());
        for (i, node) in document.nodes.iter().enumerate() {
            cidrs.extend(node.pod_cidrs.iter().map(|c| (*c, i)));
        }
        let frame = Document {
            version: document.version,
            cluster: Cluster {
                networks: document.cluster.networks.clone(),
            },
            nodes: Vec::new(),
            hypervisors: Vec::new(),
        };
        let spans = match document.hypervisors.is_empty() {
            true => node_spans(&text, document.nodes.len()),
            false => Vec::new(),
        };
        Ok(Kept {
            text,
            spans,
            names,
            cidrs,
            frame,
            wants,
        })
    }

    /// The quick read of `new`: `Ok` when it is this document with one node edited (or the
    /// same text), and the routes are now the new document's; else `Err(new)`, unchanged, for
    /// the full read.
    pub fn apply_edit(&mut self, new: String, scope: &Scope) -> Result<(), String> {
        if new == self.text {
            return Ok(());
        }
        let Some((k, span)) = self.edited_node(&new) else {
            return Err(new);
        };
        let old = &self.text[self.spans[k].clone()];
        let (Ok(old), Ok(node)) = (
            serde_json::from_str::<Node>(old),
            serde_json::from_str::<Node>(&new[span.clone()]),
        ) else {
            return Err(new);
        };
        let Some(wants) = self.node_checked(k, &old, &node, scope) else {
            return Err(new);
        };
        let (old_name, old_cidrs) = (old.name.into_owned(), old.pod_cidrs);
        let name = node.name.to_string();
        self.wants.retain(|w| w.node.as_deref() != Some(&old_name));
        for want in wants {
            let at = self.wants.partition_point(|w| w.dst < want.dst);
            self.wants.insert(at, want);
        }
        self.names.remove(&old_name);
        self.names.insert(name, k);
        for cidr in &old_cidrs {
            self.cidrs.remove(cidr);
        }
        self.cidrs.extend(node.pod_cidrs.iter().map(|c| (*c, k)));
        // The spans after node k move by the change in length.
        let (old_end, new_end) = (self.spans[k].end, span.end);
        self.spans[k].end = new_end;
        for s in &mut self.spans[k + 1..] {
            *s = s.start + new_end - old_end..s.end + new_end - old_end;
        }
        self.text = new;
        Ok(())
    }

    /// The node whose span holds every byte that differs between the kept text and `new`, and
    /// its span in `new`; `None` if there is none, or the new bytes there are not `{`…`}`.
    fn edited_node(&self, new: &str) -> Option<(usize, Range<usize>)> {
        let (old, new_bytes) = (self.text.as_bytes(), new.as_bytes());
        let prefix = common_prefix(old, new_bytes);
        let suffix = common_suffix(old, new_bytes).min(old.len().min(new.len()) - prefix);
        let k = self
            .spans
            .partition_point(|s| s.start <= prefix)
            .checked_sub(1)?;
        let span = &self.spans[k];
        if old.len() - suffix > span.end {
            return None;
        }
        // new[..start] is old[..start], and new[end..] is old[span.end..].
        let end = span.end + new.len() - old.len();
        let text = new.get(span.start..end)?;
        (text.starts_with('{') && text.ends_with('}')).then_some((k, span.start..end))
    }

    /// The routes of `node`, node `k` edited from `old`, if it passes every check a full read
    /// makes of it (alone and against the other nodes); `None` sends the text to the full read.
    fn node_checked(&self, k: usize, old: &Node, node: &Node, scope: &Scope) -> Option<Vec<Want>> {
        hardway::validate::node_name(&node.name).ok()?;
        if self.names.get(node.name.as_ref()).is_some_and(|&i| i != k) {
            return None;
        }
        // `--node NAME` names this node before the edit and not after, or the other way round.
        if let Scope::Node(me) = scope {
            if (*me == old.name) != (*me == node.name) {
                return None;
            }
        }
        let n = &self.frame.cluster.networks;
        for (j, cidr) in node.pod_cidrs.iter().enumerate() {
            hardway::validate::pod_range(cidr, &n.node, &n.service).ok()?;
            let elsewhere = self.cidrs.get(cidr).is_some_and(|&i| i != k);
            if elsewhere || node.pod_cidrs[..j].contains(cidr) {
                return None;
            }
        }
        let mut wants = Vec::with_capacity(node.pod_cidrs.len());
        plan::one_machine_node_wants(&self.frame, scope, k, node, &mut wants).ok()?;
        Some(wants)
    }
}

/// Each node's span in `text`, if the document's `nodes` are `nodes` objects; else none.
fn node_spans(text: &str, nodes: usize) -> Vec<Range<usize>> {
    let Ok(found) = serde_json::from_str::<NodeTexts>(text) else {
        return Vec::new();
    };
    let spans: Vec<Range<usize>> = found
        .nodes
        .iter()
        .map(|raw| {
            let start = raw.get().as_ptr() as usize - text.as_ptr() as usize;
            start..start + raw.get().len()
        })
        .collect();
    let objects = spans.iter().all(|s| {
        let t = &text[s.clone()];
        t.starts_with('{') && t.ends_with('}')
    });
    if objects && spans.len() == nodes {
        spans
    } else {
        Vec::new()
    }
}

/// How many bytes `a` and `b` share from the start, compared a block at a time.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    const BLOCK: usize = 256;
    let n = a.len().min(b.len());
    let mut at = 0;
    while at + BLOCK <= n && a[at..at + BLOCK] == b[at..at + BLOCK] {
        at += BLOCK;
    }
    at + a[at..n]
        .iter()
        .zip(&b[at..n])
        .take_while(|(x, y)| x == y)
        .count()
}

/// How many bytes `a` and `b` share at the end.
fn common_suffix(a: &[u8], b: &[u8]) -> usize {
    const BLOCK: usize = 256;
    let n = a.len().min(b.len());
    let (a, b) = (&a[a.len() - n..], &b[b.len() - n..]);
    let mut end = n;
    while end >= BLOCK && a[end - BLOCK..end] == b[end - BLOCK..end] {
        end -= BLOCK;
    }
    let same = a[..end].iter().rev().zip(b[..end].iter().rev());
    n - end + same.take_while(|(x, y)| x == y).count()
}

#[cfg(test)]
mod tests;
