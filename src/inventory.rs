//! The inventory: one YAML file describing one cluster. Loading parses it strictly (unknown and
//! duplicate keys are errors) and validates every value before anything is contacted; each
//! problem names file:line:column and says how to fix it. Values that reach a shell, ssh or SQL
//! are held to narrow character sets here, and still quoted where they are used.
//!
//! The replication password is never inline: it comes from an environment variable or a 0600
//! file, is read only when an operation needs it, and its `Debug` output is redacted.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::{Location, Spanned};

use crate::error::{Error, InventoryIssue};

// ---------------------------------------------------------------------------------------------
// The file as written (private): every key known, locations kept where a check may fail.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInventory {
    cluster: Spanned<String>,
    postgres: Spanned<RawPostgres>,
    #[serde(default)]
    replication: Option<Spanned<RawReplication>>,
    #[serde(default)]
    access: Option<Spanned<RawAccess>>,
    #[serde(default)]
    timeouts: Option<RawTimeouts>,
    #[serde(default)]
    status: Option<RawStatus>,
    hosts: Spanned<Vec<Spanned<RawHost>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStatus {
    #[serde(default)]
    lag_warning_bytes: Option<Spanned<String>>,
    #[serde(default)]
    lag_critical_bytes: Option<Spanned<String>>,
    #[serde(default)]
    lag_warning_seconds: Option<Spanned<f64>>,
    #[serde(default)]
    lag_critical_seconds: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPostgres {
    version: Spanned<u32>,
    #[serde(default)]
    os_user: Option<Spanned<String>>,
    #[serde(default)]
    bin_dir: Option<Spanned<String>>,
    #[serde(default)]
    data_dir: Option<Spanned<String>>,
    #[serde(default)]
    socket_dir: Option<Spanned<String>>,
    #[serde(default)]
    port: Option<Spanned<u16>>,
    #[serde(default)]
    locale: Option<Spanned<String>>,
    #[serde(default)]
    settings: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    hba: Vec<Spanned<RawHba>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHba {
    #[serde(rename = "type")]
    kind: Spanned<String>,
    database: Spanned<String>,
    user: Spanned<String>,
    #[serde(default)]
    address: Option<Spanned<String>>,
    method: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReplication {
    #[serde(default)]
    user: Option<Spanned<String>>,
    #[serde(default)]
    password_env: Option<Spanned<String>>,
    #[serde(default)]
    password_file: Option<Spanned<String>>,
    #[serde(default)]
    rewind_user: Option<Spanned<String>>,
    /// Recognised only to refuse it with a useful message.
    #[serde(default)]
    password: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccess {
    #[serde(default)]
    transport: Option<Spanned<TransportKind>>,
    #[serde(default)]
    ssh: Option<RawSsh>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSsh {
    #[serde(default)]
    user: Option<Spanned<String>>,
    #[serde(default)]
    port: Option<Spanned<u16>>,
    #[serde(default)]
    identity_file: Option<Spanned<String>>,
    #[serde(default)]
    known_hosts_file: Option<Spanned<String>>,
    #[serde(default)]
    config_file: Option<Spanned<String>>,
    #[serde(default)]
    host_keys: Option<HostKeyPolicy>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTimeouts {
    #[serde(default)]
    connect: Option<u64>,
    #[serde(default)]
    start: Option<u64>,
    #[serde(default)]
    streaming: Option<u64>,
    #[serde(default)]
    status: Option<u64>,
    #[serde(default)]
    promote: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    name: Spanned<String>,
    address: Spanned<String>,
    role: Spanned<Role>,
    #[serde(default)]
    port: Option<Spanned<u16>>,
    #[serde(default)]
    upstream: Option<Spanned<String>>,
    #[serde(default)]
    slot: Option<Spanned<String>>,
    #[serde(default)]
    data_dir: Option<Spanned<String>>,
    #[serde(default)]
    bin_dir: Option<Spanned<String>>,
    #[serde(default)]
    socket_dir: Option<Spanned<String>>,
    #[serde(default)]
    ssh_host: Option<Spanned<String>>,
    #[serde(default)]
    ssh_port: Option<Spanned<u16>>,
}

// ---------------------------------------------------------------------------------------------
// The validated model (public).

/// A host's role as the inventory declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Primary,
    Replica,
}

/// How hosts are reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    Ssh,
    Local,
}

/// What to do with a host key that is not in known_hosts yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostKeyPolicy {
    /// Refuse unknown and changed keys (default).
    Strict,
    /// Trust an unknown key on first use and record it; still refuse a changed key.
    AcceptNew,
}

/// A validated inventory.
#[derive(Debug, Clone)]
pub struct Inventory {
    pub file: PathBuf,
    pub cluster: String,
    pub version: u32,
    pub os_user: String,
    pub locale: String,
    /// Extra postgresql.conf settings (sorted).
    pub settings: BTreeMap<String, String>,
    /// Extra pg_hba.conf rules, in order.
    pub hba: Vec<HbaRule>,
    pub replication_user: String,
    /// The role pg_rewind logs in as: LOGIN and EXECUTE on four file functions, nothing more.
    pub rewind_user: String,
    pub password: PasswordSource,
    pub transport: TransportKind,
    pub ssh: SshSettings,
    pub timeouts: Timeouts,
    /// `status` lag thresholds.
    pub thresholds: crate::health::Thresholds,
    pub hosts: Vec<Host>,
}

/// One extra pg_hba.conf rule.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HbaRule {
    #[serde(rename = "type")]
    pub kind: String,
    pub database: String,
    pub user: String,
    pub address: String,
    pub method: String,
}

/// SSH settings shared by all hosts.
#[derive(Debug, Clone)]
pub struct SshSettings {
    pub user: String,
    pub port: u16,
    pub identity_file: Option<PathBuf>,
    pub known_hosts_file: Option<PathBuf>,
    pub config_file: Option<PathBuf>,
    pub host_keys: HostKeyPolicy,
}

/// Deadlines, each named after its inventory key in error messages.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// `timeouts.connect`: reaching a host (ssh) or its server (SQL).
    pub connect: Duration,
    /// `timeouts.start`: a server start or restart.
    pub start: Duration,
    /// `timeouts.streaming`: replicas streaming after init.
    pub streaming: Duration,
    /// `timeouts.status`: each host's whole probe in `status` (connect and queries).
    pub status: Duration,
    /// `timeouts.promote`: a promoted server accepting writes.
    pub promote: Duration,
}

/// One host, with every default resolved.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Host {
    pub name: String,
    pub address: String,
    pub port: u16,
    pub role: Role,
    /// The host this replica streams from (None for the primary).
    pub upstream: Option<String>,
    /// The replication slot this replica uses on its upstream.
    pub slot: String,
    pub data_dir: String,
    pub bin_dir: String,
    pub socket_dir: String,
    /// The 0600 password file the replica's walreceiver reads (`passfile=`).
    pub passfile: String,
    /// pg_ctl's log file.
    pub log_file: String,
    /// The ssh destination (defaults to `address`).
    pub ssh_host: String,
    pub ssh_port: u16,
}

