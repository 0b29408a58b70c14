//! `mkvm down`: removes what mkvm made for this cluster — the domains carrying its mark (with the
//! volumes the mark names), then the owned network, then the pool if mkvm made it and it is
//! empty. Same-named objects without the mark are left alone, and said so on stderr.

use hardway::doc::Document;

use crate::error::MkvmError;
use crate::hypervisor::Host;
use crate::{log, mark, plan};

/// Removes an owned domain with the volumes its mark lists; returns what it removed. A domain
/// without this cluster's mark is left alone (nothing removed).
pub fn remove_owned_node(host: &Host, cluster: &str, name: &str) -> Result<Vec<String>, MkvmError> {
    let mut removed = Vec::new();
    let Some(domain) = host.domain(name)? else {
        return Ok(removed);
    };
    let Some(mark) = mark::vm_mark(&host.domain_xml(&domain)?) else {
        return Ok(removed);
    };
    if mark.cluster != cluster {
        return Ok(removed);
    }
    host.remove_domain(&domain)?;
    removed.push(format!("domain {name}"));
    for volume in [&mark.overlay, &mark.seed] {
        if !volume.is_empty() && host.remove_volume(&mark.pool, volume)? {
            removed.push(format!("volume {}/{volume}", mark.pool));
        }
    }
    Ok(removed)
}

/// `mkvm down`; with `dry_run` lists what it would remove and changes nothing. Returns the
/// document without the nodes' `vm` sections (unless `dry_run`), and what was removed.
pub fn down(
    mut doc: Document,
    connect: Option<&str>,
    dry_run: bool,
) -> Result<(Document, Vec<String>), MkvmError> {
    // Every host is opened before any is changed: one that does not answer is exit 3 naming
    // it, with the others' objects as they were. Then each is emptied in a thread of its own.
    let hosts = crate::open_hosts(&hypervisors(&doc, connect))?;
    let doc_ref = &doc;
    let per_host: Vec<Result<Vec<String>, MkvmError>> = std::thread::scope(|scope| {
        let threads: Vec<_> = hosts
            .values()
            .map(|host| scope.spawn(move || remove_from(host, doc_ref, dry_run)))
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("a hypervisor's thread panicked"))
            .collect()
    });
    let mut removed = Vec::new();
    for one in per_host {
        removed.extend(one?);
    }
    if !dry_run {
        for node in &mut doc.nodes {
            node.vm = None;
        }
    }
    Ok((doc, removed))
}

/// What `down` removes from one host: its owned domains (with their volumes), then its network.
fn remove_from(host: &Host, doc: &Document, dry_run: bool) -> Result<Vec<String>, MkvmError> {
    let mut emptying = Emptying {
        host,
        doc,
        dry_run,
        removed: Vec::new(),
    };
    emptying.domains()?;
    emptying.network()?;
    Ok(emptying.removed)
}

/// The hypervisors the document's nodes live on, in their order; the default one if none.
fn hypervisors(doc: &Document, connect: Option<&str>) -> Vec<String> {
    let mut uris = plan::node_uris(doc, connect);
    if uris.is_empty() {
        uris.push(plan::default_uri(doc, connect));
    }
    uris
}

/// One host being emptied of this cluster's objects, and what was removed from it (or, with
/// `dry_run`, would be), each as `URI: what`.
struct Emptying<'a> {
    host: &'a Host,
    doc: &'a Document,
    dry_run: bool,
    removed: Vec<String>,
}

impl Emptying<'_> {
    fn record(&mut self, what: String) {
        self.removed.push(format!("{}: {what}", self.host.uri));
    }

    fn left_alone(&self, what: &str) {
        let cluster = &self.doc.cluster.name;
        log(format!(
            "left {what} alone: it is not mkvm's for cluster {cluster}"
        ));
    }

    /// Every domain on the host with this cluster's mark, with its volumes; says which of the
    /// document's names are someone else's domain.
    fn domains(&mut self) -> Result<(), MkvmError> {
        let (host, cluster) = (self.host, &self.doc.cluster.name);
        for (domain, mark) in host.owned_domains(cluster)? {
            let name = domain.name().unwrap_or_default();
            if self.dry_run {
                self.record(format!("domain {name}"));
                for volume in [&mark.overlay, &mark.seed] {
                    self.record(format!("volume {}/{volume}", mark.pool));
                }
                continue;
            }
            for item in remove_owned_node(host, cluster, &name)? {
                log(format!("removed {item}"));
                self.record(item);
            }
        }
        for node in &self.doc.nodes {
            if let Some(domain) = host.domain(&node.name)? {
                if mark::vm_mark(&host.domain_xml(&domain)?).is_none_or(|m| m.cluster != *cluster) {
                    self.left_alone(&format!("domain {}", node.name));
                }
            }
        }
        Ok(())
    }

    /// The owned network, and before it the pool its mark says mkvm made (if empty by now).
    fn network(&mut self) -> Result<(), MkvmError> {
        let host = self.host;
        let name = plan::network_name(self.doc);
        let Some(network) = host.network(&name)? else {
            return Ok(());
        };
        let mark = match mark::network_mark(&host.network_xml(&network)?) {
            Some(mark) if mark.cluster == self.doc.cluster.name => mark,
            _ => {
                self.left_alone(&format!("network {name}"));
                return Ok(());
            }
        };
        // The pool before the network: the network's mark is the only record that mkvm made
        // the pool, so it must outlive a failed pool removal.
        if let Some(pool) = mark.pool_created {
            if self.dry_run {
                self.record(format!("pool {pool} (if empty)"));
            } else if host.remove_pool_if_empty(&pool)? {
                log(format!("removed pool {pool}"));
                self.record(format!("pool {pool}"));
            }
        }
        self.record(format!("network {name}"));
        if !self.dry_run {
            host.remove_network(&network)?;
            log(format!("removed network {name}"));
        }
        Ok(())
    }
}
