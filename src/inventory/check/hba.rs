//! `postgres.hba`: extra pg_hba.conf rules, appended after pgrepl's own. Types and methods are
//! PostgreSQL's, of the inventory's major (`oauth` only from 18); a network line may not use
//! `trust` or `password`; fields are held to the
//! characters pg_hba.conf reads without quoting. Like every checker, it judges values only: no YAML
//! reading, no I/O, no secrets.

use serde_saphyr::{Location, Spanned};

use super::Checker;
use crate::inventory::model::HbaRule;
use crate::inventory::raw::RawHba;
use crate::inventory::validators::{is_address, is_cidr, is_hba_names};

/// The connection types pg_hba.conf knows.
const TYPES: &[&str] = &[
    "local",
    "host",
    "hostssl",
    "hostnossl",
    "hostgssenc",
    "hostnogssenc",
];

/// The authentication methods pg_hba.conf knows.
const METHODS: &[&str] = &[
    "scram-sha-256",
    "md5",
    "peer",
    "ident",
    "cert",
    "gss",
    "sspi",
    "ldap",
    "radius",
    "pam",
    "bsd",
    "reject",
    "trust",
    "password",
    "oauth",
];

/// `oauth` (OAuth 2.0 bearer tokens) exists in pg_hba.conf from PostgreSQL 18 on.
const OAUTH_SINCE: u32 = 18;

/// Checks every rule; the rules without a problem, in order.
/// `version` is the inventory's PostgreSQL major.
pub(super) fn check(c: &mut Checker, raw: &[Spanned<RawHba>], version: u32) -> Vec<HbaRule> {
    raw.iter()
        .filter_map(|r| check_rule(c, &r.value, r.referenced, version))
        .collect()
}

/// One rule at `loc`; `None` when it has a problem.
fn check_rule(c: &mut Checker, r: &RawHba, loc: Location, version: u32) -> Option<HbaRule> {
    let before = c.count();
    if !TYPES.contains(&r.kind.value.as_str()) {
        c.at(
            r.kind.referenced,
            format!("pg_hba type {:?} is unknown", r.kind.value),
            format!("use one of: {}", TYPES.join(", ")),
        );
    }
    if !METHODS.contains(&r.method.value.as_str()) {
        c.at(
            r.method.referenced,
            format!("pg_hba method {:?} is unknown", r.method.value),
            "use scram-sha-256 for password logins",
        );
    } else if r.method.value == "oauth" && version < OAUTH_SINCE {
        c.at(
            r.method.referenced,
            format!("pg_hba method oauth needs PostgreSQL {OAUTH_SINCE} or later; the inventory's postgres.version is {version}"),
            "use scram-sha-256 (or cert), or upgrade to PostgreSQL 18",
        );
    }
    let network = r.kind.value != "local";
    if network && ["trust", "password"].contains(&r.method.value.as_str()) {
        c.at(r.method.referenced, format!("method {} on a network line lets anyone who reaches the port in, or sends passwords in clear", r.method.value), "use scram-sha-256 (or cert)");
    }
    for f in [&r.database, &r.user] {
        if !is_hba_names(&f.value) {
            c.at(
                f.referenced,
                format!("pg_hba field {:?} is not allowed", f.value),
                "use names, 'all', or comma-separated names",
            );
        }
    }
    let address = check_address(c, r.address.as_ref(), network, loc);
    (c.count() == before).then(|| HbaRule {
        kind: r.kind.value.clone(),
        database: r.database.value.clone(),
        user: r.user.value.clone(),
        address,
        method: r.method.value.clone(),
    })
}

/// The address field: required on a network rule, refused on a local one.
fn check_address(
    c: &mut Checker,
    address: Option<&Spanned<String>>,
    network: bool,
    loc: Location,
) -> String {
    match (address, network) {
        (Some(a), true) => {
            let ok = a.value == "all"
                || a.value == "samehost"
                || a.value == "samenet"
                || is_cidr(&a.value)
                || is_address(&a.value);
            if !ok {
                c.at(
                    a.referenced,
                    format!(
                        "pg_hba address {:?} is not an address, CIDR block or host name",
                        a.value
                    ),
                    "use e.g. 10.0.0.0/24",
                );
            }
            a.value.clone()
        }
        (None, true) => {
            c.at(
                loc,
                "a network pg_hba rule needs an address",
                "add address: e.g. 10.0.0.0/24",
            );
            String::new()
        }
        (Some(a), false) => {
            c.at(
                a.referenced,
                "a local pg_hba rule has no address",
                "remove address:",
            );
            String::new()
        }
        (None, false) => String::new(),
    }
}
