//! From the raw file to the model: one checker per section, each resolving its part (defaults
//! filled in) and pushing every problem it finds, with the file position of the value at fault
//! and one fix, into a `Checker`. `build` runs them in file order and yields an `Inventory` only
//! when nothing was found.
//!
//! Checkers judge values; they must not read the YAML (that is `raw`), contact anything or read
//! secrets. Character-set rules live in `validators`, shared by every section.

mod access;
mod hba;
mod hosts;
mod postgres;
mod replication;
mod routers;
mod settings;
mod status;
mod timeouts;
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
    let defaults = hosts::Defaults::new(&pg, &raw.postgres.value, ssh.port);
    let (mut hosts, names) = hosts::check(c, &raw.hosts.value, &defaults);
    topology::check(c, &raw.hosts, &mut hosts, &names, transport);
    let around = routers::Around {
        hosts: &hosts,
        names: &names,
        ssh_port: ssh.port,
        transport,
        databases: Vec::new(),
    };
    let routers = routers::check(c, &raw.routers, &around);

    let password = rep.password?;
    Some(Inventory {
        file: path.to_path_buf(),
        cluster: pg.cluster,
        version: pg.version,
        os_user: pg.os_user,
        locale: pg.locale,
        settings,
        setting_positions,
        hba,
        replication_user: rep.user,
        rewind_user: rep.rewind_user,
        password,
        transport,
        ssh,
        timeouts,
        thresholds,
        hosts,
        roles: Vec::new(),
        databases: Vec::new(),
        routers,
    })
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
