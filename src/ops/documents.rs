//! The JSON documents of the commands under `ops/` (`--format json`): one type per command's
//! result and per `--dry-run` plan. Each is printed as it is serialized (`Ui::json`,
//! `Context::result`), and `schemas/<name>.schema.json` is generated from it (`schemas.rs`
//! lists them); the doc comments here become the schemas' descriptions. `status`'s document is
//! `health::ClusterView`, a failure's is `error::ErrorDocument`. No logic here.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;

use crate::error::Problem;
use crate::pg::datadir::DirState;
use crate::pg::LSN_PATTERN;
use crate::steps::history::Record;

use super::init::HostPlan;

/// `pgrepl init|promote|rebuild|unlock|slot drop --dry-run --format json`: every check passed;
/// the steps the command would run, nothing was changed.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct DryRunDocument {
    /// Always `true`.
    #[schemars(extend("const" = true))]
    pub dry_run: bool,
    /// The command, with its target (`init`, `promote r1`, `rebuild r2`, `unlock`, `slot drop`).
    pub command: String,
    /// The steps it would run, in order, one line each (empty: nothing to do).
    pub steps: Vec<String>,
}

/// `pgrepl init --format json`: the cluster runs as the inventory says.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct InitDocument {
    /// The inventory's cluster name.
    pub cluster: String,
    /// The primary's host name.
    pub primary: String,
    /// What this run changed, one line each, in order (empty: the cluster already was so).
    pub changes: Vec<String>,
    /// Wall time of the run, in seconds.
    pub seconds: f64,
}

/// `pgrepl tls renew --format json`: new certificates installed and verified.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct TlsRenewDocument {
    /// The inventory's cluster name.
    pub cluster: String,
    /// A new cluster CA was created (`--ca`); the previous one stays trusted until it expires.
    pub ca_renewed: bool,
    /// Each renewed host, in inventory order.
    pub hosts: Vec<RenewedHost>,
    /// Wall time of the run, in seconds.
    pub seconds: f64,
}

/// One host of `tls renew`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RenewedHost {
    /// The host's name.
    pub host: String,
    /// What changed on it, one line each.
    pub changes: Vec<String>,
    /// When its server certificate expires (RFC 3339, UTC).
    pub not_after: Option<String>,
    /// The TLS version and cipher of the login that verified it (`TLSv1.3 TLS_AES_256_GCM_SHA384`);
    /// null when its server is stopped.
    pub tls: Option<String>,
}

/// `pgrepl check --format json`: init's preflight on every host, nothing changed (exit 4 when
/// `problems` is not empty; the document is printed all the same).
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct CheckDocument {
    /// The inventory's cluster name.
    pub cluster: String,
    /// No problem was found (`problems` is empty).
    pub ok: bool,
    /// Every inventory host, in inventory order.
    pub hosts: Vec<CheckHost>,
    /// Every problem that would stop `init`.
    pub problems: Vec<Problem>,
    /// What `init` would do all the same, but a DBA should know (printed on stderr too).
    pub warnings: Vec<Problem>,
}

/// What `check` learned about one host.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct CheckHost {
    /// The inventory host.
    pub name: String,
    /// The host was reached and its data directory inspected.
    pub reachable: bool,
    /// How it was reached (`ssh postgres@…`, `local`); `null` when it was not.
    pub reached_by: Option<String>,
    /// Major version of its installed server binaries (`null`: unknown).
    pub server_major_version: Option<u32>,
    /// What its data directory holds (`null`: not inspected).
    pub data_dir: Option<DirState>,
    /// A server runs on the data directory.
    pub running: bool,
    /// The cluster's system identifier, from the running server or `pg_controldata`.
    #[schemars(regex(pattern = "^[0-9]+$"))]
    pub system_identifier: Option<String>,
    /// `pg_is_in_recovery()` of the running server (`null`: it does not run).
    pub in_recovery: Option<bool>,
    /// Settings in its `postgresql.auto.conf` that a standby must not inherit: `[name, line]`.
    pub auto_conf_overrides: Vec<(String, usize)>,
    /// What `init` would do with the host (`null`: there are problems).
    pub init_would: Option<HostPlan>,
}

/// `pgrepl render --format json`: the files `init` would install, per host (no host contacted).
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RenderDocument {
    /// The inventory's cluster name.
    pub cluster: String,
    /// Host name → file name (`postgresql.conf`, `pg_hba.conf`, …) → its content.
    pub hosts: BTreeMap<String, BTreeMap<String, String>>,
}

