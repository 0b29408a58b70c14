//! One libvirt connection and the few calls mkvm makes on it, through the `virt` crate (libvirt's
//! C API; no virsh). Lookups turn libvirt's "no such object" into `None`; every other error keeps
//! libvirt's message and the URI, for the exit-3 line.

use ipnet::IpNet;
use virt::connect::Connect;
use virt::domain::Domain;
use virt::enumutil::Enum;
use virt::error::ErrorNumber;
use virt::network::Network;
use virt::storage_pool::StoragePool;
use virt::storage_vol::StorageVol;
use virt::stream::Stream;
use virt::sys;

use crate::error::MkvmError;
use crate::{mark, plan};

pub struct Host {
    pub uri: String,
    pub conn: Connect,
}

/// Something this run created, in creation order: what a rollback undoes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    Network {
        uri: String,
        name: String,
    },
    Pool {
        uri: String,
        name: String,
    },
    Volume {
        uri: String,
        pool: String,
        name: String,
    },
    Domain {
        uri: String,
        name: String,
    },
    /// A host entry added to (`added`) or deleted from an existing network.
    NetworkHost {
        uri: String,
        network: String,
        section: u32,
        xml: String,
        added: bool,
    },
}

fn is_missing(e: &virt::error::Error) -> bool {
    matches!(
        e.code(),
        Enum::Known(
            ErrorNumber::NoDomain
                | ErrorNumber::NoNetwork
                | ErrorNumber::NoStoragePool
                | ErrorNumber::NoStorageVolume
        )
    )
}

pub fn is_unsupported(e: &virt::error::Error) -> bool {
    matches!(e.code(), Enum::Known(ErrorNumber::NoSupport))
}

impl Host {
    pub fn open(uri: &str) -> Result<Host, MkvmError> {
        // The one door to libvirt: a URI that could run a program never reaches it, wherever it
        // came from (the document is checked at read time and --connect by clap; this is the
        // last word).
        hardway::uri::libvirt(uri).map_err(|why| MkvmError::preflight("libvirt URI", why))?;
        // libvirt's default handler prints every error, "not found" lookups included, to stderr;
        // mkvm reports the ones that matter itself, once.
        virt::error::clear_error_callback();
        let conn = Connect::open(Some(uri)).map_err(|e| {
            MkvmError::libvirt(
                uri,
                "cannot connect (is libvirtd running? try --connect)",
                &e,
            )
        })?;
        Ok(Host {
            uri: uri.to_string(),
            conn,
        })
    }

    pub fn err(&self, what: impl Into<String>, e: &virt::error::Error) -> MkvmError {
        MkvmError::libvirt(&self.uri, what, e)
    }

    /// True when the hypervisor is this machine (no host in the URI): its bridge's neighbours
    /// are in this kernel's tables.
    pub fn is_local(&self) -> bool {
        self.uri.contains(":///")
    }

    /// True for libvirt's `test://` driver, which keeps no volume contents (no upload).
    pub fn is_test_driver(&self) -> bool {
        self.uri.starts_with("test:")
    }

    pub fn domain(&self, name: &str) -> Result<Option<Domain>, MkvmError> {
        match self.conn.lookup_domain_by_name(name) {
            Ok(d) => Ok(Some(d)),
            Err(e) if is_missing(&e) => Ok(None),
            Err(e) => Err(self.err(format!("looking up domain {name}"), &e)),
        }
    }

    pub fn network(&self, name: &str) -> Result<Option<Network>, MkvmError> {
        match self.conn.lookup_network_by_name(name) {
            Ok(n) => Ok(Some(n)),
            Err(e) if is_missing(&e) => Ok(None),
            Err(e) => Err(self.err(format!("looking up network {name}"), &e)),
        }
    }

    pub fn pool(&self, name: &str) -> Result<Option<StoragePool>, MkvmError> {
        match self.conn.lookup_storage_pool_by_name(name) {
            Ok(p) => Ok(Some(p)),
            Err(e) if is_missing(&e) => Ok(None),
            Err(e) => Err(self.err(format!("looking up pool {name}"), &e)),
        }
    }

