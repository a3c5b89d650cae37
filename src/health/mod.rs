//! The pure model behind `pgrepl status`: what each server said, what it means for the cluster,
//! and the findings a DBA acts on — each with a severity and the command that fixes it.
//!
//! This module owns the types of the JSON document (`schemas/status.schema.json`) and [`assess`],
//! which turns a [`Topology`] into a [`ClusterView`]: it builds the views and runs the rules of
//! [`rules`], one function per [`FindingCode`]; every fix command comes from [`fixes`]. No I/O
//! here: live states come in through the topology (`steps::probe` probes), a view goes out
//! (`report` renders it, `ops::status` prints it).
//!
//! The live state is the truth: the primary is whoever is writable, a replica's upstream is the
//! host whose WAL sender serves it. The inventory is compared against that, not trusted.

pub mod fixes;
mod login_rules;
mod mode_rules;
mod router_rules;
pub mod rules;
mod slot_rules;
pub mod tls_rules;
mod views;
use views::{
    behind_bytes, host_view, inventory_upstream, is_streaming, reference_primary, replica_view,
    slot_views,
};

use std::fmt;

use schemars::JsonSchema;
use serde::Serialize;

use crate::inventory::Role;
use crate::pg::LSN_PATTERN;
use crate::topology::{Node, Topology};

/// Version of the JSON document (`schemas/status.schema.json`).
pub const FORMAT_VERSION: u32 = 1;

pub use crate::inventory::Thresholds;

/// How bad a finding (or the whole cluster) is; ordered, `Critical` the worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Nothing to do.
    Ok,
    /// A standing choice of the inventory that weakens the cluster (`tls: off`): reported on
    /// every run, but the cluster stays healthy (exit code 0), so `status --wait` still works.
    Notice,
    /// Degraded: the cluster serves, a DBA should look (exit code 10).
    Warning,
    /// Writes or data at risk: act now (exit code 11).
    Critical,
}

/// The kind of a finding: one rule of [`rules`] each. Serialized as the stable string of
/// [`FindingCode::as_str`] (the `code` of `schemas/status.schema.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FindingCode {
    /// A host's server did not answer ([`rules::unreachable`]).
    Unreachable,
    /// No reachable node accepts writes ([`rules::no_primary`]).
    NoPrimary,
    /// More than one node accepts writes ([`rules::split_brain`]).
    SplitBrain,
    /// The live primary is not the inventory's ([`rules::inventory_primary_stale`]).
    InventoryPrimaryStale,
    /// A node is not a copy of the primary ([`rules::foreign_system_identifier`]).
    ForeignSystemIdentifier,
    /// A standby does not stream ([`rules::not_streaming`]).
    NotStreaming,
    /// A standby streams from another host than the inventory says ([`rules::wrong_upstream`]).
    WrongUpstream,
    /// WAL replay is paused on a standby ([`rules::replay_paused`]).
    ReplayPaused,
    /// A standby is behind its thresholds ([`rules::lag`]).
    Lag,
    /// A slot lost WAL its replica needs ([`rules::slot_lost`]).
    SlotLost,
    /// An unused slot retains WAL ([`rules::slot_inactive`]).
    SlotInactive,
    /// Settings wait for a restart ([`rules::pending_restart`]).
    PendingRestart,
    /// `postgresql.auto.conf` overrides what a standby must not inherit ([`rules::auto_conf_override`]).
    AutoConfOverride,
    /// Too few synchronous standbys stream: commits wait ([`mode_rules::sync_standbys_missing`]).
    SyncStandbysMissing,
    /// The WAL archiver's last attempt failed ([`mode_rules::archiving`]).
    ArchiveFailing,
    /// Many segments wait to be archived ([`mode_rules::archiving`]).
    ArchiveBacklog,
    /// The monitor role could not log in: status read as the superuser ([`login_rules::monitor_login_missing`]).
    MonitorLoginMissing,
    /// A router's route does not point where the live topology says ([`router_rules::routers`]).
    RouterStale,
    /// A router could not be read ([`router_rules::routers`]).
    RouterUnreachable,
    /// The inventory turns TLS off ([`tls_rules::tls`]).
    TlsOff,
    /// A server certificate expires within 30 days ([`tls_rules::tls`]).
    TlsCertExpiring,
    /// A server certificate has expired ([`tls_rules::tls`]).
    TlsCertExpired,
    /// A server presents another certificate than its file ([`tls_rules::tls`]).
    TlsCertNotLoaded,
    /// A server has ssl off, or streams WAL without TLS, while TLS is on ([`tls_rules::tls`]).
    TlsPlainReplication,
}

