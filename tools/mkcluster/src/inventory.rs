//! Reading inventories: a CSV with a header row (the csv crate) or KTHW's machines.txt. Both give
//! the same list of [`Entry`]s; every value is checked here, where its line and column are known.

use std::collections::HashMap;
use std::net::IpAddr;

use hardway::{validate, Role};
use ipnet::IpNet;

use crate::error::{Error, Position};
use crate::size::{self, Unit};

/// One node as the inventory gives it; `None` and empty lists are left to defaults or cidr-alloc.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub name: String,
    pub roles: Vec<Role>,
    pub ips: Vec<IpAddr>,
    pub vcpus: Option<u32>,
    pub memory_mib: Option<u64>,
    pub disk_gib: Option<u64>,
    pub pod_cidrs: Vec<IpNet>,
    pub host: Option<String>,
    /// Set by machines.txt, which names each FQDN; CSV nodes get name.domain.
    pub fqdn: Option<String>,
    /// Where the node's name is, for errors found later (a duplicate, an address outside a range).
    pub at: Position,
    /// Where each value is, for the same reason.
    pub ip_at: Position,
    pub pod_cidr_at: Position,
}

/// The CSV columns; `name` and `roles` are required.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Column {
    Name,
    Roles,
    Ip,
    Vcpus,
    Memory,
    Disk,
    PodCidr,
    Host,
}

const COLUMNS: &str = "name,roles,ip,vcpus,memory,disk,pod_cidr,host";

impl Column {
    fn parse(header: &str) -> Option<Column> {
        Some(match header.trim().to_ascii_lowercase().as_str() {
            "name" | "node" | "hostname" => Column::Name,
            "roles" | "role" => Column::Roles,
            "ip" | "ips" | "address" => Column::Ip,
            "vcpus" | "vcpu" | "cpus" => Column::Vcpus,
            "memory" | "mem" | "ram" | "memory_mib" => Column::Memory,
            "disk" | "disk_gib" => Column::Disk,
            "pod_cidr" | "pod_cidrs" | "pod_subnet" => Column::PodCidr,
            "host" => Column::Host,
            _ => return None,
        })
    }
}

/// Parses a CSV inventory; `source` names it in errors.
pub fn parse_csv(text: &str, source: &str) -> Result<Vec<Entry>, Error> {
    let lines: Vec<&str> = text.lines().collect();
    let (content, kept) = without_comments(&lines);
    let original_line = |line: u64| {
        kept.get(line.saturating_sub(1) as usize)
            .copied()
            .unwrap_or(line)
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(content.as_bytes());
    let mut records = reader.records().map(|record| match record {
        Ok(record) => {
            let line = original_line(record.position().map_or(1, |p| p.line()));
            Ok((line, record))
        }
        Err(e) => {
            let line = original_line(e.position().map_or(1, |p| p.line()));
            let message = match e.kind() {
                csv::ErrorKind::Utf8 { err, .. } => {
                    format!("field {} is not UTF-8", err.field() + 1)
                }
                _ => strip_csv_position(&e.to_string()),
            };
            Err(Position { line, column: 1 }.error(source, message))
        }
    });
    let Some(header) = records.next() else {
        return Err(Position { line: 1, column: 1 }.error(
            source,
            format!("the inventory is empty: start it with a header row like {COLUMNS}"),
        ));
    };
    let (header_line, header) = header?;
    let at = |line: u64, field: usize| Position {
        line,
        column: column_of(&lines, line, field),
    };
    let columns = header_columns(&header, &|i| at(header_line, i), source)?;
    let mut entries = Vec::new();
    for record in records {
        let (line, record) = record?;
        entries.push(entry(&record, &columns, &|i| at(line, i), source)?);
    }
    Ok(entries)
}

/// The lines that are not comments or blank, and for each its line number in the original.
/// The csv crate's own line count goes wrong on blank lines between records; inventories have
/// one record per line (no quoted line breaks), so the mapping is exact.
fn without_comments(lines: &[&str]) -> (String, Vec<u64>) {
    let mut kept: Vec<u64> = Vec::new();
    let mut content = String::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim();
        if !trimmed.is_empty() && !trimmed.starts_with('#') {
            kept.push(i as u64 + 1);
            content.push_str(line);
            content.push('\n');
        }
    }
    (content, kept)
}