    pub fn volume(&self, pool: &StoragePool, name: &str) -> Result<Option<StorageVol>, MkvmError> {
        match pool.lookup_storage_vol_by_name(name) {
            Ok(v) => Ok(Some(v)),
            Err(e) if is_missing(&e) => Ok(None),
            Err(e) => Err(self.err(format!("looking up volume {name}"), &e)),
        }
    }

    pub fn domain_xml(&self, domain: &Domain) -> Result<String, MkvmError> {
        domain
            .xml_desc(0)
            .map_err(|e| self.err("reading domain XML", &e))
    }

    pub fn network_xml(&self, network: &Network) -> Result<String, MkvmError> {
        network
            .xml_desc(0)
            .map_err(|e| self.err("reading network XML", &e))
    }

    /// kvm when the host offers it for x86_64 (domain capabilities, else the capabilities'
    /// guest list), otherwise qemu (TCG).
    pub fn best_domain_type(&self) -> String {
        if let Ok(xml) = self
            .conn
            .domain_capabilities(None, Some("x86_64"), None, Some("kvm"), 0)
        {
            if xml.contains("<domain>kvm</domain>") {
                return "kvm".into();
            }
        }
        if let Ok(caps) = self.conn.capabilities() {
            if let Ok(doc) = roxmltree::Document::parse(&caps) {
                let kvm = doc.descendants().any(|n| {
                    n.has_tag_name("guest")
                        && n.descendants().any(|a| {
                            a.has_tag_name("arch") && a.attribute("name") == Some("x86_64")
                        })
                        && n.descendants()
                            .any(|d| d.has_tag_name("domain") && d.attribute("type") == Some("kvm"))
                });
                if kvm {
                    return "kvm".into();
                }
            }
        }
        "qemu".into()
    }

    /// The ranges of every active network except `except`, with the network's name.
    pub fn other_network_ranges(&self, except: &str) -> Result<Vec<(String, IpNet)>, MkvmError> {
        let networks = self
            .conn
            .list_all_networks(sys::VIR_CONNECT_LIST_NETWORKS_ACTIVE)
            .map_err(|e| self.err("listing networks", &e))?;
        let mut ranges = Vec::new();
        for network in networks {
            let name = network.name().unwrap_or_default();
            if name == except {
                continue;
            }
            let xml = match network.xml_desc(0) {
                Ok(xml) => xml,
                // Removed by another client between the listing and now: nothing to overlap.
                Err(e) if is_missing(&e) => continue,
                Err(e) => return Err(self.err("reading network XML", &e)),
            };
            ranges.extend(
                plan::network_ranges(&xml)
                    .into_iter()
                    .map(|r| (name.clone(), r)),
            );
        }
        Ok(ranges)
    }

    /// Memory the host can give new guests, in MiB. On this machine (a `:///` URI, the libvirtd
    /// sharing this kernel) it is the kernel's MemAvailable: free memory plus the page cache and
    /// slab it can reclaim. libvirt's free memory (virNodeGetFreeMemory) is MemFree alone, which
    /// a full page cache keeps near zero on a machine with plenty to spare. A remote host (and
    /// the test driver) is asked libvirt's free memory, the only figure the `virt` crate exposes.
    pub fn available_memory_mib(&self) -> Result<u64, MkvmError> {
        if self.is_local() && !self.is_test_driver() {
            if let Some(mib) = std::fs::read_to_string("/proc/meminfo")
                .ok()
                .and_then(|text| mem_available_mib(&text))
            {
                return Ok(mib);
            }
        }
        self.conn
            .free_memory()
            .map(|bytes| bytes >> 20)
            .map_err(|e| self.err("reading free memory", &e))
    }

