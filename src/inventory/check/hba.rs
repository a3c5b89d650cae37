//! `postgres.hba`: extra pg_hba.conf rules, appended after pgrepl's own. Types and methods are
//! PostgreSQL's, of the inventory's major (`oauth` only from 18, with the options and setting it
//! needs); a network line may not use `trust`, `password` or `md5`; options are `name="value"`; fields are held to the
//! characters pg_hba.conf reads without quoting. Like every checker, it judges values only: no YAML
//! reading, no I/O, no secrets.

use std::collections::BTreeMap;

use serde_saphyr::{Location, Spanned};

use super::Checker;
use crate::inventory::model::HbaRule;
use crate::inventory::raw::RawHba;
use crate::inventory::validators::{
    is_address, is_cidr, is_hba_names, is_hba_option_value, is_setting_name,
};

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

/// What a rule is checked against: the inventory's PostgreSQL major and `postgres.settings`.
pub(super) struct Cluster<'a> {
    /// `postgres.version`.
    pub version: u32,
    /// The accepted `postgres.settings`.
    pub settings: &'a BTreeMap<String, String>,
}

/// Checks every rule; the rules without a problem, in order.
pub(super) fn check(
    c: &mut Checker,
    raw: &[Spanned<RawHba>],
    version: u32,
    settings: &BTreeMap<String, String>,
) -> Vec<HbaRule> {
    let cluster = Cluster { version, settings };
    raw.iter()
        .filter_map(|r| check_rule(c, &r.value, r.referenced, &cluster))
        .collect()
}

/// One rule at `loc`; `None` when it has a problem.
fn check_rule(c: &mut Checker, r: &RawHba, loc: Location, cluster: &Cluster) -> Option<HbaRule> {
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
    } else if r.method.value == "oauth" {
        check_oauth(c, r, cluster);
    }
    let options = check_options(c, r);
    let network = r.kind.value != "local";
    if network && ["trust", "password"].contains(&r.method.value.as_str()) {
        c.at(r.method.referenced, format!("method {} on a network line lets anyone who reaches the port in, or sends passwords in clear", r.method.value), "use scram-sha-256 (or cert)");
    } else if network && r.method.value == "md5" {
        c.at(r.method.referenced, "method md5 on a network line: an MD5 hash stolen from the server logs in as the role (and PostgreSQL 18 deprecates it)", "use scram-sha-256 (or cert); reset the role's password so it is stored as a SCRAM verifier");
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
        options,
    })
}

/// `oauth` (PostgreSQL 18+): PostgreSQL refuses to load a pg_hba.conf whose oauth line lacks
/// `issuer` or `scope`, or when `oauth_validator_libraries` is not set.
fn check_oauth(c: &mut Checker, r: &RawHba, cluster: &Cluster) {
    let at = r.method.referenced;
    if cluster.version < OAUTH_SINCE {
        c.at(
            at,
            format!("pg_hba method oauth needs PostgreSQL {OAUTH_SINCE} or later; the inventory's postgres.version is {}", cluster.version),
            "use scram-sha-256 (or cert), or upgrade to PostgreSQL 18",
        );
        return;
    }
    for needed in ["issuer", "scope"] {
        if !r.options.contains_key(needed) {
            c.at(
                at,
                format!("pg_hba method oauth needs the option {needed} (PostgreSQL refuses the line without it)"),
                "add it under the rule's options: issuer (your identity provider's URL) and scope (e.g. openid)",
            );
        }
    }
    if cluster
        .settings
        .get("oauth_validator_libraries")
        .is_none_or(|v| v.trim().trim_matches('\'').is_empty())
    {
        c.at(
            at,
            "pg_hba method oauth needs postgres.settings.oauth_validator_libraries (PostgreSQL refuses the line without it)",
            "set postgres.settings.oauth_validator_libraries to your OAuth validator module",
        );
    }
}

/// The rule's `options`: names of `a-z 0-9 _ .`, values rendered in double quotes (see
/// [`is_hba_option_value`]).
fn check_options(c: &mut Checker, r: &RawHba) -> BTreeMap<String, String> {
    let mut options = BTreeMap::new();
    for (name, value) in &r.options {
        if !is_setting_name(name) {
            c.at(
                value.referenced,
                format!("pg_hba option name {name:?} is not allowed"),
                "use the option's name as PostgreSQL spells it, e.g. issuer or ldapserver",
            );
        } else if !is_hba_option_value(&value.value) {
            c.at(
                value.referenced,
                format!(
                    "pg_hba option {name} value {:?} is not allowed",
                    value.value
                ),
                "use letters, digits, spaces and _ . : / @ + , % = ~ - (at most 200 characters)",
            );
        } else {
            options.insert(name.clone(), value.value.clone());
        }
    }
    options
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