impl FindingCode {
    /// Every code, in the order `assess` runs their rules.
    pub const ALL: [FindingCode; 24] = [
        FindingCode::Unreachable,
        FindingCode::NoPrimary,
        FindingCode::SplitBrain,
        FindingCode::InventoryPrimaryStale,
        FindingCode::ForeignSystemIdentifier,
        FindingCode::NotStreaming,
        FindingCode::WrongUpstream,
        FindingCode::ReplayPaused,
        FindingCode::Lag,
        FindingCode::SlotLost,
        FindingCode::SlotInactive,
        FindingCode::PendingRestart,
        FindingCode::AutoConfOverride,
        FindingCode::SyncStandbysMissing,
        FindingCode::ArchiveFailing,
        FindingCode::ArchiveBacklog,
        FindingCode::MonitorLoginMissing,
        FindingCode::RouterStale,
        FindingCode::RouterUnreachable,
        FindingCode::TlsOff,
        FindingCode::TlsCertExpiring,
        FindingCode::TlsCertExpired,
        FindingCode::TlsCertNotLoaded,
        FindingCode::TlsPlainReplication,
    ];

    /// The stable identifier in JSON and in the text report (`split_brain`, `not_streaming`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            FindingCode::Unreachable => "unreachable",
            FindingCode::NoPrimary => "no_primary",
            FindingCode::SplitBrain => "split_brain",
            FindingCode::InventoryPrimaryStale => "inventory_primary_stale",
            FindingCode::ForeignSystemIdentifier => "foreign_system_identifier",
            FindingCode::NotStreaming => "not_streaming",
            FindingCode::WrongUpstream => "wrong_upstream",
            FindingCode::ReplayPaused => "replay_paused",
            FindingCode::Lag => "lag",
            FindingCode::SlotLost => "slot_lost",
            FindingCode::SlotInactive => "slot_inactive",
            FindingCode::PendingRestart => "pending_restart",
            FindingCode::AutoConfOverride => "auto_conf_override",
            FindingCode::SyncStandbysMissing => "sync_standbys_missing",
            FindingCode::ArchiveFailing => "archive_failing",
            FindingCode::ArchiveBacklog => "archive_backlog",
            FindingCode::MonitorLoginMissing => "monitor_login_missing",
            FindingCode::RouterStale => "router_stale",
            FindingCode::RouterUnreachable => "router_unreachable",
            FindingCode::TlsOff => "tls_off",
            FindingCode::TlsCertExpiring => "tls_cert_expiring",
            FindingCode::TlsCertExpired => "tls_cert_expired",
            FindingCode::TlsCertNotLoaded => "tls_cert_not_loaded",
            FindingCode::TlsPlainReplication => "tls_plain_replication",
        }
    }
}

impl fmt::Display for FindingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that needs a DBA.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Finding {
    /// How bad it is (`notice`, `warning` or `critical`; never `ok`).
    #[schemars(extend("enum" = ["notice", "warning", "critical"]))]
    pub severity: Severity,
    /// What kind of finding it is (serialized as `split_brain`, `not_streaming`, ...).
    pub code: FindingCode,
    /// The host it is about (`null` for the cluster as a whole).
    pub host: Option<String>,
    /// What is wrong, in one sentence.
    pub message: String,
    /// The command (or edit) that fixes it.
    #[schemars(length(min = 1))]
    pub fix: String,
}