/// The header row's columns, each known and once, `name` and `roles` among them: the field
/// index of each column.
fn header_columns(
    header: &csv::StringRecord,
    at: &dyn Fn(usize) -> Position,
    source: &str,
) -> Result<HashMap<Column, usize>, Error> {
    let mut columns: HashMap<Column, usize> = HashMap::new();
    for (i, title) in header.iter().enumerate() {
        let column = Column::parse(title).ok_or_else(|| {
            at(i).error(
                source,
                format!(
                    "unknown column {}: the columns are {COLUMNS}",
                    hardway::error::quote(title)
                ),
            )
        })?;
        if columns.insert(column, i).is_some() {
            return Err(at(i).error(
                source,
                format!("column {} appears twice", hardway::error::quote(title)),
            ));
        }
    }
    for (required, what) in [(Column::Name, "name"), (Column::Roles, "roles")] {
        if !columns.contains_key(&required) {
            return Err(at(0).error(
                source,
                format!(
                    "the header row has no {} column: name and roles are required ({COLUMNS})",
                    hardway::error::quote(what)
                ),
            ));
        }
    }
    Ok(columns)
}

/// One row's node: its name and roles, then each other column that has a value.
fn entry(
    record: &csv::StringRecord,
    columns: &HashMap<Column, usize>,
    at: &dyn Fn(usize) -> Position,
    source: &str,
) -> Result<Entry, Error> {
    if record.len() > columns.len() {
        return Err(at(columns.len()).error(
            source,
            format!(
                "this row has {} fields, the header names {}",
                record.len(),
                columns.len()
            ),
        ));
    }
    let field = |column: Column| -> (&str, Position) {
        let i = columns[&column];
        (record.get(i).unwrap_or(""), at(i))
    };
    let (name, name_at) = field(Column::Name);
    validate::node_name(name).map_err(|why| name_at.error(source, why))?;
    let (roles, roles_at) = field(Column::Roles);
    let roles = parse_roles(roles).map_err(|why| roles_at.error(source, why))?;
    let mut entry = Entry {
        name: name.to_string(),
        roles,
        ips: Vec::new(),
        vcpus: None,
        memory_mib: None,
        disk_gib: None,
        pod_cidrs: Vec::new(),
        host: None,
        fqdn: None,
        at: name_at,
        ip_at: name_at,
        pod_cidr_at: name_at,
    };
    for (&column, &i) in columns {
        let value = record.get(i).unwrap_or("");
        if !value.is_empty() {
            set_column(&mut entry, column, value, at(i)).map_err(|why| at(i).error(source, why))?;
        }
    }
    Ok(entry)
}

/// Sets the entry's value of one optional column; the error says what is wrong with it.
fn set_column(entry: &mut Entry, column: Column, value: &str, at: Position) -> Result<(), String> {
    match column {
        Column::Name | Column::Roles => {}
        Column::Ip => {
            entry.ips = parse_pair(value, validate::ip)?;
            entry.ip_at = at;
        }
        Column::PodCidr => {
            entry.pod_cidrs = parse_pair(value, validate::network)?;
            entry.pod_cidr_at = at;
        }
        Column::Vcpus => {
            let vcpus = value.parse::<u32>().ok().filter(|&n| n > 0);
            entry.vcpus = Some(vcpus.ok_or_else(|| {
                format!(
                    "vcpus {} is not a whole number above 0",
                    hardway::error::quote(value)
                )
            })?);
        }
        Column::Memory => {
            entry.memory_mib =
                Some(size::parse(value, Unit::Mib).map_err(|why| format!("memory: {why}"))?);
        }
        Column::Disk => {
            entry.disk_gib =
                Some(size::parse(value, Unit::Gib).map_err(|why| format!("disk: {why}"))?);
        }
        Column::Host => entry.host = Some(value.to_string()),
    }
    Ok(())
}

