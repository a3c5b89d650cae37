//! `hosts[]`, one host at a time: its name, address and ports, its ssh destination, its slot,
//! and its paths (`postgres.*` templates or its own, placeholders replaced). How hosts relate
//! to each other (one primary, upstreams, shared resources) is `topology`'s.
//!
//! A value is checked before anything derived from it: a host name or cluster name that fails
//! its own check is reported there, once, and is not substituted into the checks of the paths
//! and the slot name built from it (made valid).

use std::collections::HashMap;

use serde_saphyr::{Location, Spanned};

use super::postgres::Postgres;
use super::{check_port, Checker};
use crate::inventory::model::Host;
use crate::inventory::raw::{RawHost, RawPostgres};
use crate::inventory::validators::{check_remote_path, is_address, is_host_name};

/// Every host's name, at its position (a duplicate keeps the last one).
pub(super) type Names = HashMap<String, Location>;

/// What a host takes from the cluster-wide sections unless it sets its own.
pub(super) struct Defaults<'a> {
    version: u32,
    cluster: &'a str,
    cluster_ok: bool,
    port: u16,
    ssh_port: u16,
    data_dir: Option<&'a Spanned<String>>,
    bin_dir: Option<&'a Spanned<String>>,
    socket_dir: Option<&'a Spanned<String>>,
    hosts: usize,
}

impl<'a> Defaults<'a> {
    /// From the checked `postgres:` values, its path templates, and `access.ssh.port`.
    pub(super) fn new(
        pg: &'a Postgres,
        raw: &'a RawPostgres,
        ssh_port: u16,
        hosts: usize,
    ) -> Defaults<'a> {
        Defaults {
            version: pg.version,
            cluster: &pg.cluster,
            cluster_ok: pg.cluster_ok,
            port: pg.port,
            ssh_port,
            data_dir: raw.data_dir.as_ref(),
            bin_dir: raw.bin_dir.as_ref(),
            socket_dir: raw.socket_dir.as_ref(),
            hosts,
        }
    }
}

/// Checks every host in order; the hosts (upstreams not yet resolved) and their names.
pub(super) fn check(
    c: &mut Checker,
    raw: &[Spanned<RawHost>],
    d: &Defaults<'_>,
) -> (Vec<Host>, Names) {
    let mut names = Names::new();
    let hosts = raw
        .iter()
        .map(|h| check_host(c, &h.value, d, &mut names))
        .collect();
    (hosts, names)
}

/// One host, defaults filled in.
fn check_host(c: &mut Checker, rh: &RawHost, d: &Defaults<'_>, names: &mut Names) -> Host {
    let name = rh.name.value.clone();
    let name_ok = is_host_name(&name);
    if !name_ok {
        c.at(
            rh.name.referenced,
            format!("host name {name:?} is not allowed"),
            "use letters, digits, '_', '.' or '-', starting with a letter or digit (at most 63)",
        );
    }
    if names.insert(name.clone(), rh.name.referenced).is_some() {
        c.at(
            rh.name.referenced,
            format!("host name {name} is used twice"),
            "give every host its own name",
        );
    }
    check_endpoints(c, rh);
    let slot = check_slot(c, rh);
    let [data_dir, bin_dir, socket_dir] = resolve_paths(c, rh, d, &name, name_ok);
    Host {
        passfile: format!("{data_dir}.pgpass"),
        tls_dir: format!("{data_dir}.tls"),
        log_file: format!("{data_dir}.log"),
        name,
        address: rh.address.value.clone(),
        port: rh.port.as_ref().map(|p| p.value).unwrap_or(d.port),
        role: rh.role.value,
        upstream: rh.upstream.as_ref().map(|u| u.value.clone()),
        slot,
        data_dir,
        bin_dir,
        socket_dir,
        ssh_host: rh
            .ssh_host
            .as_ref()
            .map(|s| s.value.clone())
            .unwrap_or_else(|| rh.address.value.clone()),
        ssh_port: rh.ssh_port.as_ref().map(|p| p.value).unwrap_or(d.ssh_port),
        settings: super::settings::check(c, &rh.settings, d.hosts).0,
        apply_delay: rh
            .apply_delay
            .as_ref()
            .and_then(|a| super::modes::check_delay(c, a)),
        listen_extra: check_listen(c, rh),
    }
}

/// `listen_addresses`: addresses beside `address` (IPs or names, `localhost` included); `*`
/// would open every interface and is refused.
fn check_listen(c: &mut Checker, rh: &RawHost) -> Vec<String> {
    let mut out = Vec::new();
    for a in &rh.listen_addresses {
        if !is_address(&a.value) {
            c.at(a.referenced, format!("listen address {:?} is not an IP address or host name", a.value), "list addresses such as localhost or 10.0.0.5 ('*' is not allowed: name each interface)");
        } else if a.value != rh.address.value && !out.contains(&a.value) {
            out.push(a.value.clone());
        }
    }
    out
}