/// Where the replication password comes from.
#[derive(Clone)]
pub enum PasswordSource {
    Env {
        name: String,
        line: u64,
        column: u64,
    },
    File {
        path: PathBuf,
        line: u64,
        column: u64,
    },
}

impl std::fmt::Debug for PasswordSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PasswordSource::Env { name, .. } => write!(f, "Env({name})"),
            PasswordSource::File { path, .. } => write!(f, "File({})", path.display()),
        }
    }
}

/// A password. `Debug` and `Display` never show it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// The clear text, for writing into a 0600 file or computing a verifier. Nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Inventory {
    pub fn primary(&self) -> &Host {
        self.hosts
            .iter()
            .find(|h| h.role == Role::Primary)
            .expect("validated: exactly one primary")
    }
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }
    /// The inventory as it stands once `new_primary` is the primary: it has no upstream; the old
    /// primary, and every replica that followed the old or the new primary, follow it; cascading
    /// replicas keep their upstream. Every operation renders from this live topology.
    pub fn with_primary(&self, new_primary: &str) -> Inventory {
        let old = self.primary().name.clone();
        let mut inv = self.clone();
        for h in &mut inv.hosts {
            if h.name == new_primary {
                h.role = Role::Primary;
                h.upstream = None;
            } else {
                h.role = Role::Replica;
                if h.upstream.is_none()
                    || h.upstream.as_deref() == Some(old.as_str())
                    || h.upstream.as_deref() == Some(new_primary)
                {
                    h.upstream = Some(new_primary.to_string());
                }
            }
        }
        inv
    }

    pub fn replicas(&self) -> impl Iterator<Item = &Host> {
        self.hosts.iter().filter(|h| h.role == Role::Replica)
    }
    /// The replicas whose upstream is `name`.
    pub fn followers_of<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Host> + 'a {
        self.replicas()
            .filter(move |h| h.upstream.as_deref() == Some(name))
    }
    /// Replicas grouped in waves: each wave's upstreams are all in earlier waves (or the primary).
    pub fn replica_waves(&self) -> Vec<Vec<&Host>> {
        let mut done: BTreeSet<&str> = [self.primary().name.as_str()].into();
        let mut left: Vec<&Host> = self.replicas().collect();
        let mut waves = Vec::new();
        while !left.is_empty() {
            let (ready, rest): (Vec<&Host>, Vec<&Host>) = left
                .into_iter()
                .partition(|h| done.contains(h.upstream.as_deref().unwrap_or("")));
            assert!(!ready.is_empty(), "validated: upstreams form a tree");
            done.extend(ready.iter().map(|h| h.name.as_str()));
            waves.push(ready);
            left = rest;
        }
        waves
    }

    /// Reads the replication password from its source, refusing a password file that group or
    /// others can read, and an empty password.
    pub fn replication_password(&self) -> Result<Secret, Error> {
        let fail = |line, column, message: String, hint: &str| Error::Inventory {
            file: self.file.display().to_string(),
            issues: vec![InventoryIssue {
                line,
                column,
                message,
                hint: hint.to_string(),
            }],
        };
        let pw = match &self.password {
            PasswordSource::Env { name, line, column } => match std::env::var(name) {
                Ok(v) if !v.is_empty() => v,
                _ => {
                    return Err(fail(
                        *line,
                        *column,
                        format!("replication.password_env names {name}, which is not set or empty"),
                        &format!("export {name}=<password> before running pgrepl, or use replication.password_file"),
                    ))
                }
            },
            PasswordSource::File { path, line, column } => {
                use std::os::unix::fs::MetadataExt;
                let meta = std::fs::metadata(path).map_err(|e| {
                    fail(*line, *column, format!("cannot read password file {}: {e}", path.display()), "create it with mode 0600")
                })?;
                if meta.mode() & 0o077 != 0 {
                    return Err(fail(
                        *line,
                        *column,
                        format!(
                            "password file {} has mode {:04o}; group and others must have no access",
                            path.display(),
                            meta.mode() & 0o7777
                        ),
                        &format!("chmod 600 {}", path.display()),
                    ));
                }
                let text = std::fs::read_to_string(path).map_err(|e| {
                    fail(*line, *column, format!("cannot read password file {}: {e}", path.display()), "check its owner")
                })?;
                text.lines().next().unwrap_or("").to_string()
            }
        };
        if pw.is_empty() || pw.chars().any(|c| c.is_control()) {
            let (line, column) = match &self.password {
                PasswordSource::Env { line, column, .. }
                | PasswordSource::File { line, column, .. } => (*line, *column),
            };
            return Err(fail(
                line,
                column,
                "the replication password is empty or contains control characters".into(),
                "use a non-empty password on one line",
            ));
        }
        Ok(Secret(pw))
    }
}

// ---------------------------------------------------------------------------------------------
// Loading and validation.

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
];

