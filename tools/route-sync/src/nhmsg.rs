//! Nexthop objects on the wire (RTM_NEWNEXTHOP, RTM_DELNEXTHOP, RTM_GETNEXTHOP), which
//! netlink-packet-route 0.33 does not model: its `RouteNetlinkMessage` has no nexthop variant
//! and fails to parse type 104. The messages are small and fixed — a `struct nhmsg` header and
//! a few attributes — so they are built and read here over netlink-packet-core's traits, and
//! [`Message`] carries either them or netlink-packet-route's own messages on one socket.
//!
//! Layout and numbers from the kernel's include/uapi/linux/nexthop.h and rtnetlink.h (Linux 6.1,
//! unchanged through 6.18): `struct nhmsg { u8 nh_family, nh_scope, nh_protocol, resvd; u32
//! nh_flags; }`, then NHA_* attributes.

use std::net::IpAddr;

use rtnetlink::packet_core::{
    DecodeError, NetlinkDeserializable, NetlinkHeader, NetlinkPayload, NetlinkSerializable,
    NlasIterator,
};
use rtnetlink::packet_route::RouteNetlinkMessage;

pub const RTM_NEWNEXTHOP: u16 = 104;
pub const RTM_DELNEXTHOP: u16 = 105;
pub const RTM_GETNEXTHOP: u16 = 106;

const NHA_ID: u16 = 1;
const NHA_GROUP: u16 = 2;
const NHA_BLACKHOLE: u16 = 4;
const NHA_OIF: u16 = 5;
const NHA_GATEWAY: u16 = 6;
const NHA_ENCAP: u16 = 8;
const NHA_FDB: u16 = 11;

const AF_UNSPEC: u8 = 0;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

/// `sizeof(struct nhmsg)`.
const HEADER_LEN: usize = 8;

/// One nexthop message: its type, the `nhmsg` header fields that matter, and its attributes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NexthopMessage {
    pub kind: u16,
    pub family: u8,
    pub protocol: u8,
    pub id: Option<u32>,
    pub gateway: Option<IpAddr>,
    pub oif: Option<u32>,
    /// A group, blackhole, encap or FDB nexthop: not the single gateway route-sync makes.
    pub special: bool,
}

impl NexthopMessage {
    /// `ip nexthop add/replace id ID via GATEWAY dev OIF proto PROTO`.
    pub fn new(id: u32, gateway: IpAddr, oif: u32, protocol: u8) -> NexthopMessage {
        NexthopMessage {
            kind: RTM_NEWNEXTHOP,
            family: if gateway.is_ipv6() { AF_INET6 } else { AF_INET },
            protocol,
            id: Some(id),
            gateway: Some(gateway),
            oif: Some(oif),
            special: false,
        }
    }

    /// `ip nexthop del id ID`: the id alone names it.
    pub fn delete(id: u32) -> NexthopMessage {
        NexthopMessage {
            kind: RTM_DELNEXTHOP,
            id: Some(id),
            ..NexthopMessage::default()
        }
    }

    /// A dump of every nexthop, both families.
    pub fn dump() -> NexthopMessage {
        NexthopMessage {
            kind: RTM_GETNEXTHOP,
            family: AF_UNSPEC,
            ..NexthopMessage::default()
        }
    }

    fn attributes(&self) -> Vec<(u16, Vec<u8>)> {
        let mut out = Vec::new();
        if let Some(id) = self.id {
            out.push((NHA_ID, id.to_ne_bytes().to_vec()));
        }
        if let Some(oif) = self.oif {
            out.push((NHA_OIF, oif.to_ne_bytes().to_vec()));
        }
        match self.gateway {
            Some(IpAddr::V4(a)) => out.push((NHA_GATEWAY, a.octets().to_vec())),
            Some(IpAddr::V6(a)) => out.push((NHA_GATEWAY, a.octets().to_vec())),
            None => {}
        }
        out
    }

