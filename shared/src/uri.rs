//! The URIs a document or a flag may name: libvirt connection URIs (`hypervisor.uri`, a node's
//! `host`, `mkvm --connect`) and the API server's `https://` endpoint. A URI is data, never a
//! way to run a program: libvirt's `+ext` transport runs the `command=` it is given, `command=`
//! also replaces the `ssh` binary of `+ssh`, and `netcat=` is pasted into the shell command run on
//! the remote host (libvirt src/remote/remote_driver.c, `doRemoteOpen`, the `EXTRACT_URI_ARG_*`
//! list; unknown parameters are passed on to the remote end). So a URI is checked against an
//! allow-list before libvirt ever sees it, by mkvm and at document read time.
//!
//! Written by hand rather than with the `url` crate: the grammar accepted is small on purpose,
//! and a general parser would accept (and normalize) far more than libvirt should be handed.

use crate::error::quote;
use crate::validate;

/// The transports a user means. `+ext` runs a program; `+libssh` and `+libssh2` run none but take
/// `known_hosts_verify=ignore` and their own auth parameters, and nothing here needs them over
/// `+ssh` (which checks host keys with the user's own OpenSSH configuration): refused too.
const REMOTE_TRANSPORTS: [&str; 3] = ["ssh", "tls", "tcp"];

/// Query parameters accepted, each naming a file or a mode, never a program (`command=`,
/// `netcat=`, `name=` and every unknown parameter are refused).
const PATH_PARAMS: [&str; 4] = ["socket", "keyfile", "pkipath", "known_hosts"];
const FLAG_PARAMS: [&str; 1] = ["no_tty"];

/// Checks a libvirt connection URI: `qemu:///system`, `qemu:///session`,
/// `qemu+ssh|tls|tcp://[user@]host[:port]/system|session`, `qemu+unix:///system|session` with an
/// optional `socket=`, `test:///default`, or `test:///ABSOLUTE/PATH.xml`; the only parameters are
/// paths (`socket`, `keyfile`, `pkipath`, `known_hosts`) and `no_tty`.
pub fn libvirt(uri: &str) -> Result<(), String> {
    validate::plain_text(uri)?;
    let bad = |why: &str| format!("libvirt URI {} {why}", quote(&redact_userinfo(uri)));
    let (scheme, rest) = uri
        .split_once("://")
        .ok_or_else(|| bad("is not a URI like qemu:///system"))?;
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    let (driver, transport) = match scheme.split_once('+') {
        Some((driver, transport)) => (driver, Some(transport)),
        None => (scheme, None),
    };
    match (driver, transport) {
        ("test", None) => {
            if !authority.is_empty() || query.is_some() {
                return Err(bad("must be test:///default or test:///ABSOLUTE/PATH.xml"));
            }
            if path != "/default" && !(path.ends_with(".xml") && validate::absolute_path(path).is_ok()) {
                return Err(bad("must be test:///default or test:///ABSOLUTE/PATH.xml"));
            }
            return Ok(());
        }
        ("qemu", None) | ("qemu", Some("unix")) => {
            if !authority.is_empty() {
                return Err(bad("names a host: use qemu+ssh://HOST/system for a remote one"));
            }
        }
        ("qemu", Some(t)) if REMOTE_TRANSPORTS.contains(&t) => {
            remote_authority(authority).map_err(|why| bad(&why))?;
        }
        ("qemu", Some(t)) => {
            return Err(bad(&format!(
                "uses transport +{t}: only qemu+ssh, qemu+tls, qemu+tcp and qemu+unix are accepted (+ext and friends can run a program)"
            )))
        }
        _ => {
            return Err(bad(
                "is not a qemu or test URI (qemu:///system, qemu+ssh://HOST/system, test:///default)",
            ))
        }
    }
    if path != "/system" && path != "/session" {
        return Err(bad("must end in /system or /session"));
    }
    if let Some(query) = query {
        params(query).map_err(|why| bad(&why))?;
    }
    Ok(())
}