const DEFAULT_TIMEOUT_CONNECT: u64 = 10;
const DEFAULT_TIMEOUT_START: u64 = 120;
const DEFAULT_TIMEOUT_STREAMING: u64 = 60;
const DEFAULT_TIMEOUT_STATUS: u64 = 5;

struct Checker {
    issues: Vec<InventoryIssue>,
}

impl Checker {
    fn at(&mut self, loc: Location, message: impl Into<String>, hint: impl Into<String>) {
        self.issues.push(InventoryIssue {
            line: loc.line(),
            column: loc.column(),
            message: message.into(),
            hint: hint.into(),
        });
    }
}

/// Loads and validates an inventory file. Nothing is contacted.
pub fn load(path: &Path) -> Result<Inventory, Error> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| Error::Inventory {
        file: file.clone(),
        issues: vec![InventoryIssue {
            line: 0,
            column: 0,
            message: format!("cannot read the inventory: {e}"),
            hint: "pass the inventory file with -i <file> (see inventories/example.yml)".into(),
        }],
    })?;
    parse(&text, path)
}

/// Parses and validates inventory text; `path` names it in errors.
pub fn parse(text: &str, path: &Path) -> Result<Inventory, Error> {
    let file = path.display().to_string();
    let inv_err = |issues| Error::Inventory {
        file: file.clone(),
        issues,
    };
    if text.len() > 1 << 20 {
        return Err(inv_err(vec![InventoryIssue {
            line: 0,
            column: 0,
            message: format!(
                "the file is {} bytes; an inventory is at most 1 MiB",
                text.len()
            ),
            hint: "check that -i names the inventory".into(),
        }]));
    }
    if let Some((i, line)) = text
        .lines()
        .enumerate()
        .find(|(_, l)| l.starts_with('\t') || l.trim_start_matches(' ').starts_with('\t'))
    {
        let col = line.find('\t').unwrap_or(0) + 1;
        return Err(inv_err(vec![InventoryIssue {
            line: i as u64 + 1,
            column: col as u64,
            message: "a tab is used for indentation; YAML allows only spaces".into(),
            hint: "replace the tab with spaces".into(),
        }]));
    }
    let mut options = serde_saphyr::options::Options::default();
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::Error;
    // What you read is what pgrepl runs: no anchors, aliases or merge keys (and so no alias
    // bombs); shallow nesting.
    options.merge_keys = serde_saphyr::options::MergeKeyPolicy::Error;
    let mut budget = serde_saphyr::Budget::default();
    budget.max_aliases = 0;
    budget.max_anchors = 0;
    budget.max_depth = 16;
    options.budget = Some(budget);
    let raw: RawInventory = serde_saphyr::from_str_with_options(text, options).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        let message = yaml_message(&e);
        let hint = yaml_hint(&message);
        inv_err(vec![InventoryIssue {
            line,
            column,
            message,
            hint,
        }])
    })?;
    let mut c = Checker { issues: Vec::new() };
    let inv = build(raw, path, &mut c);
    if c.issues.is_empty() {
        Ok(inv.expect("built when there are no issues"))
    } else {
        c.issues.sort_by_key(|i| (i.line, i.column));
        // A path shared by every host (data_dir) is checked once per host: report it once.
        c.issues.dedup();
        Err(inv_err(c.issues))
    }
}

/// The parser's message without its location suffix and snippet (pgrepl prints file:line:col).
fn yaml_message(e: &serde_saphyr::Error) -> String {
    let opts = serde_saphyr::render_options! { snippets: serde_saphyr::SnippetMode::Off };
    let s = e.render_with_options(opts);
    let first = s.lines().next().unwrap_or("").trim();
    let cut = first
        .find(" at line ")
        .map(|i| &first[..i])
        .unwrap_or(first);
    if cut.contains("budget breached: Anchors") || cut.contains("budget breached: Aliases") {
        return "YAML anchors (&), aliases (*) and merge keys (<<) are not allowed in an inventory"
            .into();
    }
    if cut.contains("merge key") {
        return "YAML merge keys (<<) are not allowed in an inventory".into();
    }
    if cut.contains("budget breached: Depth") {
        return "the YAML is nested too deeply for an inventory".into();
    }
    // The parser suggests a library option; the user's fix is in the file.
    cut.split(", set DuplicateKeyPolicy")
        .next()
        .unwrap_or(cut)
        .to_string()
}

fn yaml_hint(message: &str) -> String {
    if message.contains("unknown field") {
        "remove or correct the key; every key is listed in README.md, \"Inventory reference\""
            .into()
    } else if message.contains("duplicate") {
        "keep one of the two entries".into()
    } else if message.contains("missing field") {
        "add the key; see inventories/example.yml".into()
    } else if message.contains("not allowed in an inventory") {
        "write each value out where it is used".into()
    } else if message.contains("unknown variant") {
        "use one of the values the message lists".into()
    } else {
        "correct the value's type or the YAML syntax at this position".into()
    }
}

