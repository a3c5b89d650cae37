//! `replication.synchronous`, `archive:` and `hosts[].apply_delay`: values checked, defaults
//! filled in. Hosts are checked first: the synchronous standbys must name hosts, and not a
//! delayed one (it would hold every commit up, and it must never be promoted unasked).

use std::collections::{BTreeMap, BTreeSet};

use serde_saphyr::Spanned;

use super::Checker;
use crate::inventory::model::Host;
use crate::inventory::modes::{Archive, SyncRule};
use crate::inventory::raw::{RawArchive, RawSync};

/// The `synchronous_commit` levels that wait for a standby.
const COMMIT_LEVELS: &[&str] = &["on", "remote_write", "remote_apply"];

/// Checks `replication.synchronous` against the checked `hosts`.
pub(super) fn check_sync(
    c: &mut Checker,
    raw: &Spanned<RawSync>,
    hosts: &[Host],
) -> Option<SyncRule> {
    let r = &raw.value;
    let names = candidates(c, r.standbys.as_deref(), hosts);
    let count = r.count.as_ref().map(|n| n.value).unwrap_or(1);
    let at = r
        .count
        .as_ref()
        .map(|n| n.referenced)
        .unwrap_or(raw.referenced);
    if count == 0 {
        c.at(
            at,
            "synchronous.count is 0",
            "use 1 or more (or remove replication.synchronous)",
        );
    } else {
        let primary = hosts
            .iter()
            .find(|h| h.role == crate::inventory::model::Role::Primary);
        let others = names
            .iter()
            .filter(|n| primary.is_none_or(|p| p.name != **n))
            .count();
        if count as usize > others {
            c.at(at, format!("synchronous.count {count} needs more standbys than the {others} candidates beside the primary"), "lower count or list more hosts under standbys");
        }
    }
    let commit = r
        .commit
        .as_ref()
        .map(|c| c.value.clone())
        .unwrap_or_else(|| "on".into());
    if let Some(cm) = &r.commit {
        if !COMMIT_LEVELS.contains(&cm.value.as_str()) {
            c.at(
                cm.referenced,
                format!(
                    "synchronous.commit {:?} does not wait for a standby",
                    cm.value
                ),
                "use on, remote_write or remote_apply",
            );
        }
    }
    Some(SyncRule {
        method: r.method.value,
        count,
        standbys: names,
        commit,
    })
}

/// The candidates: `standbys` as listed (each a host, not delayed, once), or every host that
/// is not delayed.
fn candidates(
    c: &mut Checker,
    standbys: Option<&[Spanned<String>]>,
    hosts: &[Host],
) -> Vec<String> {
    match standbys {
        None => hosts
            .iter()
            .filter(|h| h.apply_delay.is_none())
            .map(|h| h.name.clone())
            .collect(),
        Some(list) => {
            let mut seen = BTreeSet::new();
            for s in list {
                match hosts.iter().find(|h| h.name == s.value) {
                    None => c.at(
                        s.referenced,
                        format!(
                            "synchronous standby {:?} is not a host of the inventory",
                            s.value
                        ),
                        "name hosts from hosts[]",
                    ),
                    Some(h) if h.apply_delay.is_some() => c.at(
                        s.referenced,
                        format!(
                            "{} has an apply_delay and cannot be a synchronous standby",
                            s.value
                        ),
                        "remove it from standbys, or its apply_delay",
                    ),
                    Some(_) if !seen.insert(s.value.clone()) => c.at(
                        s.referenced,
                        format!("{} is listed twice", s.value),
                        "list each standby once",
                    ),
                    Some(_) => {}
                }
            }
            list.iter().map(|s| s.value.clone()).collect()
        }
    }
}

/// Checks `archive:`; archive settings written under `postgres.*settings` or a host's
/// `settings` too are refused there.
pub(super) fn check_archive(
    c: &mut Checker,
    raw: &Spanned<RawArchive>,
    settings: &[&BTreeMap<String, Spanned<String>>],
) -> Option<Archive> {
    let r = &raw.value;
    let mode = r
        .mode
        .as_ref()
        .map(|m| m.value.clone())
        .unwrap_or_else(|| "on".into());
    if let Some(m) = &r.mode {
        if !["on", "always"].contains(&m.value.as_str()) {
            c.at(
                m.referenced,
                format!("archive.mode {:?} is not on or always", m.value),
                "use on (the primary archives) or always (standbys archive too)",
            );
        }
    }
    let one_line = |c: &mut Checker, s: &Spanned<String>, key: &str| {
        if s.value.trim().is_empty()
            || s.value.chars().any(char::is_control)
            || !s.value.contains("%p")
        {
            c.at(
                s.referenced,
                format!("archive.{key} must be one non-empty line using %p"),
                "e.g. 'test ! -f /archive/%f && cp %p /archive/%f' (restore: 'cp /archive/%f %p')",
            );
        }
    };
    one_line(c, &r.command, "command");
    if let Some(rc) = &r.restore_command {
        one_line(c, rc, "restore_command");
    }
    for map in settings {
        for name in ["archive_mode", "archive_command", "restore_command"] {
            if let Some(v) = map.get(name) {
                c.at(
                    v.referenced,
                    format!("setting {name} is managed by pgrepl when archive: is set"),
                    "set it under archive: (mode, command, restore_command)",
                );
            }
        }
    }
    Some(Archive {
        mode,
        command: r.command.value.clone(),
        restore_command: r.restore_command.as_ref().map(|s| s.value.clone()),
    })
}

/// `hosts[].apply_delay` ("1h", "30min", "300s"): whole seconds, at least 1.
pub(super) fn check_delay(c: &mut Checker, raw: &Spanned<String>) -> Option<u64> {
    match humantime::parse_duration(&raw.value) {
        Ok(d) if d.as_secs() >= 1 => Some(d.as_secs()),
        _ => {
            c.at(
                raw.referenced,
                format!(
                    "apply_delay {:?} is not a duration of at least 1s",
                    raw.value
                ),
                "write it like 30min, 1h or 300s",
            );
            None
        }
    }
}

/// Settings a standby needs at least at the primary's value (PostgreSQL refuses to start a hot
/// standby below it): the same on every host, so only under `postgres.settings`.
const SAME_EVERYWHERE: &[&str] = &[
    "max_connections",
    "max_worker_processes",
    "max_wal_senders",
    "max_prepared_transactions",
    "max_locks_per_transaction",
];

/// Refuses [`SAME_EVERYWHERE`] settings in a role's or a host's settings.
pub(super) fn check_per_role(c: &mut Checker, maps: &[&BTreeMap<String, Spanned<String>>]) {
    for map in maps {
        for name in SAME_EVERYWHERE {
            if let Some(v) = map.get(*name) {
                c.at(v.referenced, format!("{name} must be the same on every host"), "set it under postgres.settings: a hot standby refuses to start below the primary's value, and roles change");
            }
        }
    }
}
