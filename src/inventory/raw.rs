//! The inventory file as written: the serde schema (every key known, unknown and duplicate
//! keys refused, locations kept wherever a later check may fail) and the strict YAML reading
//! that fills it, with the parser's complaints turned into one problem and one fix.
//!
//! This layer checks syntax and types only. It must not judge values or fill in defaults: that
//! is `check/`'s work, which turns these structs into the model.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::apps::{ReadTargets, RouterKind};
use super::model::{HostKeyPolicy, Role, TransportKind};
use crate::error::InventoryIssue;

/// The whole file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInventory {
    pub(super) cluster: Spanned<String>,
    pub(super) postgres: Spanned<RawPostgres>,
    #[serde(default)]
    pub(super) replication: Option<Spanned<RawReplication>>,
    #[serde(default)]
    pub(super) access: Option<Spanned<RawAccess>>,
    #[serde(default)]
    pub(super) timeouts: Option<RawTimeouts>,
    #[serde(default)]
    pub(super) status: Option<RawStatus>,
    pub(super) hosts: Spanned<Vec<Spanned<RawHost>>>,
    #[serde(default)]
    pub(super) roles: Vec<Spanned<RawRole>>,
    #[serde(default)]
    pub(super) databases: Vec<Spanned<RawDatabase>>,
    #[serde(default)]
    pub(super) archive: Option<Spanned<RawArchive>>,
    #[serde(default)]
    pub(super) routers: Vec<Spanned<RawRouter>>,
    #[serde(default)]
    pub(super) tls: Option<Spanned<RawTls>>,
}

/// `tls:`: `off` (or `false`), or its settings.
pub(super) enum RawTls {
    Off,
    On(Box<RawTlsSettings>),
}

impl<'de> Deserialize<'de> for RawTls {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawTls;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("`off`, or a mapping of TLS settings")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<RawTls, E> {
                if v {
                    Err(E::custom("tls: true is not a setting: TLS is on without a tls: section (write `tls: off` to turn it off)"))
                } else {
                    Ok(RawTls::Off)
                }
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawTls, E> {
                match v {
                    "off" => Ok(RawTls::Off),
                    _ => Err(E::custom(format!("tls: {v:?} is not a setting: write `tls: off`, or a mapping (ca_cert, ca_key, server_days, ca_days, client_certs; or ca_file and certificates)"))),
                }
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<RawTls, A::Error> {
                RawTlsSettings::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(|s| RawTls::On(Box::new(s)))
            }
        }
        d.deserialize_any(V)
    }
}

/// The `tls:` mapping.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTlsSettings {
    #[serde(default)]
    pub(super) ca_cert: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) ca_key: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) server_days: Option<Spanned<u32>>,
    #[serde(default)]
    pub(super) ca_days: Option<Spanned<u32>>,
    #[serde(default)]
    pub(super) client_certs: Option<Spanned<bool>>,
    #[serde(default)]
    pub(super) ca_file: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) certificates: Option<Spanned<BTreeMap<String, Spanned<RawHostCert>>>>,
}

/// `tls.certificates.<host>`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHostCert {
    pub(super) cert: Spanned<String>,
    pub(super) key: Spanned<String>,
}

/// One `routers[]` entry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRouter {
    pub(super) name: Spanned<String>,
    pub(super) kind: Spanned<RouterKind>,
    pub(super) address: Spanned<String>,
    #[serde(default)]
    pub(super) ssh_host: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) ssh_port: Option<Spanned<u16>>,
    #[serde(default)]
    pub(super) dir: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) bin: Option<Spanned<String>>,
    pub(super) ports: Spanned<RawRouterPorts>,
    #[serde(default)]
    pub(super) read_targets: Option<Spanned<ReadTargets>>,
    #[serde(default)]
    pub(super) pool_mode: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) pool_size: Option<Spanned<u32>>,
    #[serde(default)]
    pub(super) databases: Option<Spanned<Vec<Spanned<String>>>>,
}

/// `routers[].ports`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRouterPorts {
    pub(super) write: Spanned<u16>,
    #[serde(default)]
    pub(super) read: Option<Spanned<u16>>,
    #[serde(default)]
    pub(super) stats: Option<Spanned<u16>>,
}

/// `archive:`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawArchive {
    pub(super) command: Spanned<String>,
    #[serde(default)]
    pub(super) restore_command: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) mode: Option<Spanned<String>>,
}

/// `replication.synchronous`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSync {
    pub(super) method: Spanned<crate::inventory::modes::SyncMethod>,
    #[serde(default)]
    pub(super) count: Option<Spanned<u32>>,
    #[serde(default)]
    pub(super) standbys: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    pub(super) commit: Option<Spanned<String>>,
}

/// One `roles[]` entry: an application login role.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRole {
    pub(super) name: Spanned<String>,
    #[serde(default)]
    pub(super) password_env: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) password_file: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) clients: Vec<Spanned<String>>,
    /// Recognised only to refuse it with a useful message.
    #[serde(default)]
    pub(super) password: Option<Spanned<String>>,
}