fn build(raw: RawInventory, path: &Path, c: &mut Checker) -> Option<Inventory> {
    let cluster = raw.cluster.value.clone();
    if !is_cluster_name(&cluster) {
        c.at(
            raw.cluster.referenced,
            format!("cluster name {cluster:?} is not allowed"),
            "use 1-40 characters: lower-case letters, digits, '_' or '-', starting with a letter",
        );
    }
    let pg = &raw.postgres.value;
    let version = pg.version.value;
    if !(13..=17).contains(&version) {
        c.at(
            pg.version.referenced,
            format!("PostgreSQL {version} is not supported"),
            "pgrepl supports PostgreSQL 13 to 17",
        );
    }
    let os_user = pg
        .os_user
        .as_ref()
        .map(|s| s.value.clone())
        .unwrap_or_else(|| "postgres".into());
    if let Some(u) = &pg.os_user {
        check_os_user(c, u);
    }
    let locale = pg
        .locale
        .as_ref()
        .map(|s| s.value.clone())
        .unwrap_or_else(|| "C.UTF-8".into());
    if let Some(l) = &pg.locale {
        if l.value.is_empty()
            || !l
                .value
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "_.@-".contains(ch))
        {
            c.at(
                l.referenced,
                format!("locale {:?} is not allowed", l.value),
                "use a locale name such as C.UTF-8 or en_US.UTF-8",
            );
        }
    }
    let default_port = pg.port.as_ref().map(|p| p.value).unwrap_or(5432);
    if let Some(p) = &pg.port {
        check_port(c, p);
    }

    // Settings.
    let mut settings = BTreeMap::new();
    for (name, value) in &pg.settings {
        if let Some((_, why)) = RESERVED_SETTINGS.iter().find(|(n, _)| n == name) {
            c.at(
                value.referenced,
                format!("setting {name} is managed by pgrepl"),
                *why,
            );
        } else if !is_setting_name(name) {
            c.at(
                value.referenced,
                format!("{name:?} is not a PostgreSQL setting name"),
                "use lower-case letters, digits, '_' and '.'",
            );
        } else if value.value.chars().any(char::is_control) || value.value.len() > 4096 {
            c.at(
                value.referenced,
                format!("the value of {name} contains a control character or is too long"),
                "put the value on one line",
            );
        } else if ["max_wal_senders", "max_replication_slots"].contains(&name.as_str())
            && value
                .value
                .parse::<usize>()
                .map(|n| n < raw.hosts.value.len().saturating_sub(1))
                .unwrap_or(true)
        {
            c.at(
                value.referenced,
                format!(
                    "{name} = {:?} cannot serve the {} other hosts of this cluster",
                    value.value,
                    raw.hosts.value.len().saturating_sub(1)
                ),
                format!(
                    "remove it (pgrepl sizes it: {} senders, {} slots here) or raise it",
                    needed_wal_senders(raw.hosts.value.len()),
                    needed_slots(raw.hosts.value.len())
                ),
            );
        } else if name == "wal_level" && !["replica", "logical"].contains(&value.value.as_str()) {
            c.at(
                value.referenced,
                format!("wal_level {:?} cannot stream to replicas", value.value),
                "use replica or logical",
            );
        } else {
            settings.insert(name.clone(), value.value.clone());
        }
    }

    // Extra hba rules.
    let mut hba = Vec::new();
    for r in &pg.hba {
        if let Some(rule) = check_hba(c, &r.value, r.referenced) {
            hba.push(rule);
        }
    }

    // Replication user and password.
    let mut rewind_user = "pgrepl_rewind".to_string();
    let (replication_user, password) = match &raw.replication {
        None => {
            c.at(
                raw.cluster.referenced,
                "the inventory has no replication section",
                "add replication: with password_env or password_file (see inventories/example.yml)",
            );
            ("replicator".to_string(), None)
        }
        Some(rep) => {
            let r = &rep.value;
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
            if let Some(u) = &r.rewind_user {
                if !is_sql_role(&u.value) || u.value == user || u.value == os_user {
                    c.at(u.referenced, format!("rewind user {:?} is not allowed", u.value), "use a dedicated role name (lower-case letters, digits, '_'), not the replication user or the superuser");
                }
                rewind_user = u.value.clone();
            }
            if user == os_user {
                let loc = r
                    .user
                    .as_ref()
                    .map(|u| u.referenced)
                    .unwrap_or(rep.referenced);
                c.at(
                    loc,
                    format!("the replication user must not be the superuser {os_user}"),
                    "use a dedicated role such as replicator",
                );
            }
            if let Some(p) = &r.password {
                c.at(p.referenced, "passwords are never written in the inventory", "use replication.password_env: NAME or replication.password_file: /path/to/0600-file");
            }
            let src = match (&r.password_env, &r.password_file) {
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
                (None, Some(f)) => {
                    let p = check_local_path(c, f, path);
                    p.map(|p| PasswordSource::File {
                        path: p,
                        line: f.referenced.line(),
                        column: f.referenced.column(),
                    })
                }
                (Some(_), Some(f)) => {
                    c.at(
                        f.referenced,
                        "both password_env and password_file are set",
                        "keep one of them",
                    );
                    None
                }
                (None, None) => {
                    if r.password.is_none() {
                        c.at(
                            rep.referenced,
                            "replication has no password source",
                            "add password_env: NAME or password_file: /path",
                        );
                    }
                    None
                }
            };
            (user, src)
        }
    };

    // Access.
    let transport = raw
        .access
        .as_ref()
        .and_then(|a| a.value.transport.as_ref().map(|t| t.value))
        .unwrap_or(TransportKind::Ssh);
    let raw_ssh = raw.access.as_ref().and_then(|a| a.value.ssh.as_ref());
    let ssh_user = raw_ssh
        .and_then(|s| s.user.as_ref())
        .map(|u| u.value.clone())
        .unwrap_or_else(|| os_user.clone());
    if let Some(u) = raw_ssh.and_then(|s| s.user.as_ref()) {
        check_os_user(c, u);
    }
    let ssh_port = raw_ssh
        .and_then(|s| s.port.as_ref())
        .map(|p| p.value)
        .unwrap_or(22);
    if let Some(p) = raw_ssh.and_then(|s| s.port.as_ref()) {
        check_port(c, p);
    }
    let ssh = SshSettings {
        user: ssh_user,
        port: ssh_port,
        identity_file: raw_ssh
            .and_then(|s| s.identity_file.as_ref())
            .and_then(|f| check_local_path(c, f, path)),
        known_hosts_file: raw_ssh
            .and_then(|s| s.known_hosts_file.as_ref())
            .and_then(|f| check_local_path(c, f, path)),
        config_file: raw_ssh
            .and_then(|s| s.config_file.as_ref())
            .and_then(|f| check_local_path(c, f, path)),
        host_keys: raw_ssh
            .and_then(|s| s.host_keys)
            .unwrap_or(HostKeyPolicy::Strict),
    };

    let t = raw.timeouts.as_ref();
    let secs = |v: Option<u64>, d: u64| Duration::from_secs(v.filter(|&s| s > 0).unwrap_or(d));
    let timeouts = Timeouts {
        connect: secs(t.and_then(|t| t.connect), DEFAULT_TIMEOUT_CONNECT),
        start: secs(t.and_then(|t| t.start), DEFAULT_TIMEOUT_START),
        streaming: secs(t.and_then(|t| t.streaming), DEFAULT_TIMEOUT_STREAMING),
        status: secs(t.and_then(|t| t.status), DEFAULT_TIMEOUT_STATUS),
        promote: secs(t.and_then(|t| t.promote), 60),
    };
    let thresholds = check_thresholds(c, raw.status.as_ref());

    // Hosts.
    let mut hosts = Vec::new();
    let mut names: HashMap<String, Location> = HashMap::new();
    for h in &raw.hosts.value {
        let rh = &h.value;
        let name = rh.name.value.clone();
        if !is_host_name(&name) {
            c.at(rh.name.referenced, format!("host name {name:?} is not allowed"), "use letters, digits, '_', '.' or '-', starting with a letter or digit (at most 63)");
        }
        if names.insert(name.clone(), rh.name.referenced).is_some() {
            c.at(
                rh.name.referenced,
                format!("host name {name} is used twice"),
                "give every host its own name",
            );
        }
        if !is_address(&rh.address.value) {
            c.at(rh.address.referenced, format!("address {:?} is not an IP address or host name", rh.address.value), "use an IPv4/IPv6 address or a DNS name (letters, digits, '-' and '.', not starting with '-')");
        }
        if let Some(p) = &rh.port {
            check_port(c, p);
        }
        let ssh_host = rh
            .ssh_host
            .as_ref()
            .map(|s| s.value.clone())
            .unwrap_or_else(|| rh.address.value.clone());
        if let Some(s) = &rh.ssh_host {
            if !is_address(&s.value) {
                c.at(
                    s.referenced,
                    format!("ssh_host {:?} is not a host name or address", s.value),
                    "use an address, a DNS name or an alias from ~/.ssh/config",
                );
            }
        }
        if let Some(p) = &rh.ssh_port {
            check_port(c, p);
        }
        let slot = rh
            .slot
            .as_ref()
            .map(|s| s.value.clone())
            .unwrap_or_else(|| name.clone());
        if rh.role.value == Role::Replica && !crate::pg::is_valid_slot_name(&slot) {
            let loc = rh
                .slot
                .as_ref()
                .map(|s| s.referenced)
                .unwrap_or(rh.name.referenced);
            c.at(
                loc,
                format!("{slot:?} cannot be a replication slot name (the slot is named after the host unless slot: is set)"),
                format!("slot names allow only a-z, 0-9 and '_' (at most 63): rename the host, or add slot: {}", suggest_slot(&slot)),
            );
        }
        let expand = |c: &mut Checker,
                      v: Option<&Spanned<String>>,
                      global: Option<&Spanned<String>>,
                      default: String|
         -> String {
            let chosen = v.or(global);
            let text = chosen.map(|s| s.value.clone()).unwrap_or(default);
            let expanded = text
                .replace("{version}", &version.to_string())
                .replace("{cluster}", &cluster)
                .replace("{host}", &name);
            if let Some(s) = chosen {
                if let Err(why) = check_remote_path(&expanded) {
                    c.at(s.referenced, format!("path {:?} {why}", s.value), "use an absolute path of letters, digits and _ . / @ + , : % - (placeholders {version}, {cluster}, {host} allowed)");
                }
            }
            expanded
        };
        let data_dir = expand(
            c,
            rh.data_dir.as_ref(),
            pg.data_dir.as_ref(),
            "/var/lib/postgresql/{version}/{cluster}".into(),
        );
        let bin_dir = expand(
            c,
            rh.bin_dir.as_ref(),
            pg.bin_dir.as_ref(),
            "/usr/lib/postgresql/{version}/bin".into(),
        );
        let socket_dir = expand(
            c,
            rh.socket_dir.as_ref(),
            pg.socket_dir.as_ref(),
            "/var/run/postgresql".into(),
        );
        hosts.push(Host {
            passfile: format!("{data_dir}.pgpass"),
            log_file: format!("{data_dir}.log"),
            name,
            address: rh.address.value.clone(),
            port: rh.port.as_ref().map(|p| p.value).unwrap_or(default_port),
            role: rh.role.value,
            upstream: rh.upstream.as_ref().map(|u| u.value.clone()),
            slot,
            data_dir,
            bin_dir,
            socket_dir,
            ssh_host,
            ssh_port: rh.ssh_port.as_ref().map(|p| p.value).unwrap_or(ssh_port),
        });
    }

    // Topology.
    let primaries: Vec<usize> = hosts
        .iter()
        .enumerate()
        .filter(|(_, h)| h.role == Role::Primary)
        .map(|(i, _)| i)
        .collect();
    match primaries.len() {
        0 => c.at(
            raw.hosts.referenced,
            "no host has role: primary",
            "mark exactly one host with role: primary",
        ),
        1 => {}
        _ => {
            for &i in &primaries[1..] {
                c.at(
                    raw.hosts.value[i].value.role.referenced,
                    format!(
                        "{} is a second primary ({} is already primary)",
                        hosts[i].name, hosts[primaries[0]].name
                    ),
                    "a cluster has exactly one primary: make this host role: replica",
                );
            }
        }
    }
    if raw.hosts.value.is_empty() {
        c.at(
            raw.hosts.referenced,
            "the inventory lists no hosts",
            "add a primary and its replicas under hosts:",
        );
    }
    let primary_name = primaries.first().map(|&i| hosts[i].name.clone());
    for (i, h) in hosts.iter_mut().enumerate() {
        let rh = &raw.hosts.value[i].value;
        match (h.role, &rh.upstream) {
            (Role::Primary, Some(u)) => c.at(
                u.referenced,
                format!("the primary {} cannot have an upstream", h.name),
                "remove upstream: from the primary",
            ),
            (Role::Replica, None) => h.upstream = primary_name.clone(),
            (Role::Replica, Some(u)) => {
                if u.value == h.name {
                    c.at(
                        u.referenced,
                        format!("{} cannot follow itself", h.name),
                        "name the primary or another replica as upstream",
                    );
                } else if !names.contains_key(&u.value) {
                    c.at(
                        u.referenced,
                        format!("upstream {:?} is not a host of this inventory", u.value),
                        format!("use one of: {}", sorted_names(&names)),
                    );
                }
            }
            (Role::Primary, None) => {}
        }
    }
    // Loops: every replica's upstream chain must reach the primary (names must be unique
    // for the chains to mean anything).
    let unique_names = names.len() == hosts.len();
    let up: HashMap<&str, Option<&str>> = hosts
        .iter()
        .map(|h| (h.name.as_str(), h.upstream.as_deref()))
        .collect();
    for (i, h) in hosts.iter().enumerate() {
        if h.role != Role::Replica || !unique_names {
            continue;
        }
        let mut cur = h.name.as_str();
        let mut seen = BTreeSet::new();
        while let Some(Some(next)) = up.get(cur) {
            if !seen.insert(cur) {
                let loc = raw.hosts.value[i]
                    .value
                    .upstream
                    .as_ref()
                    .map(|u| u.referenced)
                    .unwrap_or(raw.hosts.value[i].referenced);
                c.at(
                    loc,
                    format!(
                        "the upstreams of {} form a loop ({})",
                        h.name,
                        seen.iter().copied().collect::<Vec<_>>().join(" -> ")
                    ),
                    "make the chain end at the primary",
                );
                break;
            }
            cur = next;
        }
    }
    // Collisions.
    let mut endpoints: HashMap<(String, u16), &str> = HashMap::new();
    let mut slots: HashMap<&str, &str> = HashMap::new();
    let mut dirs: HashMap<(&str, &str), &str> = HashMap::new();
    for (i, h) in hosts.iter().enumerate() {
        let loc = raw.hosts.value[i].value.address.referenced;
        let machine = if transport == TransportKind::Local {
            ""
        } else {
            h.ssh_host.as_str()
        };
        if let Some(other) = endpoints.insert((h.address.clone(), h.port), &h.name) {
            c.at(
                loc,
                format!("{} and {other} both use {}:{}", h.name, h.address, h.port),
                "give each host its own address or port",
            );
        }
        if h.role == Role::Replica {
            if let Some(other) = slots.insert(&h.slot, &h.name) {
                c.at(
                    loc,
                    format!("{} and {other} both use slot {}", h.name, h.slot),
                    "set a distinct slot: on one of them",
                );
            }
        }
        if let Some(other) = dirs.insert((machine, &h.data_dir), &h.name) {
            c.at(
                loc,
                format!(
                    "{} and {other} share the data directory {} on one machine",
                    h.name, h.data_dir
                ),
                "use data_dir: with {host} in it, e.g. /var/lib/postgresql/{version}/{host}",
            );
        }
    }

    let password = password?;
    Some(Inventory {
        file: path.to_path_buf(),
        cluster,
        version,
        os_user,
        locale,
        settings,
        hba,
        replication_user,
        rewind_user,
        password,
        transport,
        ssh,
        timeouts,
        thresholds,
        hosts,
    })
}

