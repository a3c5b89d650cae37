//! From the raw file to the model: one checker per section, each resolving its part (defaults
//! filled in) and pushing every problem it finds, with the file position of the value at fault
//! and one fix, into a `Checker`. `build` runs them in file order and yields an `Inventory` only
//! when nothing was found.
//!
//! Checkers judge values; they must not read the YAML (that is `raw`), contact anything or read
//! secrets. Character-set rules live in `validators`, shared by every section.

mod access;
mod apps;
mod hba;
mod hosts;
mod modes;
mod postgres;
mod replication;
mod routers;
mod settings;
mod status;
mod timeouts;
mod tls;
mod topology;

use std::path::{Path, PathBuf};

use serde_saphyr::{Location, Spanned};

use super::model::Inventory;
use super::raw::RawInventory;
use super::validators::is_os_user;
use crate::error::InventoryIssue;

/// Collects the problems of one inventory, each at a file position.
pub(super) struct Checker {
    issues: Vec<InventoryIssue>,
}

impl Checker {
    /// No problems yet.
    pub(super) fn new() -> Checker {
        Checker { issues: Vec::new() }
    }

    /// Records a problem at `loc` (the value at fault) with the one fix for it.
    pub(super) fn at(
        &mut self,
        loc: Location,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.issues.push(InventoryIssue {
            line: loc.line(),
            column: loc.column(),
            message: message.into(),
            hint: hint.into(),
        });
    }

    /// How many problems have been recorded so far.
    pub(super) fn count(&self) -> usize {
        self.issues.len()
    }

    /// The problems in file order, each once: a value shared by every host (a data_dir
    /// template) is checked once per host and would otherwise repeat.
    pub(super) fn into_issues(mut self) -> Vec<InventoryIssue> {
        self.issues.sort_by_key(|i| (i.line, i.column));
        self.issues.dedup();
        self.issues
    }
}

/// Checks every section of `raw` in file order, pushing problems into `c`; the inventory when
/// every value passed (and `None`, or a partial result the caller discards, otherwise).
pub(super) fn build(raw: RawInventory, path: &Path, c: &mut Checker) -> Option<Inventory> {
    let pg = postgres::check(c, &raw.cluster, &raw.postgres.value);
    let host_count = raw.hosts.value.len();
    let (settings, setting_positions) =
        settings::check(c, &raw.postgres.value.settings, host_count);
    let hba = hba::check(c, &raw.postgres.value.hba, pg.version, &settings);
    let rep = replication::check(
        c,
        raw.replication.as_ref(),
        raw.cluster.referenced,
        &pg.os_user,
        path,
    );
    let (transport, ssh) = access::check(c, raw.access.as_ref(), &pg.os_user, path);
    let timeouts = timeouts::resolve(raw.timeouts.as_ref());
    let thresholds = status::check(c, raw.status.as_ref());
    let defaults = hosts::Defaults::new(&pg, &raw.postgres.value, ssh.port, host_count);
    let primary_settings = settings::check(c, &raw.postgres.value.primary_settings, host_count).0;
    let replica_settings = settings::check(c, &raw.postgres.value.replica_settings, host_count).0;
    let (mut hosts, names) = hosts::check(c, &raw.hosts.value, &defaults);
    topology::check(c, &raw.hosts, &mut hosts, &names, transport);
    let reserved = apps::Reserved {
        os_user: &pg.os_user,
        replication_user: &rep.user,
        rewind_user: &rep.rewind_user,
    };
    let roles = apps::check_roles(c, &raw.roles, &reserved, path);
    let role_names: Vec<&str> = roles.iter().map(|r| r.name.as_str()).collect();
    let databases = apps::check_databases(c, &raw.databases, &role_names);
    let around = routers::Around {
        hosts: &hosts,
        names: &names,
        ssh_port: ssh.port,
        transport,
        databases: databases.iter().map(|d| d.name.clone()).collect(),
    };
    let routers = routers::check(c, &raw.routers, &around);
    routers_need_a_role(c, &raw, roles.is_empty());
    let (synchronous, archive) = modes_section(c, &raw, &hosts);
    let tls = tls::check(c, &raw, &hosts, path);

    let password = rep.password?;
    Some(Inventory {
        file: path.to_path_buf(),
        cluster: pg.cluster,
        version: pg.version,
        os_user: pg.os_user,
        locale: pg.locale,
        settings,
        setting_positions,
        primary_settings,
        replica_settings,
        synchronous,
        archive,
        hba,
        replication_user: rep.user,
        rewind_user: rep.rewind_user,
        monitor_user: crate::inventory::MONITOR_USER.into(),
        password,
        transport,
        ssh,
        timeouts,
        thresholds,
        hosts,
        roles,
        databases,
        routers,
        tls,
        tls_moving: false,
    })
}