/// One `databases[]` entry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDatabase {
    pub(super) name: Spanned<String>,
    #[serde(default)]
    pub(super) owner: Option<Spanned<String>>,
}

/// `status:` lag thresholds, as written (sizes still text).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStatus {
    #[serde(default)]
    pub(super) lag_warning_bytes: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) lag_critical_bytes: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) lag_warning_seconds: Option<Spanned<f64>>,
    #[serde(default)]
    pub(super) lag_critical_seconds: Option<Spanned<f64>>,
}

/// `postgres:`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPostgres {
    pub(super) version: Spanned<u32>,
    #[serde(default)]
    pub(super) os_user: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) bin_dir: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) data_dir: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) socket_dir: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) port: Option<Spanned<u16>>,
    #[serde(default)]
    pub(super) locale: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) settings: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub(super) hba: Vec<Spanned<RawHba>>,
    #[serde(default)]
    pub(super) primary_settings: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub(super) replica_settings: BTreeMap<String, Spanned<String>>,
}

/// One `postgres.hba` rule.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHba {
    #[serde(rename = "type")]
    pub(super) kind: Spanned<String>,
    pub(super) database: Spanned<String>,
    pub(super) user: Spanned<String>,
    #[serde(default)]
    pub(super) address: Option<Spanned<String>>,
    pub(super) method: Spanned<String>,
    /// `name=value` options after the method (`issuer`, `scope` for oauth; `ldapserver`, ...).
    #[serde(default)]
    pub(super) options: BTreeMap<String, Spanned<String>>,
}

/// `replication:`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReplication {
    #[serde(default)]
    pub(super) user: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) password_env: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) password_file: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) rewind_user: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) synchronous: Option<Spanned<RawSync>>,
    /// Recognised only to refuse it with a useful message.
    #[serde(default)]
    pub(super) password: Option<Spanned<String>>,
}

/// `access:`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAccess {
    #[serde(default)]
    pub(super) transport: Option<Spanned<TransportKind>>,
    #[serde(default)]
    pub(super) ssh: Option<RawSsh>,
}

/// `access.ssh:`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSsh {
    #[serde(default)]
    pub(super) user: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) port: Option<Spanned<u16>>,
    #[serde(default)]
    pub(super) identity_file: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) known_hosts_file: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) config_file: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) host_keys: Option<HostKeyPolicy>,
}

/// `timeouts:` in seconds (0 means the default).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTimeouts {
    #[serde(default)]
    pub(super) connect: Option<u64>,
    #[serde(default)]
    pub(super) start: Option<u64>,
    #[serde(default)]
    pub(super) streaming: Option<u64>,
    #[serde(default)]
    pub(super) status: Option<u64>,
    #[serde(default)]
    pub(super) promote: Option<u64>,
}

/// One `hosts[]` entry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHost {
    pub(super) name: Spanned<String>,
    pub(super) address: Spanned<String>,
    pub(super) role: Spanned<Role>,
    #[serde(default)]
    pub(super) port: Option<Spanned<u16>>,
    #[serde(default)]
    pub(super) upstream: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) slot: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) data_dir: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) bin_dir: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) socket_dir: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) ssh_host: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) ssh_port: Option<Spanned<u16>>,
    #[serde(default)]
    pub(super) settings: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub(super) apply_delay: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) listen_addresses: Vec<Spanned<String>>,
}

/// Reads inventory text into the raw schema: tabs used for indentation, YAML syntax, unknown,
/// duplicate and missing keys, wrong types, anchors, aliases, merge keys and deep nesting are
/// refused here.
///
/// # Errors
/// The first problem, with the parser's 1-based line and column (1:1 when it gives none).
pub(super) fn read(text: &str) -> Result<RawInventory, InventoryIssue> {
    if let Some((i, line)) = text
        .lines()
        .enumerate()
        .find(|(_, l)| l.starts_with('\t') || l.trim_start_matches(' ').starts_with('\t'))
    {
        let col = line.find('\t').unwrap_or(0) + 1;
        return Err(InventoryIssue {
            line: i as u64 + 1,
            column: col as u64,
            message: "a tab is used for indentation; YAML allows only spaces".into(),
            hint: "replace the tab with spaces".into(),
        });
    }
    serde_saphyr::from_str_with_options(text, strict_options()).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            // A problem the parser cannot place is one of the whole file: at its start.
            .unwrap_or((1, 1));
        let message = yaml_message(&e);
        let hint = yaml_hint(&message);
        InventoryIssue {
            line,
            column,
            message,
            hint,
        }
    })
}

/// Duplicate keys are errors. What you read is what pgrepl runs: no anchors, aliases or merge
/// keys (and so no alias bombs); shallow nesting.
fn strict_options() -> serde_saphyr::options::Options {
    let mut options = serde_saphyr::options::Options::default();
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::Error;
    options.merge_keys = serde_saphyr::options::MergeKeyPolicy::Error;
    let mut budget = serde_saphyr::Budget::default();
    budget.max_aliases = 0;
    budget.max_anchors = 0;
    budget.max_depth = 16;
    options.budget = Some(budget);
    options
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

/// The fix for a parser message, by its kind.
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