fn check_thresholds(c: &mut Checker, raw: Option<&RawStatus>) -> crate::health::Thresholds {
    let mut t = crate::health::Thresholds::default();
    let Some(r) = raw else { return t };
    let bytes = |c: &mut Checker, v: &Option<Spanned<String>>, d: u64| -> u64 {
        match v {
            None => d,
            Some(s) => crate::pg::parse_size(&s.value).unwrap_or_else(|| {
                c.at(
                    s.referenced,
                    format!("{:?} is not a size", s.value),
                    "use bytes or a unit: 16MB, 1GB",
                );
                d
            }),
        }
    };
    t.lag_warning_bytes = bytes(c, &r.lag_warning_bytes, t.lag_warning_bytes);
    t.lag_critical_bytes = bytes(c, &r.lag_critical_bytes, t.lag_critical_bytes);
    for (v, slot) in [
        (&r.lag_warning_seconds, &mut t.lag_warning_seconds),
        (&r.lag_critical_seconds, &mut t.lag_critical_seconds),
    ] {
        if let Some(v) = v {
            if v.value.is_finite() && v.value >= 0.0 {
                *slot = v.value;
            } else {
                c.at(
                    v.referenced,
                    "a lag threshold must be a non-negative number of seconds",
                    "e.g. 30",
                );
            }
        }
    }
    if t.lag_warning_bytes > t.lag_critical_bytes || t.lag_warning_seconds > t.lag_critical_seconds
    {
        let loc = r
            .lag_warning_bytes
            .as_ref()
            .map(|s| s.referenced)
            .or(r.lag_warning_seconds.as_ref().map(|s| s.referenced));
        if let Some(loc) = loc {
            c.at(
                loc,
                "a warning threshold is above its critical threshold",
                "make lag_warning_* at most lag_critical_*",
            );
        }
    }
    t
}

