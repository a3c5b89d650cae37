//! `roles:` and `databases:`: the application login roles and databases pgrepl creates on the
//! primary. Names are plain SQL identifiers; a role's password comes from `password_env` or
//! `password_file` like the replication password (an inline `password:` is refused); a
//! database's owner is a declared role.

use std::collections::BTreeSet;
use std::path::Path;

use serde_saphyr::Spanned;

use super::replication::password_source;
use super::Checker;
use crate::inventory::apps::{AppRole, Database};
use crate::inventory::raw::{RawDatabase, RawRole};
use crate::inventory::validators::{is_cidr, is_sql_role};

/// Role names pgrepl keeps for itself, beside the superuser (`os_user`) and the monitor role
/// (`inventory::MONITOR_USER`).
pub(super) struct Reserved<'a> {
    /// `postgres.os_user`.
    pub os_user: &'a str,
    /// `replication.user`.
    pub replication_user: &'a str,
    /// `replication.rewind_user`.
    pub rewind_user: &'a str,
}

/// Checks `roles:`; the roles that passed (an entry with a problem is reported and left out).
pub(super) fn check_roles(
    c: &mut Checker,
    raw: &[Spanned<RawRole>],
    reserved: &Reserved,
    inventory: &Path,
) -> Vec<AppRole> {
    let mut seen = BTreeSet::new();
    let mut roles = Vec::new();
    for r in raw {
        let v = &r.value;
        let name = &v.name;
        if !is_sql_role(&name.value) {
            c.at(name.referenced, format!("role name {:?} is not allowed", name.value), "use lower-case letters, digits and '_', starting with a letter or '_' (at most 63)");
        } else if [
            reserved.os_user,
            reserved.replication_user,
            reserved.rewind_user,
            crate::inventory::MONITOR_USER,
        ]
        .contains(&name.value.as_str())
            || name.value.starts_with("pg_")
        {
            c.at(
                name.referenced,
                format!("role {:?} is pgrepl's or PostgreSQL's own", name.value),
                "give the application its own role name",
            );
        } else if !seen.insert(name.value.clone()) {
            c.at(
                name.referenced,
                format!("role {:?} is declared twice", name.value),
                "keep one of the two entries",
            );
        }
        if let Some(p) = &v.password {
            c.at(
                p.referenced,
                "passwords are never written in the inventory",
                "use password_env: NAME or password_file: /path/to/0600-file",
            );
        }
        let keys = (v.password_env.as_ref(), v.password_file.as_ref());
        let password = password_source(c, keys, v.password.is_some(), r.referenced, inventory);
        for cl in &v.clients {
            if !is_cidr(&cl.value) {
                c.at(
                    cl.referenced,
                    format!("{:?} is not a network in CIDR form", cl.value),
                    "write an address and a prefix length, e.g. 10.0.0.0/24 or 192.0.2.7/32",
                );
            }
        }
        if let Some(password) = password {
            roles.push(AppRole {
                name: name.value.clone(),
                password,
                clients: v.clients.iter().map(|c| c.value.clone()).collect(),
            });
        }
    }
    roles
}

/// Checks `databases:` against the declared `roles`.
pub(super) fn check_databases(
    c: &mut Checker,
    raw: &[Spanned<RawDatabase>],
    role_names: &[&str],
) -> Vec<Database> {
    let mut seen = BTreeSet::new();
    let mut dbs = Vec::new();
    for d in raw {
        let name = &d.value.name;
        if !is_sql_role(&name.value) {
            c.at(name.referenced, format!("database name {:?} is not allowed", name.value), "use lower-case letters, digits and '_', starting with a letter or '_' (at most 63)");
        } else if ["postgres", "template0", "template1"].contains(&name.value.as_str()) {
            c.at(
                name.referenced,
                format!("database {:?} is PostgreSQL's own", name.value),
                "give the application its own database",
            );
        } else if !seen.insert(name.value.clone()) {
            c.at(
                name.referenced,
                format!("database {:?} is declared twice", name.value),
                "keep one of the two entries",
            );
        }
        let owner = match (&d.value.owner, role_names.first()) {
            (Some(o), _) if role_names.contains(&o.value.as_str()) => o.value.clone(),
            (Some(o), _) => {
                c.at(
                    o.referenced,
                    format!("owner {:?} is not one of roles:", o.value),
                    "name a role declared under roles:",
                );
                continue;
            }
            (None, Some(first)) => first.to_string(),
            (None, None) => {
                c.at(
                    d.referenced,
                    format!(
                        "database {:?} has no owner and no role is declared",
                        name.value
                    ),
                    "declare its owner under roles: (with password_env or password_file)",
                );
                continue;
            }
        };
        dbs.push(Database {
            name: name.value.clone(),
            owner,
        });
    }
    dbs
}