/// One host: the inventory's description beside what its server said.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct HostView {
    /// The inventory's name of the host.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Where its server listens.
    pub address: String,
    /// Its server's port.
    #[schemars(range(min = 1))]
    pub port: u16,
    /// The role the inventory gives it.
    pub inventory_role: Role,
    /// Did its server answer?
    pub reachable: bool,
    /// Why it could not be queried.
    pub error: Option<String>,
    /// Live role, from `pg_is_in_recovery()`.
    pub role: Option<Role>,
    /// `server_version`.
    pub server_version: Option<String>,
    /// `pg_control_system().system_identifier`: the same on every copy of one cluster.
    #[schemars(regex(pattern = "^[0-9]+$"))]
    pub system_identifier: Option<String>,
    /// The timeline it is on.
    #[schemars(range(min = 1))]
    pub timeline: Option<u32>,
    /// `pg_current_wal_lsn()` (primary), as `X/Y`.
    #[schemars(regex(pattern = LSN_PATTERN))]
    pub current_lsn: Option<String>,
    /// `pg_last_wal_receive_lsn()` (standby), as `X/Y`.
    #[schemars(regex(pattern = LSN_PATTERN))]
    pub receive_lsn: Option<String>,
    /// `pg_last_wal_replay_lsn()` (standby), as `X/Y`.
    #[schemars(regex(pattern = LSN_PATTERN))]
    pub replay_lsn: Option<String>,
    /// `pg_is_wal_replay_paused()` (standby only).
    pub replay_paused: Option<bool>,
    /// Settings changed in the configuration that wait for a restart.
    pub pending_restart: Vec<String>,
}

/// One reachable standby: who serves it and how far behind it is.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ReplicaView {
    /// The standby's name.
    #[schemars(length(min = 1))]
    pub host: String,
    /// The host the inventory says it streams from.
    pub inventory_upstream: Option<String>,
    /// The host whose WAL sender serves it (live).
    pub upstream: Option<String>,
    /// Its WAL sender is in state `streaming`.
    pub streaming: bool,
    /// `state` in the upstream's `pg_stat_replication`.
    pub state: Option<String>,
    /// `sync_state` in the upstream's `pg_stat_replication`.
    pub sync_state: Option<String>,
    /// Sent by the upstream but not yet replayed (`sent_lsn - replay_lsn`), in bytes.
    pub lag_bytes: Option<u64>,
    /// The upstream's WAL position minus this replica's replay position, in bytes (includes
    /// unsent WAL).
    pub behind_bytes: Option<u64>,
    /// `replay_lag` from the upstream's `pg_stat_replication`, in seconds.
    pub replay_lag_seconds: Option<f64>,
    /// Age of the last replayed transaction, in seconds (`now() -
    /// pg_last_xact_replay_timestamp()`; grows while the primary is idle: not a lag by itself).
    pub last_replay_age_seconds: Option<f64>,
    /// `hosts[].apply_delay` in seconds: a delayed replica (none for the others).
    pub apply_delay_seconds: Option<u64>,
}

/// One replication slot, on the host that keeps it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SlotView {
    /// The host that keeps the slot.
    #[schemars(length(min = 1))]
    pub host: String,
    /// `slot_name`.
    #[schemars(length(min = 1))]
    pub name: String,
    /// `slot_type` (`physical` or `logical`).
    #[schemars(extend("enum" = ["physical", "logical"]))]
    pub slot_type: String,
    /// Is a WAL sender using it?
    pub active: bool,
    /// `wal_status` (`reserved`, `extended`, `unreserved`, `lost`).
    #[schemars(extend("enum" = ["reserved", "extended", "unreserved", "lost", null]))]
    pub wal_status: Option<String>,
    /// `safe_wal_size`, in bytes (`null`: unlimited, or the slot is lost).
    pub safe_wal_size: Option<i64>,
    /// `invalidation_reason` (PostgreSQL 17+; `null` below 17 and on a valid slot).
    pub invalidation_reason: Option<String>,
    /// WAL the slot keeps, in bytes (position minus `restart_lsn`).
    pub retained_bytes: Option<i64>,
}