fn sorted_names(names: &HashMap<String, Location>) -> String {
    let mut v: Vec<&str> = names.keys().map(String::as_str).collect();
    v.sort();
    v.join(", ")
}

fn suggest_slot(s: &str) -> String {
    let mut out: String = s
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    out.truncate(63);
    if out.is_empty() {
        out = "replica_1".into();
    }
    out
}

fn check_port(c: &mut Checker, p: &Spanned<u16>) {
    if p.value == 0 {
        c.at(
            p.referenced,
            "port 0 is not a port",
            "use a port from 1 to 65535",
        );
    }
}

fn check_os_user(c: &mut Checker, u: &Spanned<String>) {
    if !is_os_user(&u.value) {
        c.at(u.referenced, format!("user name {:?} is not allowed", u.value), "use lower-case letters, digits, '_' and '-', starting with a letter or '_' (at most 32)");
    }
}

fn check_hba(c: &mut Checker, r: &RawHba, loc: Location) -> Option<HbaRule> {
    const TYPES: &[&str] = &[
        "local",
        "host",
        "hostssl",
        "hostnossl",
        "hostgssenc",
        "hostnogssenc",
    ];
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
    ];
    let before = c.issues.len();
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
    }
    let network = r.kind.value != "local";
    if network && ["trust", "password"].contains(&r.method.value.as_str()) {
        c.at(r.method.referenced, format!("method {} on a network line lets anyone who reaches the port in, or sends passwords in clear", r.method.value), "use scram-sha-256 (or cert)");
    }
    for f in [&r.database, &r.user] {
        if f.value.is_empty()
            || !f
                .value
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "_.,+@-".contains(ch))
        {
            c.at(
                f.referenced,
                format!("pg_hba field {:?} is not allowed", f.value),
                "use names, 'all', or comma-separated names",
            );
        }
    }
    let address = match (&r.address, network) {
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
    };
    (c.issues.len() == before).then(|| HbaRule {
        kind: r.kind.value.clone(),
        database: r.database.value.clone(),
        user: r.user.value.clone(),
        address,
        method: r.method.value.clone(),
    })
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

