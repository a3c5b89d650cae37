//! `routers[]`: HAProxy and PgBouncer instances in front of the cluster. One router at a time
//! (name, address, ssh destination, directory, program, ports, PgBouncer's pool settings), then
//! the routers as a whole beside the hosts: names unique across hosts and routers, no two
//! listeners on one address and port (a router's own ports, other routers', PostgreSQL's), no
//! two routers in one directory of one machine. Judges values only: no I/O, no secrets.

use std::collections::HashMap;

use serde_saphyr::{Location, Spanned};

use super::hosts::Names;
use super::{check_port, Checker};
use crate::inventory::apps::{ReadTargets, Router, RouterKind, RouterPorts};
use crate::inventory::model::{Host, TransportKind};
use crate::inventory::raw::RawRouter;
use crate::inventory::validators::{check_remote_path, is_address, is_host_name, is_sql_role};

/// The default `dir` (`{router}` is the router's name).
pub(crate) const DEFAULT_DIR: &str = "/var/lib/pgrepl/routers/{router}";

/// What the routers take from the rest of the inventory.
pub(super) struct Around<'a> {
    /// The hosts (for their addresses and ports).
    pub(super) hosts: &'a [Host],
    /// The hosts' names (a router may not reuse one).
    pub(super) names: &'a Names,
    /// `access.ssh.port`.
    pub(super) ssh_port: u16,
    /// `access.transport`: locally every router runs on this machine.
    pub(super) transport: TransportKind,
    /// `databases[]` names: a PgBouncer's default, and what its `databases` must be among
    /// (when the section lists any).
    pub(super) databases: Vec<String>,
}

/// Checks every router in order, then the routers as a whole.
pub(super) fn check(c: &mut Checker, raw: &[Spanned<RawRouter>], a: &Around<'_>) -> Vec<Router> {
    let mut names: Names = Names::new();
    let routers: Vec<Router> = raw
        .iter()
        .map(|r| check_router(c, &r.value, a, &mut names))
        .collect();
    check_listeners(c, raw, &routers, a.hosts);
    check_dirs(c, raw, &routers, a.transport);
    routers
}

/// One router, defaults filled in.
fn check_router(c: &mut Checker, r: &RawRouter, a: &Around<'_>, names: &mut Names) -> Router {
    let name = r.name.value.clone();
    let name_ok = is_host_name(&name);
    if !name_ok {
        c.at(
            r.name.referenced,
            format!("router name {name:?} is not allowed"),
            "use letters, digits, '_', '.' or '-', starting with a letter or digit (at most 63)",
        );
    }
    if a.names.contains_key(&name) || names.insert(name.clone(), r.name.referenced).is_some() {
        c.at(
            r.name.referenced,
            format!("name {name} is used twice (hosts and routers share one namespace)"),
            "give every host and router its own name",
        );
    }
    check_endpoints(c, r);
    let kind = r.kind.value;
    let dir = resolve_dir(c, r, &name, name_ok);
    let bin = match &r.bin {
        Some(b) => {
            if let Err(why) = check_remote_path(&b.value) {
                c.at(
                    b.referenced,
                    format!("bin {:?} {why}", b.value),
                    "give the program's absolute path, e.g. /usr/sbin/haproxy",
                );
            }
            b.value.clone()
        }
        None => match kind {
            RouterKind::Haproxy => "/usr/sbin/haproxy".into(),
            RouterKind::Pgbouncer => "/usr/sbin/pgbouncer".into(),
        },
    };
    let ports = check_ports(c, r, a);
    let (pool_mode, pool_size, databases) = check_pool(c, r, a);
    Router {
        name,
        kind,
        address: r.address.value.clone(),
        ssh_host: r
            .ssh_host
            .as_ref()
            .map(|s| s.value.clone())
            .unwrap_or_else(|| r.address.value.clone()),
        ssh_port: r.ssh_port.as_ref().map(|p| p.value).unwrap_or(a.ssh_port),
        dir,
        bin,
        ports,
        read_targets: r
            .read_targets
            .as_ref()
            .map(|t| t.value)
            .unwrap_or(ReadTargets::Replicas),
        pool_mode,
        pool_size,
        databases,
    }
}