/// Parses KTHW's machines.txt: `IP FQDN HOST [POD_SUBNET]` separated by blanks, one node a line.
/// Roles come from the host's name (see `roles_for_host`).
pub fn parse_machines(text: &str, source: &str) -> Result<Vec<Entry>, Error> {
    let mut entries = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_no = index as u64 + 1;
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        // Fields with the 1-based character column each starts at.
        let mut fields: Vec<(&str, u64)> = Vec::new();
        let mut start = None;
        for (i, c) in line.char_indices().chain([(line.len(), ' ')]) {
            match (c.is_whitespace(), start) {
                (false, None) => start = Some(i),
                (true, Some(s)) => {
                    fields.push((&line[s..i], line[..s].chars().count() as u64 + 1));
                    start = None;
                }
                _ => {}
            }
        }
        let pos = |i: usize| Position {
            line: line_no,
            column: fields.get(i).map_or(1, |f| f.1),
        };
        if !(3..=4).contains(&fields.len()) {
            let column = if fields.len() > 4 { pos(4) } else { pos(0) };
            return Err(column.error(
                source,
                format!(
                    "expected IP FQDN HOST [POD_SUBNET], found {} fields",
                    fields.len()
                ),
            ));
        }
        let ip = parse_pair(fields[0].0, validate::ip).map_err(|why| pos(0).error(source, why))?;
        let fqdn = fields[1].0.trim_end_matches('.').to_ascii_lowercase();
        validate::dns_name(&fqdn).map_err(|why| pos(1).error(source, why))?;
        let host = fields[2].0;
        validate::node_name(host).map_err(|why| pos(2).error(source, why))?;
        let pod_cidrs = match fields.get(3) {
            Some((value, _)) => {
                parse_pair(value, validate::network).map_err(|why| pos(3).error(source, why))?
            }
            None => Vec::new(),
        };
        entries.push(Entry {
            name: host.to_string(),
            roles: roles_for_host(host),
            ips: ip,
            vcpus: None,
            memory_mib: None,
            disk_gib: None,
            pod_cidrs,
            host: None,
            fqdn: Some(fqdn),
            at: pos(2),
            ip_at: pos(0),
            pod_cidr_at: pos(3),
        });
    }
    if entries.is_empty() {
        return Err(Position { line: 1, column: 1 }.error(
            source,
            "machines.txt lists no machine: one line per node, IP FQDN HOST [POD_SUBNET]",
        ));
    }
    Ok(entries)
}

/// machines.txt has no roles: KTHW calls its control plane `server` and its workers `node-N`.
/// A host named server*, controller* or master* is controller+etcd (stacked etcd, as KTHW runs
/// it), etcd* is etcd, lb* is lb, anything else a worker.
pub fn roles_for_host(host: &str) -> Vec<Role> {
    if ["server", "controller", "master"]
        .iter()
        .any(|p| host.starts_with(p))
    {
        vec![Role::Etcd, Role::Controller]
    } else if host.starts_with("etcd") {
        vec![Role::Etcd]
    } else if host.starts_with("lb") {
        vec![Role::Lb]
    } else {
        vec![Role::Worker]
    }
}

/// Roles joined by `+` or `;`, in the document's order, each once.
fn parse_roles(text: &str) -> Result<Vec<Role>, String> {
    if text.is_empty() {
        return Err("no roles: give etcd, controller, worker or lb, joined by '+' or ';'".into());
    }
    let mut roles = Vec::new();
    for part in text.split(['+', ';']) {
        let role = Role::parse(part).ok_or_else(|| {
            format!(
                "unknown role {:?}: the roles are etcd, controller (or master), worker, lb",
                part.trim()
            )
        })?;
        roles.push(role);
    }
    roles.sort();
    roles.dedup();
    Ok(roles)
}

/// Anything that has an address family.
pub trait Family {
    fn is_v6(&self) -> bool;
}

impl Family for IpAddr {
    fn is_v6(&self) -> bool {
        self.is_ipv6()
    }
}

impl Family for IpNet {
    fn is_v6(&self) -> bool {
        matches!(self, IpNet::V6(_))
    }
}

/// One value, or an IPv4 and an IPv6 one joined by `+` or `;`; returned IPv4 first.
fn parse_pair<T: Family>(
    text: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    let mut values = text
        .split(['+', ';'])
        .map(|part| parse(part.trim()))
        .collect::<Result<Vec<T>, String>>()?;
    values.sort_by_key(Family::is_v6);
    let v6 = values.iter().filter(|v| v.is_v6()).count();
    if values.len() > 2 || v6 > 1 || values.len() - v6 > 1 {
        return Err(format!(
            "{}: give one value, or one IPv4 and one IPv6 joined by '+' or ';'",
            hardway::error::quote(text)
        ));
    }
    Ok(values)
}

