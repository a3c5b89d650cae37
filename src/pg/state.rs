//! What one server reports about itself and its replication, as plain values: the answer of
//! `db::Db::node_state` (one round trip), read by `topology`, `health` and the operations.
//! No I/O here.

use crate::pg::Lsn;

/// What one server reported.
#[derive(Debug, Clone, Default)]
pub struct NodeState {
    /// `pg_is_in_recovery()`: a standby (or a server still starting up).
    pub in_recovery: bool,
    /// `server_version`, e.g. `15.8`.
    pub server_version: String,
    /// `pg_control_system().system_identifier`: the same on a primary and all its copies.
    pub system_identifier: String,
    /// The timeline it is on (`pg_control_checkpoint()`, or the WAL receiver's on a standby).
    pub timeline: Option<u32>,
    /// `pg_current_wal_lsn()` on a primary.
    pub current_lsn: Option<Lsn>,
    /// `pg_last_wal_receive_lsn()` on a standby.
    pub receive_lsn: Option<Lsn>,
    /// `pg_last_wal_replay_lsn()` on a standby.
    pub replay_lsn: Option<Lsn>,
    /// `pg_get_wal_replay_pause_state()` is not `not paused` (or `pg_is_wal_replay_paused()`).
    pub replay_paused: bool,
    /// Seconds since the last replayed transaction committed on the primary.
    pub last_replay_age_s: Option<f64>,
    /// Its WAL receiver, on a standby that has one.
    pub receiver: Option<Receiver>,
    /// Its WAL senders (`pg_stat_replication`), one per standby or base backup it serves.
    pub senders: Vec<Sender>,
    /// Its replication slots.
    pub slots: Vec<Slot>,
    /// Settings changed in the files that wait for a restart (`pg_settings.pending_restart`).
    pub pending_restart: Vec<String>,
    /// The settings its `postgresql.auto.conf` (`ALTER SYSTEM`) sets, with their lines, as
    /// `pg_file_settings` lists them (they override `postgresql.conf`).
    pub auto_conf: Vec<(String, u32)>,
    /// Data checksums or wal_log_hints: pg_rewind can rewind this node.
    pub rewindable: bool,
    /// A primary's timeline history file (`pg_wal/<timeline>.history`: one line per earlier
    /// timeline, `parent<TAB>switchpoint<TAB>reason`), read only when more than one node accepts
    /// writes (`steps::probe`); `None` otherwise, on timeline 1 and on standbys.
    pub timeline_history: Option<String>,
    /// `max_wal_senders`.
    pub max_wal_senders: i32,
    /// `max_replication_slots`.
    pub max_replication_slots: i32,
    /// `synchronous_standby_names` in force.
    pub sync_standby_names: String,
    /// The WAL archiver, as `pg_stat_archiver` and `pg_wal/archive_status` show it.
    pub archive: ArchiveState,
}

/// Segments waiting to be archived beyond which the archiver is "behind": `status` warns, and
/// a switchover refuses (a clean shutdown waits for every one of them).
pub const ARCHIVE_BACKLOG_MAX: i64 = 16;

/// The archiver's state for `status` (part of [`NodeState`]).
#[derive(Debug, Clone, Default)]
pub struct ArchiveState {
    /// `archive_mode`: `off`, `on` or `always`.
    pub mode: String,
    /// The last attempt failed (the last failure is newer than the last success).
    pub failing: bool,
    /// The segment of the last failure.
    pub last_failed_wal: Option<String>,
    /// Seconds since the last segment was archived (none archived: `None`).
    pub last_archived_age_s: Option<f64>,
    /// Segments waiting (`.ready` files).
    pub ready: i64,
}

impl NodeState {
    /// How far this node's WAL goes: written (primary) or replayed (standby).
    pub fn position(&self) -> Option<Lsn> {
        if self.in_recovery {
            self.replay_lsn
        } else {
            self.current_lsn
        }
    }
}

/// `pg_stat_wal_receiver` of a standby.
#[derive(Debug, Clone, Default)]
pub struct Receiver {
    /// `pg_stat_wal_receiver.status` (`streaming`, `waiting`, ...).
    pub status: String,
    /// The host it connects to.
    pub sender_host: Option<String>,
    /// The port it connects to.
    pub sender_port: Option<i32>,
}

/// One row of `pg_stat_replication`.
#[derive(Debug, Clone, Default)]
pub struct Sender {
    /// The standby's `application_name` (pgrepl sets the host's name).
    pub application_name: String,
    /// The standby's address, when it connects over TCP.
    pub client_addr: Option<String>,
    /// `startup`, `catchup`, `streaming`, `backup` or `stopping`.
    pub state: String,
    /// `async`, `potential`, `sync` or `quorum`.
    pub sync_state: String,
    /// The last WAL position sent.
    pub sent_lsn: Option<Lsn>,
    /// The last WAL position the standby replayed.
    pub replay_lsn: Option<Lsn>,
    /// `replay_lag`, in seconds.
    pub replay_lag_s: Option<f64>,
}

/// One row of `pg_replication_slots`.
#[derive(Debug, Clone, Default)]
pub struct Slot {
    /// The slot's name.
    pub name: String,
    /// `physical` or `logical`.
    pub slot_type: String,
    /// A WAL sender uses it now.
    pub active: bool,
    /// `reserved`, `extended`, `unreserved` or `lost` (PostgreSQL 13+).
    pub wal_status: Option<String>,
    /// Bytes that can still be written before the slot risks losing WAL (`NULL`: no limit, or
    /// the slot is lost).
    pub safe_wal_size: Option<i64>,
    /// Why the slot was invalidated (`invalidation_reason`, PostgreSQL 17+; `None` below 17 and
    /// on a valid slot): `wal_removed`, `idle_timeout` (18: `idle_replication_slot_timeout`),
    /// `rows_removed`, `wal_level_insufficient`.
    pub invalidation_reason: Option<String>,
    /// WAL the slot holds back, in bytes (current position minus `restart_lsn`).
    pub retained_bytes: Option<i64>,
}

/// The WAL archiver of a server (`pg_stat_archiver` and `pg_wal/archive_status`): a clean
/// shutdown waits for it to archive every segment, so a failing or stuck archiver holds a
/// switchover's stop up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Archiver {
    /// `archive_mode`: `off`, `on` or `always`.
    pub mode: String,
    /// Segments archived since the statistics were reset.
    pub archived_count: i64,
    /// Failed attempts since the statistics were reset.
    pub failed_count: i64,
    /// The segment of the last failure.
    pub last_failed_wal: Option<String>,
    /// When the last failure was (the server's text form).
    pub last_failed_time: Option<String>,
    /// When the last success was.
    pub last_archived_time: Option<String>,
    /// The last attempt failed (the last failure is newer than the last success).
    pub failing: bool,
    /// Segments waiting to be archived (`.ready` files in `pg_wal/archive_status`).
    pub ready: i64,
}