/// `[user@]host[:port]` of a remote URI: no password, a DNS name or an IP address (IPv6 in
/// brackets), a port number.
fn remote_authority(authority: &str) -> Result<(), String> {
    let host_port = match authority.rsplit_once('@') {
        Some((user, host_port)) => {
            if user.contains(':') {
                return Err(
                    "carries a password: use an SSH key or agent, never a password in a URI".into(),
                );
            }
            let user_ok = !user.is_empty()
                && user.len() <= 32
                && user
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
            if !user_ok {
                return Err("has a user name that is not letters, digits, '.', '_' or '-'".into());
            }
            host_port
        }
        None => authority,
    };
    host_and_port(host_port)
}

/// `host[:port]` with host a DNS name, an IPv4 address or a bracketed IPv6 address.
fn host_and_port(text: &str) -> Result<(), String> {
    let port = if let Some(rest) = text.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or("has an unclosed '['")?;
        v6.parse::<std::net::Ipv6Addr>()
            .map_err(|_| "has a bracketed host that is not an IPv6 address".to_string())?;
        match after {
            "" => None,
            after => Some(after.strip_prefix(':').ok_or("has junk after ']'")?),
        }
    } else {
        let (host, port) = match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        };
        if host.is_empty() {
            return Err("names no host".into());
        }
        if host.parse::<std::net::Ipv4Addr>().is_err() && validate::dns_name(host).is_err() {
            return Err("has a host that is not a DNS name or an IP address".into());
        }
        port
    };
    let port_ok = |p: &str| {
        !p.is_empty()
            && p.len() <= 5
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u16>().is_ok_and(|p| p > 0)
    };
    match port {
        Some(p) if !port_ok(p) => Err("has a port that is not a number from 1 to 65535".into()),
        _ => Ok(()),
    }
}

/// The `?a=b&c=d` part: every parameter known and harmless, each at most once.
fn params(query: &str) -> Result<(), String> {
    let mut seen: Vec<&str> = Vec::new();
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if seen.contains(&name) {
            return Err(format!("gives {} twice", quote(name)));
        }
        seen.push(name);
        if PATH_PARAMS.contains(&name) {
            validate::absolute_path(value)
                .map_err(|_| format!("has {name}= that is not an absolute path"))?;
        } else if FLAG_PARAMS.contains(&name) {
            if value != "0" && value != "1" {
                return Err(format!("has {name}= that is not 0 or 1"));
            }
        } else {
            return Err(format!(
                "has parameter {}: only socket, keyfile, pkipath, known_hosts and no_tty are accepted (command= and netcat= name programs)",
                quote(name)
            ));
        }
    }
    Ok(())
}

/// Checks the API server's endpoint: `https://HOST:PORT` with HOST a DNS name or an IP address
/// (IPv6 in brackets), no user name or password, no path beyond `/`, no query.
pub fn https_endpoint(url: &str) -> Result<(), String> {
    validate::plain_text(url)?;
    let bad = |why: &str| format!("endpoint {} {why}", quote(&redact_userinfo(url)));
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| bad("is not an https:// URL like https://10.240.0.20:6443"))?;
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains('@') {
        return Err(bad("carries a user name or password"));
    }
    if authority.contains(['/', '?', '#']) {
        return Err(bad("has a path, query or fragment: give https://HOST:PORT"));
    }
    let has_port = match authority.strip_prefix('[') {
        Some(rest) => rest.contains("]:"),
        None => authority.contains(':'),
    };
    if !has_port {
        return Err(bad("has no port: give https://HOST:PORT"));
    }
    host_and_port(authority).map_err(|why| bad(&why))
}

