//! The stable code of each finding (`status`'s JSON `code`, the text report's word): one per
//! rule, in the order `assess` runs them.

use std::fmt;

use schemars::JsonSchema;
use serde::Serialize;

/// The kind of a finding: one rule of [`super::rules`] each. Serialized as the stable string of
/// [`FindingCode::as_str`] (the `code` of `schemas/status.schema.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FindingCode {
    /// A host's server did not answer ([`super::rules::unreachable`]).
    Unreachable,
    /// No reachable node accepts writes ([`super::rules::no_primary`]).
    NoPrimary,
    /// More than one node accepts writes ([`super::rules::split_brain`]).
    SplitBrain,
    /// The live primary is not the inventory's ([`super::rules::inventory_primary_stale`]).
    InventoryPrimaryStale,
    /// A node is not a copy of the primary ([`super::rules::foreign_system_identifier`]).
    ForeignSystemIdentifier,
    /// A standby does not stream ([`super::rules::not_streaming`]).
    NotStreaming,
    /// A standby streams from another host than the inventory says ([`super::rules::wrong_upstream`]).
    WrongUpstream,
    /// WAL replay is paused on a standby ([`super::rules::replay_paused`]).
    ReplayPaused,
    /// A standby is behind its thresholds ([`super::rules::lag`]).
    Lag,
    /// A slot lost WAL its replica needs ([`super::rules::slot_lost`]).
    SlotLost,
    /// An unused slot retains WAL ([`super::rules::slot_inactive`]).
    SlotInactive,
    /// Settings wait for a restart ([`super::rules::pending_restart`]).
    PendingRestart,
    /// `postgresql.auto.conf` overrides what a standby must not inherit ([`super::rules::auto_conf_override`]).
    AutoConfOverride,
    /// Too few synchronous standbys stream: commits wait ([`super::mode_rules::sync_standbys_missing`]).
    SyncStandbysMissing,
    /// The WAL archiver's last attempt failed ([`super::mode_rules::archiving`]).
    ArchiveFailing,
    /// Many segments wait to be archived ([`super::mode_rules::archiving`]).
    ArchiveBacklog,
    /// The monitor role could not log in: status read as the superuser ([`super::login_rules::monitor_login_missing`]).
    MonitorLoginMissing,
    /// A router's route does not point where the live topology says ([`super::router_rules::routers`]).
    RouterStale,
    /// A router could not be read ([`super::router_rules::routers`]).
    RouterUnreachable,
    /// The inventory turns TLS off ([`super::tls_rules::tls`]).
    TlsOff,
    /// A server certificate expires within 30 days ([`super::tls_rules::tls`]).
    TlsCertExpiring,
    /// A server certificate has expired ([`super::tls_rules::tls`]).
    TlsCertExpired,
    /// A server has ssl off, or streams WAL without TLS, while TLS is on ([`super::tls_rules::tls`]).
    TlsPlainReplication,
}

impl FindingCode {
    /// Every code, in the order `assess` runs their rules.
    pub const ALL: [FindingCode; 23] = [
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
            FindingCode::TlsPlainReplication => "tls_plain_replication",
        }
    }
}

impl fmt::Display for FindingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