    /// Every domain on the host with mkvm's mark for `cluster`, with the mark.
    pub fn owned_domains(&self, cluster: &str) -> Result<Vec<(Domain, mark::VmMark)>, MkvmError> {
        let domains = self
            .conn
            .list_all_domains(0)
            .map_err(|e| self.err("listing domains", &e))?;
        let mut owned = Vec::new();
        for domain in domains {
            let xml = match domain.xml_desc(0) {
                Ok(xml) => xml,
                // Removed by another client between the listing and now (a shared hypervisor,
                // or parallel tests on test:///default): not one of ours to report.
                Err(e) if is_missing(&e) => continue,
                Err(e) => return Err(self.err("reading domain XML", &e)),
            };
            if let Some(mark) = mark::vm_mark(&xml) {
                if mark.cluster == cluster {
                    owned.push((domain, mark));
                }
            }
        }
        Ok(owned)
    }

    /// Writes `bytes` into a volume over a libvirt stream (works on remote hosts too).
    pub fn upload(&self, volume: &StorageVol, bytes: &[u8]) -> Result<(), MkvmError> {
        let name = volume.name().unwrap_or_default();
        let what = || format!("uploading the seed into volume {name}");
        let stream = Stream::new(&self.conn, 0).map_err(|e| self.err(what(), &e))?;
        volume
            .upload(&stream, 0, bytes.len() as u64, 0)
            .map_err(|e| self.err(what(), &e))?;
        let mut sent = 0;
        while sent < bytes.len() {
            match stream.send(&bytes[sent..]) {
                Ok(n) if n > 0 => sent += n as usize,
                Ok(_) => {
                    let _ = stream.abort();
                    return Err(MkvmError::Libvirt {
                        uri: self.uri.clone(),
                        what: what(),
                        message: "the stream accepted no data".into(),
                        rollback: String::new(),
                    });
                }
                Err(e) => {
                    let err = self.err(what(), &e);
                    let _ = stream.abort();
                    return Err(err);
                }
            }
        }
        stream.finish().map_err(|e| self.err(what(), &e))
    }

    /// Stops (if running) and undefines a domain.
    pub fn remove_domain(&self, domain: &Domain) -> Result<(), MkvmError> {
        let name = domain.name().unwrap_or_default();
        if domain.is_active().unwrap_or(false) {
            domain
                .destroy()
                .map_err(|e| self.err(format!("stopping domain {name}"), &e))?;
        }
        domain
            .undefine()
            .map_err(|e| self.err(format!("undefining domain {name}"), &e))
    }

    /// Deletes a volume of a pool if it exists.
    pub fn remove_volume(&self, pool: &str, name: &str) -> Result<bool, MkvmError> {
        let Some(pool) = self.pool(pool)? else {
            return Ok(false);
        };
        match self.volume(&pool, name)? {
            Some(volume) => volume
                .delete(0)
                .map(|()| true)
                .map_err(|e| self.err(format!("deleting volume {name}"), &e)),
            None => Ok(false),
        }
    }

    pub fn remove_network(&self, network: &Network) -> Result<(), MkvmError> {
        let name = network.name().unwrap_or_default();
        if network.is_active().unwrap_or(false) {
            network
                .destroy()
                .map_err(|e| self.err(format!("stopping network {name}"), &e))?;
        }
        if network.is_persistent().unwrap_or(true) {
            network
                .undefine()
                .map_err(|e| self.err(format!("undefining network {name}"), &e))?;
        }
        Ok(())
    }

    /// Removes a pool mkvm created, if it holds no volume any more; says whether it did.
    pub fn remove_pool_if_empty(&self, name: &str) -> Result<bool, MkvmError> {
        let Some(pool) = self.pool(name)? else {
            return Ok(false);
        };
        if pool.is_active().unwrap_or(false) {
            let _ = pool.refresh(0);
            if pool.num_of_volumes().unwrap_or(1) > 0 {
                return Ok(false);
            }
            pool.destroy()
                .map_err(|e| self.err(format!("stopping pool {name}"), &e))?;
        }
        // A dir pool's delete removes its (empty) directory; the test driver has none to remove.
        if let Err(e) = pool.delete(0) {
            if !is_unsupported(&e) && !self.is_test_driver() {
                return Err(self.err(format!("deleting pool {name}"), &e));
            }
        }
        pool.undefine()
            .map_err(|e| self.err(format!("undefining pool {name}"), &e))?;
        Ok(true)
    }