/// The address, ssh destination and ssh port.
fn check_endpoints(c: &mut Checker, r: &RawRouter) {
    if !is_address(&r.address.value) {
        c.at(r.address.referenced, format!("address {:?} is not an IP address or host name", r.address.value), "use an IPv4/IPv6 address or a DNS name (letters, digits, '-' and '.', not starting with '-')");
    }
    if let Some(s) = &r.ssh_host {
        if !is_address(&s.value) {
            c.at(
                s.referenced,
                format!("ssh_host {:?} is not a host name or address", s.value),
                "use an address, a DNS name or an alias from ~/.ssh/config",
            );
        }
    }
    if let Some(p) = &r.ssh_port {
        check_port(c, p);
    }
}

/// `dir`, `{router}` replaced; the value as written is checked with a valid stand-in name.
fn resolve_dir(c: &mut Checker, r: &RawRouter, name: &str, name_ok: bool) -> String {
    let Some(d) = &r.dir else {
        return DEFAULT_DIR.replace("{router}", name);
    };
    let stand_in = if name_ok { name } else { "router" };
    if let Err(why) = check_remote_path(&d.value.replace("{router}", stand_in)) {
        c.at(
            d.referenced,
            format!("dir {:?} {why}", d.value),
            "use an absolute path of letters, digits and _ . / @ + , : % - (placeholder {router} allowed)",
        );
    }
    d.value.replace("{router}", name)
}

/// `ports`: each a port, distinct within the router; `stats` for HAProxy only; a PgBouncer's
/// read route needs every host on one port (its `host=` list shares one `port=`, 1.18).
fn check_ports(c: &mut Checker, r: &RawRouter, a: &Around<'_>) -> RouterPorts {
    let p = &r.ports.value;
    let all = [Some(&p.write), p.read.as_ref(), p.stats.as_ref()];
    for q in all.iter().flatten() {
        check_port(c, q);
    }
    let mut seen: HashMap<u16, ()> = HashMap::new();
    for q in all.iter().flatten() {
        if seen.insert(q.value, ()).is_some() {
            c.at(
                q.referenced,
                format!("router {} uses port {} twice", r.name.value, q.value),
                "give the write, read and stats routes their own ports",
            );
        }
    }
    if let (RouterKind::Pgbouncer, Some(s)) = (r.kind.value, &p.stats) {
        c.at(
            s.referenced,
            "a PgBouncer router has no stats page",
            "remove ports.stats (PgBouncer's console is reached on its own ports as the replication user)",
        );
    }
    if let (RouterKind::Pgbouncer, Some(rd)) = (r.kind.value, &p.read) {
        let mut ports: Vec<u16> = a.hosts.iter().map(|h| h.port).collect();
        ports.sort_unstable();
        ports.dedup();
        if ports.len() > 1 {
            c.at(
                rd.referenced,
                format!("PgBouncer's read route balances over one host list with one port, but the hosts use ports {ports:?}"),
                "give every host the same port, or use a haproxy router for the read route",
            );
        }
    }
    RouterPorts {
        write: p.write.value,
        read: p.read.as_ref().map(|q| q.value),
        stats: p.stats.as_ref().map(|q| q.value),
    }
}

