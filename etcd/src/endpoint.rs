//! etcd client URLs, parsed as etcdctl's `--endpoints` takes them, and checked up front so a
//! typo is a usage error rather than a member that "does not answer".

use std::net::IpAddr;

use hardway::paths::etcd::CLIENT_PORT;

/// A member to check: its client URL, split into what a TCP connect and a TLS handshake need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The node's name when the endpoint came from the document.
    pub name: Option<String>,
    /// The URL as the user or the document gave it, normalised (no trailing slash).
    pub url: String,
    pub tls: bool,
    pub host: Host,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Ip(IpAddr),
    Name(String),
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::Ip(ip) => write!(f, "{ip}"),
            Host::Name(name) => f.write_str(name),
        }
    }
}

/// Parses an `--endpoints` entry. As etcdctl, a bare `HOST:PORT` is accepted: TLS when a CA is
/// given, plain HTTP otherwise. Anything with a scheme or a slash goes through [`parse_endpoint`].
pub fn parse_endpoint_flag(text: &str, tls: bool) -> Result<Target, String> {
    let text = text.trim();
    if text.contains("://") || text.contains('/') || text.is_empty() {
        return parse_endpoint(text);
    }
    let scheme = if tls { "https" } else { "http" };
    parse_endpoint(&format!("{scheme}://{text}"))
}

/// Parses an etcd client URL as etcdctl's `--endpoints` takes it: `https://HOST:PORT` or
/// `http://HOST:PORT`, HOST an IPv4 address, a bracketed IPv6 address or a DNS name. A missing
/// port is 2379; anything else (a path, a user, a typo in the scheme) is refused, so a typo'd
/// endpoint is a usage error rather than a member that "does not answer".
pub fn parse_endpoint(text: &str) -> Result<Target, String> {
    let want = "want https://HOST:PORT, e.g. https://10.240.0.11:2379";
    let text = text.trim();
    // Quoted and cut to a sane length in every message (hardway::error::quote).
    let quoted = hardway::error::quote(text);
    let (tls, rest) = if let Some(rest) = text.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = text.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err(format!("{quoted} is not an etcd client URL ({want})"));
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() || authority.contains(['/', '@', '?', '#', ' ']) {
        return Err(format!("{quoted} is not an etcd client URL ({want})"));
    }
    let (host_text, port_text) = if let Some(v6) = authority.strip_prefix('[') {
        let (addr, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("{quoted}: unclosed '[' ({want})"))?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| format!("{quoted}: junk after ']' ({want})"))?,
            ),
        };
        (addr, port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port_text {
        None => CLIENT_PORT,
        Some(p) => match p.parse::<u16>() {
            Ok(port) if port > 0 => port,
            _ => return Err(format!("{quoted}: {p:?} is not a port ({want})")),
        },
    };
    let host = if let Ok(ip) = host_text.parse::<IpAddr>() {
        if ip.is_ipv6() && !authority.starts_with('[') {
            return Err(format!("{quoted}: an IPv6 address needs brackets ({want})"));
        }
        Host::Ip(ip)
    } else if hardway::validate::dns_name(host_text).is_ok() {
        Host::Name(host_text.to_ascii_lowercase())
    } else {
        return Err(format!(
            "{quoted}: {host_text:?} is neither an IP address nor a DNS name ({want})"
        ));
    };
    let scheme = if tls { "https" } else { "http" };
    let url = match &host {
        Host::Ip(IpAddr::V6(ip)) => format!("{scheme}://[{ip}]:{port}"),
        h => format!("{scheme}://{h}:{port}"),
    };
    Ok(Target {
        name: None,
        url,
        tls,
        host,
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_like_etcdctl() {
        let t = parse_endpoint("https://10.240.0.11:2379").unwrap();
        assert_eq!(t.host, Host::Ip("10.240.0.11".parse().unwrap()));
        assert_eq!((t.tls, t.port), (true, 2379));
        assert_eq!(
            parse_endpoint("http://etcd-1/").unwrap().url,
            "http://etcd-1:2379"
        );
        let v6 = parse_endpoint("https://[fd00::1]:2379").unwrap();
        assert_eq!(v6.url, "https://[fd00::1]:2379");
        assert_eq!(parse_endpoint("https://[fd00::1]").unwrap().port, 2379);
    }

    #[test]
    fn bare_host_port_as_etcdctl() {
        assert_eq!(
            parse_endpoint_flag("127.0.0.1:2379", true).unwrap().url,
            "https://127.0.0.1:2379"
        );
        assert_eq!(
            parse_endpoint_flag("etcd-1:2379", false).unwrap().url,
            "http://etcd-1:2379"
        );
        for bad in [
            "https//127.0.0.1:2379",
            "htps://127.0.0.1:2379",
            "127.0.0.1:x",
            "",
        ] {
            assert!(parse_endpoint_flag(bad, true).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn typos_are_refused() {
        for bad in [
            "htps://127.0.0.1:2379",
            "https//127.0.0.1:2379",
            "https:/127.0.0.1:2379",
            "https://127.0.0.1:23790000",
            "https://127.0.0.1:",
            "https://127.0.0.1:2379/v3",
            "https://fd00::1:2379",
            "https://exa mple:2379",
            "https://under_score:2379",
            "https://",
        ] {
            assert!(parse_endpoint(bad).is_err(), "{bad} accepted");
        }
    }
}