/// `pgrepl promote --format json`: the target is the primary (failover).
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct PromoteDocument {
    /// The host promoted.
    pub promoted: String,
    /// Its timeline before the promotion (`null`: unknown).
    pub old_timeline: Option<u32>,
    /// Its timeline after the promotion (`null`: unknown).
    pub new_timeline: Option<u32>,
    /// Its WAL position at the promotion, as `X/Y`.
    #[schemars(regex(pattern = LSN_PATTERN))]
    pub promoted_lsn: Option<String>,
    /// The old primary's last WAL position, when pgrepl stopped it (`null`: unreachable).
    #[schemars(regex(pattern = LSN_PATTERN))]
    pub old_primary_last_lsn: Option<String>,
    /// WAL the old primary wrote past the promoted position, in bytes (`null`: unknown).
    pub bytes_maybe_lost: Option<u64>,
    /// From pgrepl's start until the target accepted writes, in seconds.
    pub seconds_to_writable: f64,
    /// The other replicas that follow the new primary.
    pub siblings_following: Vec<String>,
    /// Old primaries that could not be fenced (unreachable): keep them down, then rebuild them.
    pub unfenced: Vec<String>,
}

/// `pgrepl switchover --format json`: the candidate is the primary, the old primary follows it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SwitchoverDocument {
    /// The primary before.
    pub old_primary: String,
    /// The primary now.
    pub new_primary: String,
    /// The new primary's timeline (`null`: unknown).
    pub timeline: Option<u32>,
    /// The old primary's shutdown checkpoint, which the candidate replayed before its promotion.
    #[schemars(regex(pattern = LSN_PATTERN))]
    pub shutdown_checkpoint_lsn: String,
    /// How long no server accepted writes, in seconds.
    pub write_gap_seconds: f64,
    /// Wall time of the run, in seconds.
    pub seconds: f64,
}

/// `pgrepl switchover --dry-run --format json`: every check passed; the steps it would run.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SwitchoverPlanDocument {
    /// Always `true`.
    #[schemars(extend("const" = true))]
    pub dry_run: bool,
    /// The primary now.
    pub old_primary: String,
    /// The candidate that would become the primary.
    pub new_primary: String,
    /// The steps, in order, one line each.
    pub steps: Vec<String>,
}

/// How `rebuild` made the host a replica again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RebuiltBy {
    /// `pg_rewind` against the upstream.
    Rewind,
    /// A fresh `pg_basebackup` clone.
    Clone,
}

/// `pgrepl rebuild --format json`: the host is a replica of its upstream again.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RebuildDocument {
    /// The host rebuilt.
    pub host: String,
    /// The host it streams from.
    pub upstream: String,
    /// How it was rebuilt.
    pub method: RebuiltBy,
    /// Why that method (e.g. why pg_rewind was not possible).
    pub reason: String,
    /// Wall time of the run, in seconds.
    pub seconds: f64,
    /// A clone kept the previous data directory aside (`--keep-old`).
    pub old_copy_kept: bool,
    /// Where the host left the upstream's history (`null`: it did not, or unknown).
    #[schemars(regex(pattern = LSN_PATTERN))]
    pub diverged_at: Option<String>,
    /// WAL pg_rewind discarded past that point, in bytes.
    pub discarded_bytes: Option<u64>,
    /// Transactions committed in the discarded WAL (`null`: not counted).
    pub discarded_transactions: Option<u64>,
    /// The commit time of the last of them, as pg_waldump prints it.
    pub last_discarded_commit: Option<String>,
    /// The directory on the host that keeps the discarded WAL segments.
    pub discarded_wal_kept_in: Option<String>,
}

/// `pgrepl destroy [--dry-run] --format json`: what was (or would be) stopped and removed.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct DestroyDocument {
    /// `--dry-run`: nothing was changed.
    pub dry_run: bool,
    /// Every inventory host.
    pub hosts: Vec<super::destroy::HostPlan>,
    /// One line per router: what was (or, with `dry_run`, would be) stopped and removed.
    pub routers: Vec<String>,
}

/// `pgrepl unlock --format json`: the stale locks cleared.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct UnlockDocument {
    /// Each lock cleared (empty: there was none).
    pub cleared: Vec<ClearedLock>,
}

/// One cleared lock.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ClearedLock {
    /// The host whose lock it was.
    pub host: String,
    /// Who held it (operation, user@machine, pid, for how long).
    pub holder: String,
}

/// `pgrepl slot drop --format json`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SlotDropDocument {
    /// The host that kept the slot.
    pub host: String,
    /// The slot.
    pub slot: String,
    /// It was dropped (`false`: there was no such slot).
    pub dropped: bool,
}

/// `pgrepl history --format json`: what pgrepl did to this cluster, oldest first.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct HistoryDocument {
    /// The records of every host's journal, merged (each once), oldest first.
    pub entries: Vec<Record>,
    /// The hosts whose journal could not be read.
    pub unreadable: Vec<UnreadableJournal>,
}

/// A journal that could not be read.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct UnreadableJournal {
    /// The host.
    pub host: String,
    /// Why.
    pub error: String,
}