/// The address, port, ssh destination and ssh port a host sets.
fn check_endpoints(c: &mut Checker, rh: &RawHost) {
    if !is_address(&rh.address.value) {
        c.at(rh.address.referenced, format!("address {:?} is not an IP address or host name", rh.address.value), "use an IPv4/IPv6 address or a DNS name (letters, digits, '-' and '.', not starting with '-')");
    }
    if let Some(p) = &rh.port {
        check_port(c, p);
    }
    if let Some(s) = &rh.ssh_host {
        if !is_address(&s.value) {
            c.at(
                s.referenced,
                format!("ssh_host {:?} is not a host name or address", s.value),
                "use an address, a DNS name or an alias from ~/.ssh/config",
            );
        }
    }
    if let Some(p) = &rh.ssh_port {
        check_port(c, p);
    }
}

/// The host's slot on its upstream (any host may become a replica after a failover): `slot:`,
/// checked as given; or derived from the host's name ([`derived_slot`]), always valid.
fn check_slot(c: &mut Checker, rh: &RawHost) -> String {
    let Some(given) = &rh.slot else {
        return derived_slot(&rh.name.value);
    };
    if !crate::pg::is_valid_slot_name(&given.value) {
        c.at(
            given.referenced,
            format!("{:?} cannot be a replication slot name", given.value),
            format!(
                "slot names allow only a-z, 0-9 and '_' (at most 63): slot: {}",
                derived_slot(&given.value)
            ),
        );
    }
    given.value.clone()
}

/// The slot named after a host: its name in lower case, every character other than a-z, 0-9
/// and `_` made `_`, at most 63 bytes (`Postgres-Video-Master` → `postgres_video_master`).
pub fn derived_slot(name: &str) -> String {
    let mut out: String = name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    out.truncate(63);
    if out.is_empty() {
        out = "replica_1".into();
    }
    out
}

/// The host's data, binary and socket directories, in that order. A value that failed its own
/// check is reported there; a path is checked with a neutral stand-in in its place, so a path
/// problem is reported only if the path itself is wrong.
fn resolve_paths(
    c: &mut Checker,
    rh: &RawHost,
    d: &Defaults<'_>,
    name: &str,
    name_ok: bool,
) -> [String; 3] {
    let values = Placeholders {
        version: d.version,
        cluster: d.cluster,
        host: name,
    };
    let checked = Placeholders {
        version: d.version,
        cluster: if d.cluster_ok { d.cluster } else { "cluster" },
        host: if name_ok { name } else { "host" },
    };
    if let Some(s) = rh.socket_dir.as_ref().or(d.socket_dir) {
        if s.value.contains(',') {
            c.at(
                s.referenced,
                format!("socket_dir {:?} contains ','", s.value),
                "PostgreSQL reads unix_socket_directories as a comma-separated list (and libpq a host list): use a path without ','",
            );
        }
    }
    [
        (
            rh.data_dir.as_ref(),
            d.data_dir,
            "/var/lib/postgresql/{version}/{cluster}",
        ),
        (
            rh.bin_dir.as_ref(),
            d.bin_dir,
            "/usr/lib/postgresql/{version}/bin",
        ),
        (rh.socket_dir.as_ref(), d.socket_dir, "/var/run/postgresql"),
    ]
    .map(|(own, global, default)| resolve_path(c, own, global, default, &values, &checked))
}

/// What `{version}`, `{cluster}` and `{host}` stand for in a path template.
struct Placeholders<'a> {
    version: u32,
    cluster: &'a str,
    host: &'a str,
}

impl Placeholders<'_> {
    /// `text` with every placeholder replaced (in the order version, cluster, host).
    fn replace(&self, text: &str) -> String {
        text.replace("{version}", &self.version.to_string())
            .replace("{cluster}", self.cluster)
            .replace("{host}", self.host)
    }
}

/// A path of one host: its own value, else the `postgres.*` template, else `default`, with the
/// placeholders replaced by `values`. A value the inventory wrote is checked as a remote path
/// with the placeholders replaced by `checked` (the problem is reported at that value);
/// pgrepl's defaults are not checked.
fn resolve_path(
    c: &mut Checker,
    own: Option<&Spanned<String>>,
    global: Option<&Spanned<String>>,
    default: &str,
    values: &Placeholders<'_>,
    checked: &Placeholders<'_>,
) -> String {
    let chosen = own.or(global);
    let text = chosen.map(|s| s.value.as_str()).unwrap_or(default);
    if let Some(s) = chosen {
        if let Err(why) = check_remote_path(&checked.replace(&s.value)) {
            c.at(s.referenced, format!("path {:?} {why}", s.value), "use an absolute path of letters, digits and _ . / @ + , : % - (placeholders {version}, {cluster}, {host} allowed)");
        }
    }
    values.replace(text)
}
