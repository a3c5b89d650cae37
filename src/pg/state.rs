//! What one server reports about itself and its replication, as plain values: the answer of
//! `db::Db::node_state` (one round trip), read by `topology`, `health` and the operations.
//! No I/O here.

use crate::pg::Lsn;

/// What one server reported.
#[derive(Debug, Clone, Default)]
pub struct NodeState {
    pub in_recovery: bool,
    pub server_version: String,
    pub system_identifier: String,
    pub timeline: Option<u32>,
    pub current_lsn: Option<Lsn>,
    pub receive_lsn: Option<Lsn>,
    pub replay_lsn: Option<Lsn>,
    pub replay_paused: bool,
    /// Seconds since the last replayed transaction committed on the primary.
    pub last_replay_age_s: Option<f64>,
    pub receiver: Option<Receiver>,
    pub senders: Vec<Sender>,
    pub slots: Vec<Slot>,
    pub pending_restart: Vec<String>,
    /// Data checksums or wal_log_hints: pg_rewind can rewind this node.
    pub rewindable: bool,
    pub max_wal_senders: i32,
    pub max_replication_slots: i32,
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
    pub status: String,
    pub sender_host: Option<String>,
    pub sender_port: Option<i32>,
}

/// One row of `pg_stat_replication`.
#[derive(Debug, Clone, Default)]
pub struct Sender {
    pub application_name: String,
    pub client_addr: Option<String>,
    pub state: String,
    pub sync_state: String,
    pub sent_lsn: Option<Lsn>,
    pub replay_lsn: Option<Lsn>,
    pub replay_lag_s: Option<f64>,
}

/// One row of `pg_replication_slots`.
#[derive(Debug, Clone, Default)]
pub struct Slot {
    pub name: String,
    pub slot_type: String,
    pub active: bool,
    pub wal_status: Option<String>,
    pub safe_wal_size: Option<i64>,
    pub retained_bytes: Option<i64>,
}
