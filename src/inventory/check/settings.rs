//! `postgres.settings`: extra postgresql.conf settings. Names are PostgreSQL parameter names,
//! values one line; settings pgrepl renders itself are refused with the key that sets them, and
//! the replication capacity and `wal_level` may not be set below what streaming needs. Like every
//! checker, it judges values only: no YAML reading, no I/O, no secrets.

use std::collections::BTreeMap;

use serde_saphyr::Spanned;

use super::Checker;
use crate::inventory::model::{needed_slots, needed_wal_senders};
use crate::inventory::validators::is_setting_name;

/// Settings pgrepl renders itself; the inventory sets them through other keys.
const RESERVED_SETTINGS: &[(&str, &str)] = &[
    ("port", "set postgres.port or a host's port"),
    (
        "listen_addresses",
        "pgrepl listens on the host's address; add others with hosts[].address",
    ),
    ("unix_socket_directories", "set postgres.socket_dir"),
    ("data_directory", "set postgres.data_dir"),
    (
        "hba_file",
        "pgrepl manages pg_hba.conf in the data directory",
    ),
    (
        "ident_file",
        "pgrepl manages pg_ident.conf in the data directory",
    ),
    (
        "config_file",
        "pgrepl manages postgresql.conf in the data directory",
    ),
    (
        "primary_conninfo",
        "pgrepl derives it from hosts[].upstream",
    ),
    ("primary_slot_name", "set hosts[].slot"),
    (
        "hot_standby",
        "replicas must accept read-only queries for pgrepl to check them",
    ),
    ("cluster_name", "set cluster"),
    (
        "synchronous_standby_names",
        "set replication.synchronous (pgrepl renders the rule on every host, without the host itself)",
    ),
    ("recovery_min_apply_delay", "set hosts[].apply_delay"),
];

/// Checks each setting of a cluster of `hosts` hosts; the accepted ones, sorted by name, and
/// where each value is in the file (line, column): a setting the target server refuses later
/// (`ops::init::preflight`) is reported there.
pub(super) fn check(
    c: &mut Checker,
    raw: &BTreeMap<String, Spanned<String>>,
    hosts: usize,
) -> (BTreeMap<String, String>, BTreeMap<String, (u64, u64)>) {
    let mut settings = BTreeMap::new();
    let mut at = BTreeMap::new();
    for (name, value) in raw {
        match problem(name, &value.value, hosts) {
            Some((message, hint)) => c.at(value.referenced, message, hint),
            None => {
                settings.insert(name.clone(), value.value.clone());
                let loc = value.referenced;
                at.insert(name.clone(), (loc.line(), loc.column()));
            }
        }
    }
    (settings, at)
}

/// What is wrong with `name = value`, and its fix; the first rule it breaks only.
fn problem(name: &str, value: &str, hosts: usize) -> Option<(String, String)> {
    let others = hosts.saturating_sub(1);
    if let Some((_, why)) = RESERVED_SETTINGS.iter().find(|(n, _)| *n == name) {
        Some((
            format!("setting {name} is managed by pgrepl"),
            why.to_string(),
        ))
    } else if !is_setting_name(name) {
        Some((
            format!("{name:?} is not a PostgreSQL setting name"),
            "use lower-case letters, digits, '_' and '.'".into(),
        ))
    } else if value.chars().any(char::is_control) || value.len() > 4096 {
        Some((
            format!("the value of {name} contains a control character or is too long"),
            "put the value on one line".into(),
        ))
    } else if ["max_wal_senders", "max_replication_slots"].contains(&name)
        && value.parse::<usize>().map(|n| n < others).unwrap_or(true)
    {
        Some((
            format!("{name} = {value:?} cannot serve the {others} other hosts of this cluster"),
            format!(
                "remove it (pgrepl sizes it: {} senders, {} slots here) or raise it",
                needed_wal_senders(hosts),
                needed_slots(hosts)
            ),
        ))
    } else if name == "wal_level" && !["replica", "logical"].contains(&value) {
        Some((
            format!("wal_level {value:?} cannot stream to replicas"),
            "use replica or logical".into(),
        ))
    } else {
        None
    }
}