/// Routers without any application role are refused at the first router.
fn routers_need_a_role(c: &mut Checker, raw: &RawInventory, no_roles: bool) {
    if let (Some(first), true) = (raw.routers.first(), no_roles) {
        c.at(
            first.referenced,
            "routers need an application role: pgrepl checks each route by logging in through it",
            "declare one under roles: (with password_env or password_file)",
        );
    }
}

/// `replication.synchronous`, `archive:` and the role and host settings that must not differ.
fn modes_section(
    c: &mut Checker,
    raw: &RawInventory,
    hosts: &[crate::inventory::model::Host],
) -> (
    Option<crate::inventory::SyncRule>,
    Option<crate::inventory::Archive>,
) {
    let synchronous = raw
        .replication
        .as_ref()
        .and_then(|r| r.value.synchronous.as_ref())
        .and_then(|s| modes::check_sync(c, s, hosts));
    let all_settings = settings_maps(raw);
    modes::check_per_role(c, &all_settings[1..]);
    let archive = raw
        .archive
        .as_ref()
        .and_then(|a| modes::check_archive(c, a, &all_settings));
    (synchronous, archive)
}

/// Every settings map of the file: `postgres.settings`, `primary_settings`, `replica_settings`,
/// then each host's.
pub(super) fn settings_maps(
    raw: &RawInventory,
) -> Vec<&std::collections::BTreeMap<String, Spanned<String>>> {
    [
        &raw.postgres.value.settings,
        &raw.postgres.value.primary_settings,
        &raw.postgres.value.replica_settings,
    ]
    .into_iter()
    .chain(raw.hosts.value.iter().map(|h| &h.value.settings))
    .collect()
}

/// Port 0 is refused wherever a port is given.
fn check_port(c: &mut Checker, p: &Spanned<u16>) {
    if p.value == 0 {
        c.at(
            p.referenced,
            "port 0 is not a port",
            "use a port from 1 to 65535",
        );
    }
}

/// An OS account name (`postgres.os_user`, `access.ssh.user`).
fn check_os_user(c: &mut Checker, u: &Spanned<String>) {
    if !is_os_user(&u.value) {
        c.at(u.referenced, format!("user name {:?} is not allowed", u.value), "use lower-case letters, digits, '_' and '-', starting with a letter or '_' (at most 32)");
    }
}

/// A path on this machine (identity file, password file): `~/` is expanded, a relative path is
/// taken from the inventory's directory.
fn check_local_path(c: &mut Checker, s: &Spanned<String>, inventory: &Path) -> Option<PathBuf> {
    let v = &s.value;
    if v.is_empty() || v.chars().any(char::is_control) {
        c.at(
            s.referenced,
            format!("path {v:?} is empty or contains a control character"),
            "give a file path on one line",
        );
        return None;
    }
    if v.starts_with('-') {
        c.at(
            s.referenced,
            format!("path {v:?} starts with '-'"),
            "use an absolute path or ./name",
        );
        return None;
    }
    Some(if let Some(rest) = v.strip_prefix("~/") {
        std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/"))
            .join(rest)
    } else if Path::new(v).is_absolute() {
        PathBuf::from(v)
    } else {
        inventory.parent().unwrap_or(Path::new(".")).join(v)
    })
}