/// `pool_mode`, `pool_size`, `databases`: PgBouncer's, refused on HAProxy.
fn check_pool(c: &mut Checker, r: &RawRouter, a: &Around<'_>) -> (String, u32, Vec<String>) {
    if r.kind.value == RouterKind::Haproxy {
        let keys: [(&str, Option<Location>); 3] = [
            ("pool_mode", r.pool_mode.as_ref().map(|v| v.referenced)),
            ("pool_size", r.pool_size.as_ref().map(|v| v.referenced)),
            ("databases", r.databases.as_ref().map(|v| v.referenced)),
        ];
        for (key, loc) in keys {
            if let Some(loc) = loc {
                c.at(
                    loc,
                    format!("{key} is a PgBouncer setting; HAProxy passes connections through"),
                    format!("remove {key} from this haproxy router"),
                );
            }
        }
    }
    if let Some(m) = &r.pool_mode {
        if !["session", "transaction", "statement"].contains(&m.value.as_str()) {
            c.at(
                m.referenced,
                format!("pool_mode {:?} is not a PgBouncer pool mode", m.value),
                "use session, transaction or statement",
            );
        }
    }
    if let Some(s) = r.pool_size.as_ref().filter(|s| s.value == 0) {
        c.at(
            s.referenced,
            "pool_size 0 would serve no connection",
            "use a pool size of 1 or more",
        );
    }
    let databases = match &r.databases {
        None => a.databases.clone(),
        Some(list) => {
            for d in &list.value {
                if !is_sql_role(&d.value) {
                    c.at(
                        d.referenced,
                        format!("database name {:?} is not allowed", d.value),
                        "use letters, digits and '_', starting with a letter or '_' (at most 63)",
                    );
                } else if !a.databases.is_empty() && !a.databases.contains(&d.value) {
                    c.at(
                        d.referenced,
                        format!("{} is not one of databases[]", d.value),
                        format!("use one of: {}", a.databases.join(", ")),
                    );
                }
            }
            list.value.iter().map(|d| d.value.clone()).collect()
        }
    };
    let pool_mode = r.pool_mode.as_ref().map(|m| m.value.clone());
    let pool_size = r.pool_size.as_ref().map(|s| s.value).unwrap_or(20);
    (
        pool_mode.unwrap_or_else(|| "transaction".into()),
        pool_size,
        databases,
    )
}

/// No two listeners on one address and port: PostgreSQL's, and every router route.
fn check_listeners(
    c: &mut Checker,
    raw: &[Spanned<RawRouter>],
    routers: &[Router],
    hosts: &[Host],
) {
    let mut taken: HashMap<(String, u16), String> = hosts
        .iter()
        .map(|h| {
            (
                (h.address.clone(), h.port),
                format!("PostgreSQL on {}", h.name),
            )
        })
        .collect();
    for (r, rr) in routers.iter().zip(raw) {
        let p = &rr.value.ports.value;
        let routes = [
            ("write", Some(&p.write)),
            ("read", p.read.as_ref()),
            ("stats", p.stats.as_ref()),
        ];
        for (route, port) in routes {
            let Some(port) = port else { continue };
            let who = format!("{}'s {route} route", r.name);
            if let Some(other) = taken.insert((r.address.clone(), port.value), who.clone()) {
                c.at(
                    port.referenced,
                    format!("{who} and {other} both use {}:{}", r.address, port.value),
                    "give each listener on one address its own port",
                );
            }
        }
    }
}

/// No two routers in one directory of one machine (locally, every router is on this machine).
fn check_dirs(
    c: &mut Checker,
    raw: &[Spanned<RawRouter>],
    routers: &[Router],
    transport: TransportKind,
) {
    let mut dirs: HashMap<(&str, &str), &str> = HashMap::new();
    for (r, rr) in routers.iter().zip(raw) {
        let machine = match transport {
            TransportKind::Local => "",
            TransportKind::Ssh => r.ssh_host.as_str(),
        };
        if let Some(other) = dirs.insert((machine, r.dir.as_str()), &r.name) {
            let loc = rr
                .value
                .dir
                .as_ref()
                .map(|d| d.referenced)
                .unwrap_or(rr.referenced);
            c.at(
                loc,
                format!(
                    "{} and {other} share the directory {} on one machine",
                    r.name, r.dir
                ),
                "use dir: with {router} in it, e.g. /var/lib/pgrepl/routers/{router}",
            );
        }
    }
}