/// The 1-based character column where field `field` starts on line `line` (skipping the blanks
/// the reader trims), found by walking the raw line with the CSV quoting rules.
fn column_of(lines: &[&str], line: u64, field: usize) -> u64 {
    let Some(text) = lines.get(line.saturating_sub(1) as usize) else {
        return 1;
    };
    let mut start = (field == 0).then_some(0);
    let mut current = 0;
    let mut in_quotes = false;
    for (i, c) in text.char_indices() {
        if start.is_some() {
            break;
        }
        match c {
            '"' => in_quotes = !in_quotes,
            ',' if !in_quotes => {
                current += 1;
                if current == field {
                    start = Some(i + 1);
                }
            }
            _ => {}
        }
    }
    let start = start.unwrap_or(text.len());
    let skipped = text[start..].len() - text[start..].trim_start().len();
    text[..start + skipped].chars().count() as u64 + 1
}

/// The csv crate's messages carry their own position; ours goes in front.
fn strip_csv_position(message: &str) -> String {
    let message = message.strip_prefix("CSV error: ").unwrap_or(message);
    match message.find(": ") {
        Some(at) if message.starts_with("record ") || message.starts_with("found record") => {
            message[at + 2..].to_string()
        }
        _ => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(csv: &str) -> Entry {
        let mut all = parse_csv(csv, "t.csv").unwrap();
        assert_eq!(all.len(), 1);
        all.remove(0)
    }

    fn err(csv: &str) -> String {
        parse_csv(csv, "t.csv").unwrap_err().to_string()
    }

    #[test]
    fn columns_in_any_order_and_comments() {
        let e = one("# a comment\nroles,name,memory\n# another\nworker+etcd,w1,1.5G\n");
        assert_eq!(e.name, "w1");
        assert_eq!(e.roles, vec![Role::Etcd, Role::Worker]);
        assert_eq!(e.memory_mib, Some(1536));
        assert_eq!(
            e.at,
            Position {
                line: 4,
                column: 13
            }
        );
    }

    #[test]
    fn dual_stack_values_are_ordered_ipv4_first() {
        let e =
            one("name,roles,ip,pod_cidr\nw1,worker,fd00::5;10.0.0.5,10.200.0.0/24+fd00:1::/64\n");
        assert_eq!(e.ips[0].to_string(), "10.0.0.5");
        assert_eq!(e.ips[1].to_string(), "fd00::5");
        assert_eq!(e.pod_cidrs[1].to_string(), "fd00:1::/64");
    }

    #[test]
    fn errors_name_line_and_column() {
        assert_eq!(
            err("name,roles,ip\nw1,worker,10.0.0.300\n"),
            "t.csv:2:11: \"10.0.0.300\" is not an IP address"
        );
        assert_eq!(
            err("name,roles\nw1, boss\n"),
            "t.csv:2:5: unknown role \"boss\": the roles are etcd, controller (or master), worker, lb"
        );
        assert!(err("name,rolez\n").starts_with("t.csv:1:6: unknown column \"rolez\""));
        assert!(err("name,ip\n").starts_with("t.csv:1:1: the header row has no \"roles\""));
        assert!(err("name,roles\nw1,worker,x\n").starts_with("t.csv:2:11: this row has 3 fields"));
        assert!(err("\"name\",roles\n\"W1\",worker\n").starts_with("t.csv:2:1: node name \"W1\""));
        assert!(err("").starts_with("t.csv:1:1: the inventory is empty"));
        assert!(
            err("name,roles,ip\na,worker,10.0.0.1;10.0.0.2\n").contains("one IPv4 and one IPv6")
        );
    }

    #[test]
    fn machines_txt() {
        let text = "10.240.0.10 server.kubernetes.local server\n\
                    10.240.0.20 node-0.kubernetes.local node-0 10.200.0.0/24\n";
        let all = parse_machines(text, "machines.txt").unwrap();
        assert_eq!(all[0].roles, vec![Role::Etcd, Role::Controller]);
        assert_eq!(all[1].roles, vec![Role::Worker]);
        assert_eq!(all[1].pod_cidrs[0].to_string(), "10.200.0.0/24");
        let bad = parse_machines("10.240.0.10  server.x  server 10.200.0.0/24 extra\n", "m")
            .unwrap_err()
            .to_string();
        assert!(bad.starts_with("m:1:45: expected IP FQDN HOST"), "{bad}");
    }
}