/// `pgrepl status --format json`: the whole answer of `status`, one document per run.
/// `format_version` changes when a field is removed or changes meaning; fields may be added
/// within a version.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ClusterView {
    /// The document's format version (`FORMAT_VERSION`): 1.
    #[schemars(extend("const" = 1))]
    pub format_version: u32,
    /// The inventory's cluster name.
    #[schemars(length(min = 1))]
    pub cluster: String,
    /// The worst finding's severity (`ok` without findings).
    pub severity: Severity,
    /// `severity` is `ok`.
    pub healthy: bool,
    /// The live primary, when exactly one node accepts writes.
    pub primary: Option<String>,
    /// Wall time of the run, in seconds.
    #[schemars(range(min = 0))]
    pub duration_seconds: f64,
    /// The thresholds the replicas were measured against.
    pub thresholds: Thresholds,
    /// Every host, in inventory order.
    pub hosts: Vec<HostView>,
    /// Every reachable standby, in inventory order.
    pub replicas: Vec<ReplicaView>,
    /// Every slot of every reachable host.
    pub slots: Vec<SlotView>,
    /// Worst first, then by host.
    pub findings: Vec<Finding>,
    /// Each router's routes as observed (empty without routers).
    pub routers: Vec<crate::router::RouterState>,
    /// Each host's TLS as observed (empty with `tls: off`).
    pub tls: Vec<tls_rules::TlsState>,
}

/// Assesses the topology against the inventory and the thresholds: the views of every host,
/// standby and slot, and every rule's findings, worst first, then by host (the cluster's own
/// findings first), in the rules' order among equals.
pub fn assess(topo: &Topology, t: &Thresholds, duration_seconds: f64) -> ClusterView {
    let mut findings = rules::all(topo, t);
    findings.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.host.cmp(&b.host)));
    let severity = overall(&findings);
    ClusterView {
        format_version: FORMAT_VERSION,
        cluster: topo.inv.cluster.clone(),
        severity,
        healthy: severity == Severity::Ok,
        primary: topo.primary().map(|p| p.name().to_string()),
        duration_seconds,
        thresholds: *t,
        hosts: topo.nodes.iter().map(host_view).collect(),
        replicas: topo.standbys().map(|n| replica_view(topo, n)).collect(),
        slots: slot_views(topo),
        findings,
        routers: Vec::new(),
        tls: Vec::new(),
    }
}

impl ClusterView {
    /// Adds what the routers' routes were seen to point at, and their findings (the view's
    /// severity and order recomputed).
    pub fn with_routers(
        mut self,
        topo: &Topology,
        states: Vec<crate::router::RouterState>,
    ) -> ClusterView {
        self.add(router_rules::routers(topo, &states));
        self.routers = states;
        self
    }

    /// Adds each host's TLS state and the TLS findings (`tls_rules`).
    pub fn with_tls(
        mut self,
        inv: &crate::inventory::Inventory,
        states: Vec<tls_rules::TlsState>,
    ) -> ClusterView {
        self.add(tls_rules::tls(inv, &states));
        self.tls = states;
        self
    }

    /// More findings: worst first again, the severity recomputed.
    fn add(&mut self, more: Vec<Finding>) {
        self.findings.extend(more);
        self.findings
            .sort_by(|a, b| b.severity.cmp(&a.severity).then(a.host.cmp(&b.host)));
        self.severity = overall(&self.findings);
        self.healthy = self.severity == Severity::Ok;
    }
}

/// The cluster's severity: its worst finding's, notices aside.
fn overall(findings: &[Finding]) -> Severity {
    findings
        .iter()
        .map(|f| f.severity)
        .filter(|s| *s > Severity::Notice)
        .max()
        .unwrap_or(Severity::Ok)
}

#[cfg(test)]
mod tests;