/// Replaces the user name and password of every URL in a text with `…`
/// (`qemu+ssh://u:secret@h/system` → `qemu+ssh://…@h/system`), so an error message never echoes
/// a credential someone put in a URI.
pub fn redact_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        // The authority ends at the first '/', '?', '#', quote or white space.
        let end = after
            .find(|c: char| "/?#\"'`".contains(c) || c.is_whitespace())
            .unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rfind('@') {
            Some(user_end) => {
                out.push('…');
                out.push_str(&authority[user_end..]);
            }
            None => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_uris_a_user_means() {
        for good in [
            "qemu:///system",
            "qemu:///session",
            "qemu+ssh://root@hv1/system",
            "qemu+ssh://hv1.example.com:2222/system?keyfile=/root/.ssh/id_ed25519&no_tty=1",
            "qemu+tls://10.0.0.5/system?pkipath=/etc/pki/libvirt",
            "qemu+tcp://[fd00::5]:16509/system",
            "qemu+unix:///system?socket=/run/libvirt/virtqemud-sock",
            "qemu+unix:///session",
            "test:///default",
            "test:///srv/hardway/node.xml",
        ] {
            assert_eq!(libvirt(good), Ok(()), "{good}");
        }
    }

    #[test]
    fn refuses_every_uri_that_can_run_a_program_or_hide_one() {
        for bad in [
            "qemu+ext:///system?command=/tmp/x",
            "qemu+ssh://h/system?command=/tmp/x",
            "qemu+ssh://h/system?netcat=nc;touch%20/tmp/x",
            "qemu+ssh://h/system?name=qemu+ext:///system",
            "qemu+ssh://h/system?proxy=native",
            "qemu+libssh2://h/system",
            "qemu+libssh://h/system",
            "test:///default?command=/tmp/x",
            "test:///etc/../x.xml",
            "test:///relative.txt",
            "qemu://hv1/system",
            "qemu+ssh://u:secret@h/system",
            "qemu+ssh:///system",
            "qemu:///system\nx",
            "qemu:///other",
            "xen:///system",
            "lxc:///",
            "qemu+ssh://h:0/system",
            "qemu+ssh://h:99999/system",
            "qemu+ssh://-bad-/system",
            "qemu+ssh://h/system?socket=/a&socket=/b",
            "qemu+unix:///system?socket=relative",
            "",
        ] {
            assert!(libvirt(bad).is_err(), "{bad:?}");
        }
        let why = libvirt("qemu+ssh://u:secret@h/system").unwrap_err();
        assert!(!why.contains("secret"), "{why}");
    }

    /// testkit::hypervisors reaches each of its two libvirtd by its private socket, the host side
    /// of the daemon's bind-mounted /run/libvirt under a temp dir: that URI must pass, and the
    /// same with any parameter that could run a program must not.
    #[test]
    fn a_daemon_reached_by_its_socket_path() {
        let uri = "qemu+unix:///system?socket=/tmp/.tmpAb3xYz/hv-b/run/libvirt-sock";
        assert_eq!(libvirt(uri), Ok(()));
        for bad in [
            "qemu+unix:///system?socket=/tmp/.tmpAb3xYz/../run/libvirt-sock",
            "qemu+unix:///system?socket=/tmp/x&command=/bin/sh",
            "qemu+unix://hv-b/system?socket=/tmp/x",
        ] {
            assert!(libvirt(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn endpoints() {
        for good in [
            "https://10.240.0.20:6443",
            "https://api.example.com:443/",
            "https://[fd00::20]:6443",
        ] {
            assert_eq!(https_endpoint(good), Ok(()), "{good}");
        }
        for bad in [
            "http://10.240.0.20:6443",
            "https://u:p@10.240.0.20:6443",
            "https://10.240.0.20",
            "https://10.240.0.20:6443/x",
            "https://10.240.0.20:6443?a",
            "https://10.240.0.20:x",
            "https://bad_host:6443",
            "https://10.240.0.20:6443\n",
        ] {
            assert!(https_endpoint(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn redacts_userinfo_in_any_text() {
        assert_eq!(
            redact_userinfo("a qemu+ssh://u:secret@h/system b https://x@y:1 c"),
            "a qemu+ssh://…@h/system b https://…@y:1 c"
        );
        assert_eq!(redact_userinfo("no url"), "no url");
        assert_eq!(redact_userinfo("qemu:///system"), "qemu:///system");
    }
}
