//! The roles pgrepl manages on the primary: the replication role (`LOGIN REPLICATION`) and the
//! rewind role (`LOGIN` with EXECUTE on the functions pg_rewind calls), their passwords sent
//! only as SCRAM verifiers.

use crate::context::Context;
use crate::db::Db;
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

/// What a login role pgrepl manages is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleKind {
    /// `replication.user`: `LOGIN REPLICATION`.
    Replication,
    /// `replication.rewind_user`: `LOGIN` and EXECUTE on [`REWIND_FUNCTIONS`].
    Rewind,
    /// A `roles[]` entry: `LOGIN`; what it may do in its databases is the application's.
    Application,
}

/// A login role pgrepl manages on the primary `on`: `LOGIN REPLICATION` (replication) or
/// `LOGIN` (rewind, application), and no other attribute; its password sent only as a SCRAM
/// verifier. Changes nothing when it matches. Returns the changes made (for the run's summary).
pub async fn ensure_role(
    ctx: &Context<'_>,
    db: &Db,
    on: &str,
    user: &str,
    kind: RoleKind,
    password: &Secret,
) -> Result<Vec<String>, Error> {
    let p = on;
    let mut changes = Vec::new();
    let replication = kind == RoleKind::Replication;
    let (attrs, what) = if replication {
        (
            "LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS",
            "LOGIN REPLICATION",
        )
    } else {
        (
            "LOGIN NOREPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS",
            "LOGIN",
        )
    };
    let fail = |e: anyhow::Error| Error::step(p, "roles", format!("{user}: {e:#}"));
    match db.role(user).await.map_err(fail)? {
        None => {
            let v = scram::verifier(password.expose());
            db.create_role(user, attrs, &v).await.map_err(fail)?;
            ctx.ui.info(format!("{p}: created role {user} ({what})"));
            changes.push(format!("{p}: role {user}"));
        }
        Some(r) => {
            if !r.login || r.replication != replication || r.extra_privileges {
                db.alter_role(user, attrs).await.map_err(fail)?;
                ctx.ui
                    .info(format!("{p}: reset role {user} to {what} only"));
                changes.push(format!("{p}: role {user} attributes"));
            }
            if !r
                .verifier
                .as_deref()
                .is_some_and(|v| scram::matches(v, password.expose()))
            {
                let v = scram::verifier(password.expose());
                db.set_role_verifier(user, &v).await.map_err(fail)?;
                ctx.ui.info(format!("{p}: set the password of role {user}"));
                changes.push(format!("{p}: role {user} password"));
            }
        }
    }
    if kind == RoleKind::Rewind {
        let missing = db
            .missing_execute(user, REWIND_FUNCTIONS)
            .await
            .map_err(fail)?;
        if !missing.is_empty() {
            db.grant_execute(user, &missing).await.map_err(fail)?;
            changes.push(format!(
                "{p}: grant EXECUTE on {} to {user}",
                missing.join(", ")
            ));
        }
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