/// WAL senders a cluster of `hosts` needs on each host: after a failover one host may serve all
/// the others, and each clone holds two senders (base backup + WAL stream) while it runs.
/// At least 10 (PostgreSQL's default).
pub fn needed_wal_senders(hosts: usize) -> usize {
    (2 * hosts.saturating_sub(1) + 2).max(10)
}

/// Replication slots a cluster of `hosts` needs on each host (one per other host, plus spare).
pub fn needed_slots(hosts: usize) -> usize {
    (hosts.saturating_sub(1) + 2).max(10)
}

/// A path on a PostgreSQL host: absolute, a narrow character set, no `..`.
pub fn check_remote_path(p: &str) -> Result<(), &'static str> {
    if !p.starts_with('/') {
        return Err("is not absolute");
    }
    if p.len() > 200 {
        return Err("is longer than 200 characters");
    }
    if p.contains('{') || p.contains('}') {
        return Err("has an unknown placeholder");
    }
    if !p
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_./@+,:%-".contains(c))
    {
        return Err(
            "contains a character that is not allowed (spaces, quotes, $, `, ; and the like)",
        );
    }
    if p.split('/').any(|seg| seg == ".." || seg.starts_with('-')) {
        return Err("has a '..' segment or a segment starting with '-'");
    }
    Ok(())
}

