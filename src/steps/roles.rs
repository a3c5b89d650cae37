//! The roles pgrepl manages on the primary: the replication role (`LOGIN REPLICATION`), the
//! rewind role (`LOGIN` with EXECUTE on the functions pg_rewind calls), the monitor role
//! (`LOGIN`, `pg_monitor`, no password: what `status` and `check` read as) and the
//! application roles; passwords sent only as SCRAM verifiers.

use crate::context::Context;
use crate::db::{Db, RoleInfo};
use crate::error::Error;
use crate::inventory::Secret;
use crate::pg::scram;

/// The functions pg_rewind calls on its source server: all the rewind role may run.
pub const REWIND_FUNCTIONS: &[&str] = &[
    "pg_catalog.pg_ls_dir(text, boolean, boolean)",
    "pg_catalog.pg_stat_file(text, boolean)",
    "pg_catalog.pg_read_binary_file(text)",
    "pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)",
];

/// What the monitor role may read beyond `pg_monitor`, for status's `auto_conf_override`:
/// `pg_file_settings` (superuser-only in PostgreSQL 13 to 18; PostgreSQL's docs say a view's
/// functions are checked against its user, hence its function too). It lists the lines of the
/// configuration files, whose values `pg_monitor` (`pg_read_all_settings`) sees already.
/// Nothing else is granted: the one other superuser-only read status made, `pg_read_file` of a
/// timeline history file, would let its holder read every file of the data directory, the
/// tables' files included; status reads that file through the transport instead.
pub const MONITOR_RELATIONS: &[&str] = &["pg_catalog.pg_file_settings"];

/// See [`MONITOR_RELATIONS`].
pub const MONITOR_FUNCTIONS: &[&str] = &["pg_catalog.pg_show_all_file_settings()"];

/// The monitor role's connection limit: a status or check holds one session per host.
pub const MONITOR_CONNECTION_LIMIT: i32 = 10;

/// What a login role pgrepl manages is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleKind {
    /// `replication.user`: `LOGIN REPLICATION`.
    Replication,
    /// `replication.rewind_user`: `LOGIN` and EXECUTE on [`REWIND_FUNCTIONS`].
    Rewind,
    /// The monitor role (`inventory::MONITOR_USER`): `LOGIN`, a member of `pg_monitor`, no
    /// password (peer authentication only), a connection limit, and [`MONITOR_RELATIONS`].
    Monitor,
    /// A `roles[]` entry: `LOGIN`; what it may do in its databases is the application's.
    Application,
}

impl RoleKind {
    /// The attribute list the role is created with (and reset to), and how it is described.
    fn attributes(self) -> (&'static str, &'static str) {
        match self {
            RoleKind::Replication => (
                "LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS",
                "LOGIN REPLICATION",
            ),
            RoleKind::Monitor => (
                // The limit is MONITOR_CONNECTION_LIMIT (a unit test holds them together).
                "LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 10",
                "LOGIN, pg_monitor",
            ),
            RoleKind::Rewind | RoleKind::Application => (
                "LOGIN NOREPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS",
                "LOGIN",
            ),
        }
    }

    /// Do the role's attributes differ from [`RoleKind::attributes`]?
    fn drifted(self, r: &RoleInfo) -> bool {
        let base =
            !r.login || r.replication != (self == RoleKind::Replication) || r.extra_privileges;
        base || (self == RoleKind::Monitor
            && (!r.inherit || r.conn_limit != MONITOR_CONNECTION_LIMIT))
    }
}

/// A login role pgrepl manages on the primary `on`, with the attributes of its `kind` and no
/// other; its password (`None` only for the monitor role, which has none) sent only as a SCRAM
/// verifier; its grants. Changes nothing when it matches. Returns the changes made (for the
/// run's summary).
pub async fn ensure_role(
    ctx: &Context<'_>,
    db: &Db,
    on: &str,
    user: &str,
    kind: RoleKind,
    password: Option<&Secret>,
) -> Result<Vec<String>, Error> {
    let p = on;
    let mut changes = Vec::new();
    let (attrs, what) = kind.attributes();
    let fail = |e: anyhow::Error| Error::step(p, "roles", format!("{user}: {e:#}"));
    match db.role(user).await.map_err(fail)? {
        None => {
            let v = password.map(|pw| scram::verifier(pw.expose()));
            db.create_role(user, attrs, v.as_deref())
                .await
                .map_err(fail)?;
            ctx.ui.info(format!("{p}: created role {user} ({what})"));
            changes.push(format!("{p}: role {user}"));
        }
        Some(r) => {
            if kind.drifted(&r) {
                db.alter_role(user, attrs).await.map_err(fail)?;
                ctx.ui
                    .info(format!("{p}: reset role {user} to {what} only"));
                changes.push(format!("{p}: role {user} attributes"));
            }
            let matches = match (password, r.verifier.as_deref()) {
                (Some(pw), Some(v)) => scram::matches(v, pw.expose()),
                (None, None) => true,
                _ => false,
            };
            if !matches {
                let v = password.map(|pw| scram::verifier(pw.expose()));
                db.set_role_verifier(user, v.as_deref())
                    .await
                    .map_err(fail)?;
                let did = if v.is_some() { "set" } else { "removed" };
                ctx.ui
                    .info(format!("{p}: {did} the password of role {user}"));
                changes.push(format!("{p}: role {user} password"));
            }
        }
    }
    changes.extend(grants(db, p, user, kind).await.map_err(fail)?);
    Ok(changes)
}

