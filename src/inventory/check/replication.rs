//! `replication:`: the replication role, the rewind role and where the password comes from.
//! The password itself is never in the inventory (an inline `password:` is refused) and is not
//! read here: `secrets` reads it when an operation needs it.

use std::path::Path;

use serde_saphyr::{Location, Spanned};

use super::{check_local_path, Checker};
use crate::inventory::raw::RawReplication;
use crate::inventory::secrets::PasswordSource;
use crate::inventory::validators::{is_env_name, is_sql_role};
use crate::inventory::MONITOR_USER;

/// The replication section, defaults filled in.
pub(super) struct Replication {
    /// `replication.user` (default `replicator`).
    pub user: String,
    /// `replication.rewind_user` (default `pgrepl_rewind`).
    pub rewind_user: String,
    /// `None` when the section is missing or its source has a problem (reported).
    pub password: Option<PasswordSource>,
}

/// Checks `replication:`; a missing section is reported at `cluster_loc` (the file's first
/// key). `os_user` is the superuser, which neither role may be; `inventory` is the file, for
/// a relative password file.
pub(super) fn check(
    c: &mut Checker,
    raw: Option<&Spanned<RawReplication>>,
    cluster_loc: Location,
    os_user: &str,
    inventory: &Path,
) -> Replication {
    let Some(rep) = raw else {
        c.at(
            cluster_loc,
            "the inventory has no replication section",
            "add replication: with password_env or password_file (see inventories/example.yml)",
        );
        return Replication {
            user: "replicator".into(),
            rewind_user: "pgrepl_rewind".into(),
            password: None,
        };
    };
    let r = &rep.value;
    let (user, rewind_user) = check_roles(c, r, rep.referenced, os_user);
    if let Some(p) = &r.password {
        c.at(
            p.referenced,
            "passwords are never written in the inventory",
            "use replication.password_env: NAME or replication.password_file: /path/to/0600-file",
        );
    }
    let password = password_source(
        c,
        (r.password_env.as_ref(), r.password_file.as_ref()),
        r.password.is_some(),
        rep.referenced,
        inventory,
    );
    Replication {
        user,
        rewind_user,
        password,
    }
}

/// The replication and rewind roles: SQL names that need no quoting, distinct from each other,
/// from the monitor role and from the superuser.
fn check_roles(
    c: &mut Checker,
    r: &RawReplication,
    section: Location,
    os_user: &str,
) -> (String, String) {
    let user = r
        .user
        .as_ref()
        .map(|u| u.value.clone())
        .unwrap_or_else(|| "replicator".into());
    if let Some(u) = &r.user {
        if !is_sql_role(&u.value) {
            c.at(u.referenced, format!("replication user {:?} is not allowed", u.value), "use lower-case letters, digits and '_', starting with a letter or '_' (at most 63)");
        }
    }
    if let Some(u) = r.user.as_ref().filter(|u| u.value == MONITOR_USER) {
        c.at(
            u.referenced,
            format!("{MONITOR_USER} is pgrepl's monitor role"),
            "use a dedicated role such as replicator",
        );
    }
    let mut rewind_user = "pgrepl_rewind".to_string();
    if let Some(u) = &r.rewind_user {
        if !is_sql_role(&u.value)
            || [user.as_str(), os_user, MONITOR_USER].contains(&u.value.as_str())
        {
            c.at(u.referenced, format!("rewind user {:?} is not allowed", u.value), "use a dedicated role name (lower-case letters, digits, '_'), not the replication user, the monitor role or the superuser");
        }
        rewind_user = u.value.clone();
    }
    if user == os_user {
        let loc = r.user.as_ref().map(|u| u.referenced).unwrap_or(section);
        c.at(
            loc,
            format!("the replication user must not be the superuser {os_user}"),
            "use a dedicated role such as replicator",
        );
    }
    (user, rewind_user)
}

/// Exactly one of `password_env` and `password_file` (`keys`), in the section at `section`;
/// `inline` says an inline `password:` was already reported there.
pub(super) fn password_source(
    c: &mut Checker,
    keys: (Option<&Spanned<String>>, Option<&Spanned<String>>),
    inline: bool,
    section: Location,
    inventory: &Path,
) -> Option<PasswordSource> {
    match keys {
        (Some(e), None) => {
            if !is_env_name(&e.value) {
                c.at(
                    e.referenced,
                    format!("{:?} is not an environment variable name", e.value),
                    "use letters, digits and '_'",
                );
            }
            Some(PasswordSource::Env {
                name: e.value.clone(),
                line: e.referenced.line(),
                column: e.referenced.column(),
            })
        }
        (None, Some(f)) => check_local_path(c, f, inventory).map(|p| PasswordSource::File {
            path: p,
            line: f.referenced.line(),
            column: f.referenced.column(),
        }),
        (Some(_), Some(f)) => {
            c.at(
                f.referenced,
                "both password_env and password_file are set",
                "keep one of them",
            );
            None
        }
        (None, None) => {
            if !inline {
                c.at(
                    section,
                    "no password source is given",
                    "add password_env: NAME or password_file: /path",
                );
            }
            None
        }
    }
}
