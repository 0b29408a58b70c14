//! Slots in a range: host addresses of a node network, or subnets of a pod network.
//!
//! A pool records which slots are taken (and by whom, so a duplicate can be named) in a hash map,
//! and hands out the lowest free slot with a cursor that only moves forward: allocating n values
//! costs O(n + taken), never a scan per value, so 100,000 nodes take milliseconds.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;

/// Who holds a slot, for messages about duplicates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// The network address, the gateway, the broadcast address.
    Reserved(&'static str),
    /// A VIP, named by its JSON path.
    Vip(&'static str),
    /// A node, by index in the document.
    Node(usize),
}

#[derive(Debug)]
pub struct Pool {
    pub net: IpNet,
    /// Address bits of a slot: 0 for host addresses, else (pod prefix − range prefix) gives the
    /// number of subnets and each slot is one subnet of `slot_prefix`.
    slot_prefix: u8,
    /// Number of slots (saturated at u128::MAX for huge IPv6 ranges).
    size: u128,
    taken: HashMap<u128, Owner>,
    /// Slots taken by `Reserved` owners: they do not count as room.
    reserved: u128,
    cursor: u128,
}

impl Pool {
    /// Host addresses of a node network: the network address, the first host (the gateway) and,
    /// for IPv4, the broadcast address are reserved.
    pub fn hosts(net: IpNet) -> Pool {
        let mut pool = Pool::new(net, net.max_prefix_len());
        pool.reserve(0, "the network address");
        pool.reserve(1, "the gateway (the first host)");
        if let IpNet::V4(v4) = net {
            if v4.prefix_len() < 31 {
                pool.reserve(pool.size - 1, "the broadcast address");
            }
        }
        pool
    }

    /// Subnets of `prefix` in a pod network.
    pub fn subnets(net: IpNet, prefix: u8) -> Pool {
        Pool::new(net, prefix)
    }

    fn new(net: IpNet, slot_prefix: u8) -> Pool {
        let bits = u32::from(slot_prefix - net.prefix_len());
        let size = if bits >= 128 {
            u128::MAX
        } else {
            1u128 << bits
        };
        Pool {
            net,
            slot_prefix,
            size,
            taken: HashMap::new(),
            reserved: 0,
            cursor: 0,
        }
    }

    /// Marks a slot as not for nodes (network, gateway, broadcast); a no-op when already taken.
    pub fn reserve(&mut self, slot: u128, what: &'static str) {
        if slot < self.size {
            if let std::collections::hash_map::Entry::Vacant(e) = self.taken.entry(slot) {
                e.insert(Owner::Reserved(what));
                self.reserved += 1;
            }
        }
    }

    /// How many slots there are for nodes and VIPs.
    pub fn room(&self) -> u128 {
        self.size - self.reserved
    }

    pub fn slot_prefix(&self) -> u8 {
        self.slot_prefix
    }

    fn base(&self) -> u128 {
        match self.net.network() {
            IpAddr::V4(a) => u128::from(u32::from(a)),
            IpAddr::V6(a) => u128::from(a),
        }
    }

    fn shift(&self) -> u32 {
        u32::from(self.net.max_prefix_len() - self.slot_prefix)
    }

    /// The slot of an address (host pools) or of a subnet's network address (subnet pools);
    /// `None` when it is outside the range.
    pub fn slot_of(&self, ip: IpAddr) -> Option<u128> {
        if !self.net.contains(&ip) {
            return None;
        }
        let value = match ip {
            IpAddr::V4(a) => u128::from(u32::from(a)),
            IpAddr::V6(a) => u128::from(a),
        };
        Some((value - self.base()) >> self.shift())
    }

    /// The address at a slot (host pools) or the subnet at a slot (subnet pools).
    pub fn ip_at(&self, slot: u128) -> IpAddr {
        let value = self.base() + (slot << self.shift());
        match self.net {
            IpNet::V4(_) => IpAddr::V4((value as u32).into()),
            IpNet::V6(_) => IpAddr::V6(value.into()),
        }
    }

    pub fn net_at(&self, slot: u128) -> IpNet {
        IpNet::new(self.ip_at(slot), self.slot_prefix).expect("prefix fits the family")
    }

    pub fn owner(&self, slot: u128) -> Option<&Owner> {
        self.taken.get(&slot)
    }

    /// Takes a slot for `owner`; returns the current owner when it is already taken.
    pub fn take(&mut self, slot: u128, owner: Owner) -> Result<(), Owner> {
        match self.taken.get(&slot) {
            Some(current) => Err(current.clone()),
            None => {
                self.taken.insert(slot, owner);
                Ok(())
            }
        }
    }

    /// Gives a slot taken by a VIP to the node that holds the VIP as its own address.
    pub fn hand_over(&mut self, slot: u128, owner: Owner) {
        self.taken.insert(slot, owner);
    }

    /// Takes the lowest free slot; `None` when the range is full.
    pub fn next_free(&mut self, owner: Owner) -> Option<u128> {
        while self.cursor < self.size {
            let slot = self.cursor;
            self.cursor += 1;
            if let std::collections::hash_map::Entry::Vacant(e) = self.taken.entry(slot) {
                e.insert(owner);
                return Some(slot);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_skip_network_gateway_broadcast() {
        let mut pool = Pool::hosts("10.0.0.0/30".parse().unwrap());
        assert_eq!(pool.room(), 1);
        let slot = pool.next_free(Owner::Node(0)).unwrap();
        assert_eq!(pool.ip_at(slot).to_string(), "10.0.0.2");
        assert_eq!(pool.next_free(Owner::Node(1)), None);
    }

    #[test]
    fn subnets_by_index() {
        let mut pool = Pool::subnets("fd00:10:200::/56".parse().unwrap(), 64);
        assert_eq!(pool.room(), 256);
        pool.take(0, Owner::Node(0)).unwrap();
        let slot = pool.next_free(Owner::Node(1)).unwrap();
        assert_eq!(pool.net_at(slot).to_string(), "fd00:10:200:1::/64");
        assert_eq!(pool.slot_of("fd00:10:200:1::".parse().unwrap()), Some(1));
        assert_eq!(pool.take(1, Owner::Node(2)), Err(Owner::Node(1)));
    }
}