/// What the rewind and monitor roles are granted, when they miss it; the changes made.
async fn grants(db: &Db, on: &str, user: &str, kind: RoleKind) -> anyhow::Result<Vec<String>> {
    let mut changes = Vec::new();
    let functions = match kind {
        RoleKind::Rewind => REWIND_FUNCTIONS,
        RoleKind::Monitor => MONITOR_FUNCTIONS,
        RoleKind::Replication | RoleKind::Application => return Ok(changes),
    };
    if kind == RoleKind::Monitor {
        if !db.role(user).await?.is_some_and(|r| r.pg_monitor) {
            db.grant_role("pg_monitor", user).await?;
            changes.push(format!("{on}: grant pg_monitor to {user}"));
        }
        let missing = db.missing_select(user, MONITOR_RELATIONS).await?;
        if !missing.is_empty() {
            db.grant_select(user, &missing).await?;
            changes.push(format!(
                "{on}: grant SELECT on {} to {user}",
                missing.join(", ")
            ));
        }
    }
    let missing = db.missing_execute(user, functions).await?;
    if !missing.is_empty() {
        db.grant_execute(user, &missing).await?;
        changes.push(format!(
            "{on}: grant EXECUTE on {} to {user}",
            missing.join(", ")
        ));
    }
    Ok(changes)
}

/// An application database (`databases[]`) on the primary `on`: created with its owner when
/// missing, its owner reset when it differs. Returns the changes made.
pub async fn ensure_database(
    ctx: &Context<'_>,
    db: &Db,
    on: &str,
    d: &crate::inventory::Database,
) -> Result<Vec<String>, Error> {
    let fail = |e: anyhow::Error| Error::step(on, "databases", format!("{}: {e:#}", d.name));
    match db.database_owner(&d.name).await.map_err(fail)? {
        None => {
            db.create_database(&d.name, &d.owner).await.map_err(fail)?;
            ctx.ui.info(format!(
                "{on}: created database {} (owner {})",
                d.name, d.owner
            ));
            Ok(vec![format!("{on}: database {}", d.name)])
        }
        Some(o) if o != d.owner => {
            db.alter_database_owner(&d.name, &d.owner)
                .await
                .map_err(fail)?;
            ctx.ui.info(format!(
                "{on}: database {} now owned by {}",
                d.name, d.owner
            ));
            Ok(vec![format!("{on}: database {} owner", d.name)])
        }
        Some(_) => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(f: impl FnOnce(&mut RoleInfo)) -> RoleInfo {
        let mut r = RoleInfo {
            login: true,
            replication: false,
            extra_privileges: false,
            verifier: None,
            inherit: true,
            conn_limit: MONITOR_CONNECTION_LIMIT,
            pg_monitor: true,
        };
        f(&mut r);
        r
    }

    #[test]
    fn the_monitor_role_is_reset_when_any_attribute_drifted() {
        let (attrs, _) = RoleKind::Monitor.attributes();
        assert!(attrs.ends_with(&format!("CONNECTION LIMIT {MONITOR_CONNECTION_LIMIT}")));
        for a in [
            "NOSUPERUSER",
            "NOCREATEDB",
            "NOCREATEROLE",
            "NOREPLICATION",
            "NOBYPASSRLS",
        ] {
            assert!(attrs.split(' ').any(|w| w == a), "{a} missing in {attrs}");
        }
        assert!(!RoleKind::Monitor.drifted(&role(|_| ())));
        for drift in [
            role(|r| r.login = false),
            role(|r| r.replication = true),
            role(|r| r.extra_privileges = true),
            role(|r| r.inherit = false),
            role(|r| r.conn_limit = 0),
            role(|r| r.conn_limit = -1),
        ] {
            assert!(RoleKind::Monitor.drifted(&drift), "{drift:?}");
        }
        // The other roles keep their connection limit and INHERIT as they are.
        assert!(!RoleKind::Rewind.drifted(&role(|r| r.conn_limit = -1)));
        assert!(RoleKind::Replication.drifted(&role(|_| ())));
        assert!(!RoleKind::Replication.drifted(&role(|r| r.replication = true)));
    }
}
