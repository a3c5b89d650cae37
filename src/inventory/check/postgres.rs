//! `cluster` and the scalar keys of `postgres:` (version, os_user, locale, port). The paths
//! under `postgres:` are templates resolved per host (`hosts`); settings and hba rules have
//! their own checkers. Like every checker, it judges values only: no YAML reading, no I/O, no
//! secrets.

use serde_saphyr::Spanned;

use super::{check_os_user, check_port, Checker};
use crate::inventory::raw::RawPostgres;
use crate::inventory::validators::{is_cluster_name, is_locale};

/// The cluster-wide values, defaults filled in.
pub(super) struct Postgres {
    /// `cluster`.
    pub cluster: String,
    /// Whether `cluster` passed its own check: only then is it substituted for `{cluster}`
    /// when a path is checked.
    pub cluster_ok: bool,
    /// `postgres.version`.
    pub version: u32,
    /// `postgres.os_user` (default `postgres`).
    pub os_user: String,
    /// `postgres.locale` (default `C.UTF-8`).
    pub locale: String,
    /// `postgres.port` (default 5432): every host's port unless it sets its own.
    pub port: u16,
}

/// Checks `cluster` and `postgres:`'s scalars, in file order.
pub(super) fn check(c: &mut Checker, cluster: &Spanned<String>, pg: &RawPostgres) -> Postgres {
    let cluster_ok = is_cluster_name(&cluster.value);
    if !cluster_ok {
        c.at(
            cluster.referenced,
            format!("cluster name {:?} is not allowed", cluster.value),
            "use 1-40 characters: lower-case letters, digits, '_' or '-', starting with a letter",
        );
    }
    let version = pg.version.value;
    if !crate::pg::is_supported_major(version) {
        c.at(
            pg.version.referenced,
            format!("PostgreSQL {version} is not supported"),
            format!(
                "pgrepl supports PostgreSQL {}",
                crate::pg::supported_majors_text()
            ),
        );
    }
    if let Some(u) = &pg.os_user {
        check_os_user(c, u);
    }
    if let Some(l) = &pg.locale {
        if !is_locale(&l.value) {
            c.at(
                l.referenced,
                format!("locale {:?} is not allowed", l.value),
                "use a locale name such as C.UTF-8 or en_US.UTF-8",
            );
        }
    }
    if let Some(p) = &pg.port {
        check_port(c, p);
    }
    Postgres {
        cluster: cluster.value.clone(),
        cluster_ok,
        version,
        os_user: value_or(&pg.os_user, "postgres"),
        locale: value_or(&pg.locale, "C.UTF-8"),
        port: pg.port.as_ref().map(|p| p.value).unwrap_or(5432),
    }
}

/// The value given, or the default.
fn value_or(v: &Option<Spanned<String>>, default: &str) -> String {
    v.as_ref()
        .map(|s| s.value.clone())
        .unwrap_or_else(|| default.to_string())
}