fn is_cluster_name(s: &str) -> bool {
    let mut ch = s.chars();
    matches!(ch.next(), Some(c) if c.is_ascii_lowercase())
        && s.len() <= 40
        && ch.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

fn is_host_name(s: &str) -> bool {
    let mut ch = s.chars();
    matches!(ch.next(), Some(c) if c.is_ascii_alphanumeric())
        && s.len() <= 63
        && ch.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

fn is_os_user(s: &str) -> bool {
    let mut ch = s.chars();
    matches!(ch.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && s.len() <= 32
        && ch.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

fn is_sql_role(s: &str) -> bool {
    let mut ch = s.chars();
    matches!(ch.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && s.len() <= 63
        && ch.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn is_env_name(s: &str) -> bool {
    let mut ch = s.chars();
    matches!(ch.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && ch.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_setting_name(s: &str) -> bool {
    let mut ch = s.chars();
    matches!(ch.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && s.len() <= 63
        && ch.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.')
}

/// An IP literal or an RFC 1123 host name (never starting with '-').
pub fn is_address(s: &str) -> bool {
    if s.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

fn is_cidr(s: &str) -> bool {
    let Some((ip, bits)) = s.split_once('/') else {
        return false;
    };
    let Ok(ip) = ip.parse::<std::net::IpAddr>() else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    bits.parse::<u8>().map(|b| b <= max).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "cluster: main
postgres:
  version: 15
  settings:
    shared_buffers: 256MB
    max_connections: 200
    hot_standby_feedback: on
replication:
  password_env: PGREPL_TEST_PW
hosts:
  - name: pg1
    address: 10.0.0.1
    role: primary
  - name: pg2
    address: 10.0.0.2
    role: replica
  - name: pg3
    address: 10.0.0.3
    role: replica
    upstream: pg2
";

    fn issues(text: &str) -> Vec<InventoryIssue> {
        match parse(text, Path::new("inv.yml")) {
            Err(Error::Inventory { issues, .. }) => issues,
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("accepted:\n{text}"),
        }
    }

    #[test]
    fn good_inventory_resolves_defaults() {
        let inv = parse(GOOD, Path::new("inv.yml")).unwrap();
        assert_eq!(inv.os_user, "postgres");
        assert_eq!(inv.replication_user, "replicator");
        let pg2 = inv.host("pg2").unwrap();
        assert_eq!(pg2.data_dir, "/var/lib/postgresql/15/main");
        assert_eq!(pg2.bin_dir, "/usr/lib/postgresql/15/bin");
        assert_eq!(pg2.upstream.as_deref(), Some("pg1"));
        assert_eq!(pg2.slot, "pg2");
        assert_eq!(inv.host("pg3").unwrap().upstream.as_deref(), Some("pg2"));
        assert_eq!(inv.settings["max_connections"], "200");
        assert_eq!(inv.settings["hot_standby_feedback"], "on");
        let waves: Vec<Vec<&str>> = inv
            .replica_waves()
            .iter()
            .map(|w| w.iter().map(|h| h.name.as_str()).collect())
            .collect();
        assert_eq!(waves, vec![vec!["pg2"], vec!["pg3"]]);
    }

    #[test]
    fn with_primary_reroutes_the_topology() {
        let inv = parse(GOOD, Path::new("inv.yml")).unwrap();
        let after = inv.with_primary("pg2");
        assert_eq!(after.primary().name, "pg2");
        assert_eq!(after.host("pg2").unwrap().upstream, None);
        assert_eq!(after.host("pg1").unwrap().upstream.as_deref(), Some("pg2"));
        assert_eq!(after.host("pg1").unwrap().role, Role::Replica);
        assert_eq!(after.host("pg3").unwrap().upstream.as_deref(), Some("pg2"));
        let waves: Vec<usize> = after.replica_waves().iter().map(Vec::len).collect();
        assert_eq!(waves, vec![2]);
        let after = inv.with_primary("pg3");
        assert_eq!(after.host("pg2").unwrap().upstream.as_deref(), Some("pg3"));
        assert_eq!(after.host("pg1").unwrap().upstream.as_deref(), Some("pg3"));
    }

    #[test]
    fn unknown_key_has_position() {
        let i = issues(&GOOD.replace("  version: 15", "  version: 15\n  verison: 16"));
        assert_eq!((i[0].line, i[0].column), (4, 3), "{i:?}");
        assert!(i[0].message.contains("unknown field"), "{i:?}");
    }

    #[test]
    fn duplicate_key_is_refused() {
        let i = issues(&GOOD.replace("cluster: main", "cluster: main\ncluster: other"));
        assert!(i[0].message.to_lowercase().contains("duplicate"), "{i:?}");
        assert_eq!(i[0].line, 2);
    }

    #[test]
    fn tabs_are_refused() {
        let i = issues(&GOOD.replace("  version: 15", "\tversion: 15"));
        assert_eq!(i[0].line, 3);
    }

    #[test]
    fn two_primaries_and_loops_and_bad_slots() {
        let text = GOOD.replace(
            "    address: 10.0.0.2\n    role: replica",
            "    address: 10.0.0.2\n    role: primary",
        );
        let i = issues(&text);
        assert!(
            i.iter().any(|x| x.message.contains("second primary")),
            "{i:?}"
        );

        let text = GOOD.replace(
            "    role: replica\n  - name: pg3",
            "    role: replica\n    upstream: pg3\n  - name: pg3",
        );
        let i = issues(&text);
        assert!(i.iter().any(|x| x.message.contains("loop")), "{i:?}");

        let i = issues(
            &GOOD
                .replace("name: pg2", "name: pg-2")
                .replace("upstream: pg2", "upstream: pg-2"),
        );
        assert!(
            i.iter()
                .any(|x| x.message.contains("replication slot name")
                    && x.hint.contains("slot: pg_2")),
            "{i:?}"
        );
    }

    #[test]
    fn injection_attempts_are_refused() {
        for (from, to) in [
            (
                "address: 10.0.0.2",
                "address: -oProxyCommand=touch /tmp/pwned",
            ),
            ("address: 10.0.0.2", "address: \"10.0.0.2\\nHost evil\""),
            (
                "  version: 15",
                "  version: 15\n  data_dir: /srv/$(touch /tmp/pwned)",
            ),
            ("  version: 15", "  version: 15\n  data_dir: /srv/`id`"),
            (
                "  version: 15",
                "  version: 15\n  os_user: \"postgres; rm -rf /\"",
            ),
            (
                "  password_env: PGREPL_TEST_PW",
                "  password_env: PGREPL_TEST_PW\n  user: \"rep\\\"; DROP ROLE x; --\"",
            ),
            (
                "    role: replica\n  - name: pg3",
                "    role: replica\n    slot: \"a'); DROP\"\n  - name: pg3",
            ),
            (
                "    max_connections: 200",
                "    max_connections: \"200\\nshared_preload_libraries = evil\"",
            ),
        ] {
            let text = GOOD.replacen(from, to, 1);
            assert_ne!(text, GOOD, "{from}");
            let i = issues(&text);
            assert!(!i.is_empty() && i.iter().all(|x| x.line > 0), "{to}: {i:?}");
        }
    }

    #[test]
    fn inline_password_and_trust_are_refused() {
        let i = issues(&GOOD.replace("  password_env: PGREPL_TEST_PW", "  password: hunter2"));
        assert!(
            i.iter().any(|x| x.message.contains("never written")),
            "{i:?}"
        );
        assert!(!format!("{i:?}").contains("hunter2"));
        let i = issues(&GOOD.replace("  version: 15", "  version: 15\n  hba:\n    - {type: host, database: all, user: all, address: 0.0.0.0/0, method: trust}"));
        assert!(i.iter().any(|x| x.message.contains("trust")), "{i:?}");
    }

    #[test]
    fn replication_capacity_is_sized_and_checked() {
        assert_eq!((needed_wal_senders(3), needed_slots(3)), (10, 10));
        assert_eq!((needed_wal_senders(12), needed_slots(12)), (24, 13));
        let i = issues(&GOOD.replace("    max_connections: 200", "    max_replication_slots: 1"));
        assert!(
            i.iter()
                .any(|x| x.message.contains("cannot serve the 2 other hosts")),
            "{i:?}"
        );
    }

    #[test]
    fn reserved_settings_are_refused() {
        let i = issues(&GOOD.replace("    max_connections: 200", "    port: 5433"));
        assert!(
            i.iter().any(|x| x.message.contains("managed by pgrepl")),
            "{i:?}"
        );
    }

    #[test]
    fn password_file_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "canary-secret\n").unwrap();
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).unwrap();
        let text = GOOD.replace(
            "  password_env: PGREPL_TEST_PW",
            &format!("  password_file: {}", pw.display()),
        );
        let inv = parse(&text, Path::new("inv.yml")).unwrap();
        let e = inv.replication_password().unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
        let s = inv.replication_password().unwrap();
        assert_eq!(s.expose(), "canary-secret");
        assert!(!format!("{s:?} {inv:?}").contains("canary"));
    }

    #[test]
    fn addresses() {
        assert!(is_address("10.0.0.1"));
        assert!(is_address("::1"));
        assert!(is_address("db1.example.com"));
        assert!(!is_address("-oProxyCommand=x"));
        assert!(!is_address("a b"));
        assert!(!is_address("a;b"));
        assert!(!is_address(""));
    }
}