    /// Stops and undefines a pool without deleting its directory or anything in it.
    fn undefine_pool_keeping_files(&self, name: &str) -> Result<(), MkvmError> {
        let Some(pool) = self.pool(name)? else {
            return Ok(());
        };
        if pool.is_active().unwrap_or(false) {
            pool.destroy()
                .map_err(|e| self.err(format!("stopping pool {name}"), &e))?;
        }
        pool.undefine()
            .map_err(|e| self.err(format!("undefining pool {name}"), &e))
    }

    /// Adds or deletes one DHCP or DNS host entry, live and in the persistent config.
    pub fn update_network_host(
        &self,
        network: &Network,
        section: u32,
        xml: &str,
        add: bool,
    ) -> Result<(), MkvmError> {
        let command = if add {
            sys::VIR_NETWORK_UPDATE_COMMAND_ADD_LAST
        } else {
            sys::VIR_NETWORK_UPDATE_COMMAND_DELETE
        };
        let mut flags = sys::VIR_NETWORK_UPDATE_AFFECT_CONFIG;
        if network.is_active().unwrap_or(false) {
            flags |= sys::VIR_NETWORK_UPDATE_AFFECT_LIVE;
        }
        network
            .update(command, section, -1, xml, flags)
            .map_err(|e| self.err(format!("updating network host entry {xml}"), &e))
    }

    /// Undoes one created object; errors are returned for the rollback report.
    pub fn undo(&self, created: &Created) -> Result<(), MkvmError> {
        match created {
            Created::Domain { name, .. } => match self.domain(name)? {
                Some(domain) => self.remove_domain(&domain),
                None => Ok(()),
            },
            Created::Volume { pool, name, .. } => self.remove_volume(pool, name).map(|_| ()),
            Created::Pool { name, .. } => {
                if self.remove_pool_if_empty(name)? {
                    return Ok(());
                }
                // This run defined the pool over a directory that already held files (a
                // preflight cannot list a pool that does not exist yet): its definition goes,
                // the directory and someone else's files stay.
                self.undefine_pool_keeping_files(name)
            }
            Created::Network { name, .. } => match self.network(name)? {
                Some(network) => self.remove_network(&network),
                None => Ok(()),
            },
            Created::NetworkHost {
                network,
                section,
                xml,
                added,
                ..
            } => match self.network(network)? {
                Some(net) => self.update_network_host(&net, *section, xml, !added),
                None => Ok(()),
            },
        }
    }
}

/// MemAvailable from /proc/meminfo's text, in MiB (the kernel gives kB; proc(5)). None on a
/// kernel before 3.14, which has no such line.
pub fn mem_available_mib(meminfo: &str) -> Option<u64> {
    let line = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kib >> 10)
}

impl Created {
    pub fn uri(&self) -> &str {
        match self {
            Created::Network { uri, .. }
            | Created::Pool { uri, .. }
            | Created::Volume { uri, .. }
            | Created::Domain { uri, .. }
            | Created::NetworkHost { uri, .. } => uri,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Created::Network { name, .. } => format!("network {name}"),
            Created::Pool { name, .. } => format!("pool {name}"),
            Created::Volume { pool, name, .. } => format!("volume {pool}/{name}"),
            Created::Domain { name, .. } => format!("domain {name}"),
            Created::NetworkHost {
                network,
                xml,
                added,
                ..
            } => format!(
                "{} {xml} in network {network}",
                if *added { "added" } else { "deleted" }
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn available_memory_counts_the_page_cache() {
        // This machine's /proc/meminfo as read once today: 610 MiB free (what libvirt calls
        // free), 22.5 GiB available.
        let meminfo = "MemTotal:       32858696 kB\nMemFree:          624668 kB\n\
                       MemAvailable:   23628404 kB\nBuffers:          162740 kB\n\
                       Cached:         22311864 kB\n";
        assert_eq!(mem_available_mib(meminfo), Some(23074));
        assert_eq!(mem_available_mib("MemFree: 624668 kB\n"), None);
        let here = std::fs::read_to_string("/proc/meminfo").unwrap();
        assert!(mem_available_mib(&here).unwrap() > 0, "{here}");
    }
}