    fn parse(kind: u16, payload: &[u8]) -> Result<NexthopMessage, DecodeError> {
        if payload.len() < HEADER_LEN {
            return Err(DecodeError::from(
                "nexthop message shorter than struct nhmsg",
            ));
        }
        let mut m = NexthopMessage {
            kind,
            family: payload[0],
            protocol: payload[2],
            ..NexthopMessage::default()
        };
        for nla in NlasIterator::new(&payload[HEADER_LEN..]) {
            let nla = nla?;
            let value = nla.value();
            match (nla.kind(), value.len()) {
                (NHA_ID, 4) => m.id = Some(u32::from_ne_bytes(value.try_into().expect("4"))),
                (NHA_OIF, 4) => m.oif = Some(u32::from_ne_bytes(value.try_into().expect("4"))),
                (NHA_GATEWAY, 4) => m.gateway = Some(<[u8; 4]>::try_from(value).expect("4").into()),
                (NHA_GATEWAY, 16) => {
                    m.gateway = Some(<[u8; 16]>::try_from(value).expect("16").into())
                }
                (NHA_GROUP | NHA_BLACKHOLE | NHA_ENCAP | NHA_FDB, _) => m.special = true,
                _ => {}
            }
        }
        Ok(m)
    }
}

/// What route-sync's own socket sends and reads: netlink-packet-route's messages, or nexthops.
#[derive(Debug, Clone)]
pub enum Message {
    Route(RouteNetlinkMessage),
    Nexthop(NexthopMessage),
}

impl NetlinkSerializable for Message {
    fn message_type(&self) -> u16 {
        match self {
            Message::Route(m) => m.message_type(),
            Message::Nexthop(m) => m.kind,
        }
    }

    fn buffer_len(&self) -> usize {
        match self {
            Message::Route(m) => NetlinkSerializable::buffer_len(m),
            Message::Nexthop(m) => {
                HEADER_LEN
                    + m.attributes()
                        .iter()
                        .map(|(_, v)| (4 + v.len()).next_multiple_of(4))
                        .sum::<usize>()
            }
        }
    }

    fn serialize(&self, buffer: &mut [u8]) {
        let m = match self {
            Message::Route(m) => return NetlinkSerializable::serialize(m, buffer),
            Message::Nexthop(m) => m,
        };
        buffer.fill(0);
        buffer[0] = m.family;
        buffer[2] = m.protocol;
        let mut at = HEADER_LEN;
        for (kind, value) in m.attributes() {
            let len = 4 + value.len();
            buffer[at..at + 2].copy_from_slice(&(len as u16).to_ne_bytes());
            buffer[at + 2..at + 4].copy_from_slice(&kind.to_ne_bytes());
            buffer[at + 4..at + len].copy_from_slice(&value);
            at += len.next_multiple_of(4);
        }
    }
}

impl From<Message> for NetlinkPayload<Message> {
    fn from(message: Message) -> Self {
        NetlinkPayload::InnerMessage(message)
    }
}

impl NetlinkDeserializable for Message {
    type Error = DecodeError;

    fn deserialize(header: &NetlinkHeader, payload: &[u8]) -> Result<Message, DecodeError> {
        match header.message_type {
            kind @ (RTM_NEWNEXTHOP | RTM_DELNEXTHOP) => {
                NexthopMessage::parse(kind, payload).map(Message::Nexthop)
            }
            _ => RouteNetlinkMessage::deserialize(header, payload).map(Message::Route),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nexthop_round_trips_through_its_bytes() {
        let sent = NexthopMessage::new(7, "fd00::2".parse().unwrap(), 3, 200);
        let m = Message::Nexthop(sent.clone());
        let mut bytes = vec![0xff; m.buffer_len()];
        m.serialize(&mut bytes);
        // nhmsg, then NHA_ID (8), NHA_OIF (8), NHA_GATEWAY (4 + 16).
        assert_eq!(bytes.len(), 8 + 8 + 8 + 20);
        assert_eq!((bytes[0], bytes[2]), (AF_INET6, 200));
        let back = NexthopMessage::parse(RTM_NEWNEXTHOP, &bytes).unwrap();
        assert_eq!(back, sent);
    }
}
