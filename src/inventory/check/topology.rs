//! How the hosts relate: exactly one primary, every replica's upstream resolved (the primary
//! unless `upstream:` says otherwise) and every chain ending at the primary, and no two hosts
//! sharing an endpoint, a slot, or a data directory on one machine. Like every checker, it judges
//! values only: no YAML reading, no I/O, no secrets.

use std::collections::{BTreeSet, HashMap};

use serde_saphyr::Spanned;

use super::hosts::Names;
use super::Checker;
use crate::inventory::model::{Host, Role, TransportKind};
use crate::inventory::raw::RawHost;

/// Checks the hosts as a whole and resolves each replica's default upstream. `raw` and `hosts`
/// are in the same order.
pub(super) fn check(
    c: &mut Checker,
    raw: &Spanned<Vec<Spanned<RawHost>>>,
    hosts: &mut [Host],
    names: &Names,
    transport: TransportKind,
) {
    let primary = check_primaries(c, raw, hosts);
    resolve_upstreams(c, &raw.value, hosts, names, primary);
    check_loops(c, &raw.value, hosts, names.len() == hosts.len());
    check_collisions(c, &raw.value, hosts, transport);
}

/// Exactly one primary (and at least one host); the primary's name.
fn check_primaries(
    c: &mut Checker,
    raw: &Spanned<Vec<Spanned<RawHost>>>,
    hosts: &[Host],
) -> Option<String> {
    let primaries: Vec<usize> = hosts
        .iter()
        .enumerate()
        .filter(|(_, h)| h.role == Role::Primary)
        .map(|(i, _)| i)
        .collect();
    match primaries.len() {
        0 => c.at(
            raw.referenced,
            "no host has role: primary",
            "mark exactly one host with role: primary",
        ),
        1 => {}
        _ => {
            for &i in &primaries[1..] {
                c.at(
                    raw.value[i].value.role.referenced,
                    format!(
                        "{} is a second primary ({} is already primary)",
                        hosts[i].name, hosts[primaries[0]].name
                    ),
                    "a cluster has exactly one primary: make this host role: replica",
                );
            }
        }
    }
    if raw.value.is_empty() {
        c.at(
            raw.referenced,
            "the inventory lists no hosts",
            "add a primary and its replicas under hosts:",
        );
    }
    primaries.first().map(|&i| hosts[i].name.clone())
}

/// A replica without `upstream:` follows the primary; a given upstream must be another host of
/// the inventory; the primary has none.
fn resolve_upstreams(
    c: &mut Checker,
    raw: &[Spanned<RawHost>],
    hosts: &mut [Host],
    names: &Names,
    primary: Option<String>,
) {
    for (h, rh) in hosts.iter_mut().zip(raw) {
        match (h.role, &rh.value.upstream) {
            (Role::Primary, Some(u)) => c.at(
                u.referenced,
                format!("the primary {} cannot have an upstream", h.name),
                "remove upstream: from the primary",
            ),
            (Role::Replica, None) => h.upstream = primary.clone(),
            (Role::Replica, Some(u)) => {
                if u.value == h.name {
                    c.at(
                        u.referenced,
                        format!("{} cannot follow itself", h.name),
                        "name the primary or another replica as upstream",
                    );
                } else if !names.contains_key(&u.value) {
                    c.at(
                        u.referenced,
                        format!("upstream {:?} is not a host of this inventory", u.value),
                        format!("use one of: {}", sorted_names(names)),
                    );
                }
            }
            (Role::Primary, None) => {}
        }
    }
}

/// Every replica's upstream chain must reach the primary. Only checked when names are unique
/// (`unique_names`), for the chains to mean anything.
fn check_loops(c: &mut Checker, raw: &[Spanned<RawHost>], hosts: &[Host], unique_names: bool) {
    let up: HashMap<&str, Option<&str>> = hosts
        .iter()
        .map(|h| (h.name.as_str(), h.upstream.as_deref()))
        .collect();
    for (h, rh) in hosts.iter().zip(raw) {
        if h.role != Role::Replica || !unique_names {
            continue;
        }
        let mut cur = h.name.as_str();
        let mut seen = BTreeSet::new();
        while let Some(Some(next)) = up.get(cur) {
            if !seen.insert(cur) {
                let loc = rh
                    .value
                    .upstream
                    .as_ref()
                    .map(|u| u.referenced)
                    .unwrap_or(rh.referenced);
                c.at(
                    loc,
                    format!(
                        "the upstreams of {} form a loop ({})",
                        h.name,
                        seen.iter().copied().collect::<Vec<_>>().join(" -> ")
                    ),
                    "make the chain end at the primary",
                );
                break;
            }
            cur = next;
        }
    }
}

/// No two hosts on one address and port, no two replicas on one slot, no two hosts on one
/// data directory, nor on one socket directory and port, of one machine (with the local transport, every host is this machine).
/// Reported at the later host's address.
fn check_collisions(
    c: &mut Checker,
    raw: &[Spanned<RawHost>],
    hosts: &[Host],
    transport: TransportKind,
) {
    let mut endpoints: HashMap<(String, u16), &str> = HashMap::new();
    let mut slots: HashMap<&str, &str> = HashMap::new();
    let mut dirs: HashMap<(&str, &str), &str> = HashMap::new();
    let mut sockets: HashMap<(&str, &str, u16), &str> = HashMap::new();
    for (h, rh) in hosts.iter().zip(raw) {
        let loc = rh.value.address.referenced;
        let machine = if transport == TransportKind::Local {
            ""
        } else {
            h.ssh_host.as_str()
        };
        if let Some(other) = endpoints.insert((h.address.clone(), h.port), &h.name) {
            c.at(
                loc,
                format!("{} and {other} both use {}:{}", h.name, h.address, h.port),
                "give each host its own address or port",
            );
        }
        // Every host: the primary of today is a replica after the next failover.
        if let Some(other) = slots.insert(&h.slot, &h.name) {
            c.at(
                loc,
                format!("{} and {other} both use slot {}", h.name, h.slot),
                "set a distinct slot: on one of them (a slot not set is the host name, made valid)",
            );
        }
        if let Some(other) = dirs.insert((machine, &h.data_dir), &h.name) {
            c.at(
                loc,
                format!(
                    "{} and {other} share the data directory {} on one machine",
                    h.name, h.data_dir
                ),
                "use data_dir: with {host} in it, e.g. /var/lib/postgresql/{version}/{host}",
            );
        }
        // Unix sockets are files: one socket directory and port per server on a machine.
        if let Some(other) = sockets.insert((machine, &h.socket_dir, h.port), &h.name) {
            c.at(
                loc,
                format!(
                    "{} and {other} would share the socket {}/.s.PGSQL.{} on one machine",
                    h.name, h.socket_dir, h.port
                ),
                "give each a port of its own, or socket_dir: with {host} in it, e.g. /var/run/postgresql/{host}",
            );
        }
    }
}

/// The host names, sorted, for a hint.
fn sorted_names(names: &Names) -> String {
    let mut v: Vec<&str> = names.keys().map(String::as_str).collect();
    v.sort();
    v.join(", ")
}
