//! `Db::node_state`: everything `status` and the preflights read from one server, in one round
//! trip (the server builds one JSON document), parsed into `pg::state::NodeState`. Read-only: one
//! SELECT that changes nothing; what the state means is `health`'s to judge.

use super::Db;
use crate::pg::wal::{replay_timeline, FirstSegment};
use crate::pg::Lsn;

/// Everything `status` reads from one server, built by the server as one JSON document so that
/// it costs one round trip (simple protocol): through an SSH-forwarded socket each round trip
/// is expensive, and `status` must stay fast for many hosts. One statement serves PostgreSQL 13
/// to 18: a column only some majors have is read through `to_jsonb(row)`, so it is NULL where it
/// does not exist (`pg_replication_slots.invalidation_reason`, 17+).
///
/// `status` runs it as the monitor role, so every part must work for a `pg_monitor` member on
/// 13 to 18: `pg_stat_replication` and `pg_stat_wal_receiver` show every column to
/// `pg_read_all_stats`, `pg_settings` every setting to `pg_read_all_settings`, and
/// `pg_ls_waldir()` / `pg_ls_archive_statusdir()` are granted to `pg_monitor`;
/// `pg_control_system()`, `pg_control_checkpoint()`, `pg_stat_archiver` and
/// `pg_replication_slots` are PUBLIC. Only `pg_file_settings` is superuser-only: `init` grants
/// it to the monitor role (`steps::roles::MONITOR_RELATIONS`). A timeline history file is not
/// read here (`pg_read_file` reads any file of the data directory): `steps::probe` reads it
/// through the transport when it is needed.
const NODE_STATE_SQL: &str = r#"SELECT pg_catalog.json_build_object(
  'in_recovery', pg_catalog.pg_is_in_recovery(),
  'server_version', pg_catalog.current_setting('server_version'),
  'system_identifier', (SELECT system_identifier::pg_catalog.text FROM pg_catalog.pg_control_system()),
  'current_lsn', CASE WHEN pg_catalog.pg_is_in_recovery() THEN NULL ELSE pg_catalog.pg_current_wal_lsn()::pg_catalog.text END,
  'receive_lsn', pg_catalog.pg_last_wal_receive_lsn()::pg_catalog.text,
  'replay_lsn', pg_catalog.pg_last_wal_replay_lsn()::pg_catalog.text,
  'replay_paused', CASE WHEN pg_catalog.pg_is_in_recovery() THEN pg_catalog.pg_is_wal_replay_paused() ELSE false END,
  'last_replay_age_s', EXTRACT(epoch FROM pg_catalog.now() - pg_catalog.pg_last_xact_replay_timestamp())::pg_catalog.float8,
  'wal_file', CASE WHEN pg_catalog.pg_is_in_recovery() THEN NULL ELSE pg_catalog.pg_walfile_name(pg_catalog.pg_current_wal_lsn()) END,
  'checkpoint_tli', (SELECT timeline_id FROM pg_catalog.pg_control_checkpoint()),
  'wal_segment_size', (SELECT setting::pg_catalog.int8 FROM pg_catalog.pg_settings WHERE name = 'wal_segment_size'),
  'wal_timelines', CASE WHEN pg_catalog.pg_is_in_recovery() THEN (SELECT COALESCE(pg_catalog.json_agg(t ORDER BY t.tli), '[]'::pg_catalog.json) FROM (
               SELECT pg_catalog.substr(name, 1, 8) AS tli, pg_catalog.min(pg_catalog.substr(name, 9, 16)) AS first
               FROM pg_catalog.pg_ls_waldir() WHERE name OPERATOR(pg_catalog.~) '^[0-9A-F]{24}$' GROUP BY 1) t) END,
  'receiver', (SELECT pg_catalog.row_to_json(w) FROM (SELECT status, sender_host, sender_port, received_tli
               FROM pg_catalog.pg_stat_wal_receiver) w),
  'senders', (SELECT COALESCE(pg_catalog.json_agg(s ORDER BY s.application_name), '[]'::pg_catalog.json) FROM (
               SELECT application_name, pg_catalog.host(client_addr) AS client_addr, state, sync_state,
                      sent_lsn::pg_catalog.text AS sent_lsn, replay_lsn::pg_catalog.text AS replay_lsn,
                      EXTRACT(epoch FROM replay_lag)::pg_catalog.float8 AS replay_lag_s
               FROM pg_catalog.pg_stat_replication) s),
  'slots', (SELECT COALESCE(pg_catalog.json_agg(s ORDER BY s.slot_name), '[]'::pg_catalog.json) FROM (
               SELECT slot_name::pg_catalog.text AS slot_name, slot_type, active, wal_status, safe_wal_size,
                      pg_catalog.to_jsonb(r) OPERATOR(pg_catalog.->>) 'invalidation_reason' AS invalidation_reason,
                      pg_catalog.pg_wal_lsn_diff(CASE WHEN pg_catalog.pg_is_in_recovery() THEN pg_catalog.pg_last_wal_replay_lsn()
                        ELSE pg_catalog.pg_current_wal_lsn() END, restart_lsn)::pg_catalog.int8 AS retained_bytes
               FROM pg_catalog.pg_replication_slots r) s),
  'pending_restart', (SELECT COALESCE(pg_catalog.json_agg(name ORDER BY name), '[]'::pg_catalog.json)
               FROM pg_catalog.pg_settings WHERE pending_restart),
  'auto_conf', (SELECT COALESCE(pg_catalog.json_agg(pg_catalog.json_build_array(name, sourceline) ORDER BY sourceline), '[]'::pg_catalog.json)
               FROM pg_catalog.pg_file_settings WHERE sourcefile OPERATOR(pg_catalog.~) '/postgresql\.auto\.conf$'),
  'data_checksums', pg_catalog.current_setting('data_checksums') = 'on',
  'wal_log_hints', pg_catalog.current_setting('wal_log_hints') = 'on',
  'max_wal_senders', pg_catalog.current_setting('max_wal_senders')::pg_catalog.int4,
  'max_replication_slots', pg_catalog.current_setting('max_replication_slots')::pg_catalog.int4,
  'sync_standby_names', pg_catalog.current_setting('synchronous_standby_names'),
  'archive', (SELECT pg_catalog.json_build_object(
               'mode', pg_catalog.current_setting('archive_mode'),
               'failing', COALESCE(a.last_failed_time > COALESCE(a.last_archived_time, '-infinity'), false),
               'last_failed_wal', a.last_failed_wal,
               'last_archived_age_s', EXTRACT(epoch FROM pg_catalog.now() - a.last_archived_time)::pg_catalog.float8,
               'ready', CASE WHEN pg_catalog.current_setting('archive_mode') = 'off' THEN 0 ELSE
                 (SELECT pg_catalog.count(*) FROM pg_catalog.pg_ls_archive_statusdir() s
                  WHERE s.name OPERATOR(pg_catalog.~~) '%.ready') END)
               FROM pg_catalog.pg_stat_archiver a)
)::pg_catalog.text"#;

/// The oldest segment file of one timeline in a standby's `pg_wal`.
#[derive(serde::Deserialize)]
struct RawFirstSegment {
    tli: String,
    first: String,
}

#[derive(serde::Deserialize)]
struct RawNode {
    in_recovery: bool,
    server_version: String,
    system_identifier: String,
    current_lsn: Option<String>,
    receive_lsn: Option<String>,
    replay_lsn: Option<String>,
    replay_paused: bool,
    last_replay_age_s: Option<f64>,
    wal_file: Option<String>,
    checkpoint_tli: Option<u32>,
    wal_segment_size: Option<u64>,
    wal_timelines: Option<Vec<RawFirstSegment>>,
    receiver: Option<RawReceiver>,
    senders: Vec<RawSender>,
    slots: Vec<RawSlot>,
    pending_restart: Vec<String>,
    auto_conf: Vec<(String, u32)>,
    data_checksums: bool,
    wal_log_hints: bool,
    max_wal_senders: i32,
    max_replication_slots: i32,
    sync_standby_names: String,
    archive: RawArchive,
}

#[derive(serde::Deserialize)]
struct RawArchive {
    mode: String,
    failing: bool,
    last_failed_wal: Option<String>,
    last_archived_age_s: Option<f64>,
    ready: i64,
}

#[derive(serde::Deserialize)]
struct RawReceiver {
    status: String,
    sender_host: Option<String>,
    sender_port: Option<i32>,
    received_tli: Option<u32>,
}

#[derive(serde::Deserialize)]
struct RawSender {
    application_name: String,
    client_addr: Option<String>,
    state: Option<String>,
    sync_state: Option<String>,
    sent_lsn: Option<String>,
    replay_lsn: Option<String>,
    replay_lag_s: Option<f64>,
}

#[derive(serde::Deserialize)]
struct RawSlot {
    slot_name: String,
    slot_type: String,
    active: bool,
    wal_status: Option<String>,
    safe_wal_size: Option<i64>,
    invalidation_reason: Option<String>,
    retained_bytes: Option<i64>,
}

impl From<RawArchive> for crate::pg::state::ArchiveState {
    fn from(a: RawArchive) -> Self {
        crate::pg::state::ArchiveState {
            mode: a.mode,
            failing: a.failing,
            last_failed_wal: a.last_failed_wal,
            last_archived_age_s: a.last_archived_age_s,
            ready: a.ready,
        }
    }
}

fn lsn_of(s: &Option<String>) -> Option<Lsn> {
    s.as_deref().and_then(Lsn::parse)
}

/// The timeline a server is on. A primary's is in its current WAL file name. A standby's is
/// the timeline of the WAL it replays (from the segments in its `pg_wal`), else the one it
/// receives, else its last restartpoint's — which lags behind a promotion elsewhere while its
/// WAL receiver is down, so it is only the last resort.
fn timeline(r: &RawNode, receiver_tli: Option<u32>) -> Option<u32> {
    let replaying = || {
        let segs: Vec<FirstSegment> = r
            .wal_timelines
            .as_deref()?
            .iter()
            .map(|s| FirstSegment {
                tli: s.tli.clone(),
                first: s.first.clone(),
            })
            .collect();
        replay_timeline(&segs, lsn_of(&r.replay_lsn)?, r.wal_segment_size?)
    };
    r.wal_file
        .as_deref()
        .and_then(|f| u32::from_str_radix(f.get(..8)?, 16).ok())
        .or_else(|| replaying().max(receiver_tli).max(r.checkpoint_tli))
}

/// The archiver's state in one row (see [`crate::pg::state::Archiver`]).
const ARCHIVER_SQL: &str = "SELECT pg_catalog.current_setting('archive_mode'), a.archived_count, \
     a.failed_count, a.last_failed_wal, a.last_failed_time::pg_catalog.text, \
     a.last_archived_time::pg_catalog.text, \
     COALESCE(a.last_failed_time > COALESCE(a.last_archived_time, '-infinity'), false), \
     (SELECT pg_catalog.count(*) FROM pg_catalog.pg_ls_archive_statusdir() s \
      WHERE s.name OPERATOR(pg_catalog.~~) '%.ready') \
     FROM pg_catalog.pg_stat_archiver a";

impl Db {
    /// The WAL archiver's state.
    pub async fn archiver(&self) -> anyhow::Result<crate::pg::state::Archiver> {
        let rows = self.rows(ARCHIVER_SQL, &[]).await?;
        let r = rows
            .first()
            .ok_or_else(|| anyhow::anyhow!("pg_stat_archiver returned no row"))?;
        Ok(crate::pg::state::Archiver {
            mode: r.get(0),
            archived_count: r.get(1),
            failed_count: r.get(2),
            last_failed_wal: r.get(3),
            last_failed_time: r.get(4),
            last_archived_time: r.get(5),
            failing: r.get(6),
            ready: r.get(7),
        })
    }

    /// Everything `status` needs from this server, in one round trip.
    pub async fn node_state(&self) -> anyhow::Result<crate::pg::state::NodeState> {
        use crate::pg::state::{NodeState, Receiver, Sender, Slot};
        use tokio_postgres::SimpleQueryMessage;
        let msgs = self.simple(NODE_STATE_SQL).await?;
        let text = msgs
            .iter()
            .find_map(|m| match m {
                SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                _ => None,
            })
            .ok_or_else(|| anyhow::anyhow!("the server returned no state"))?;
        let r: RawNode = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("cannot read the server's state: {e}"))?;
        let receiver_tli = r.receiver.as_ref().and_then(|w| w.received_tli);
        let tli = timeline(&r, receiver_tli);
        Ok(NodeState {
            in_recovery: r.in_recovery,
            server_version: r
                .server_version
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_string(),
            system_identifier: r.system_identifier,
            timeline: tli,
            current_lsn: lsn_of(&r.current_lsn),
            receive_lsn: lsn_of(&r.receive_lsn),
            replay_lsn: lsn_of(&r.replay_lsn),
            replay_paused: r.replay_paused,
            last_replay_age_s: r.last_replay_age_s,
            receiver: r.receiver.map(|w| Receiver {
                status: w.status,
                sender_host: w.sender_host,
                sender_port: w.sender_port,
            }),
            senders: r
                .senders
                .into_iter()
                .map(|x| Sender {
                    application_name: x.application_name,
                    client_addr: x.client_addr,
                    state: x.state.unwrap_or_default(),
                    sync_state: x.sync_state.unwrap_or_default(),
                    sent_lsn: lsn_of(&x.sent_lsn),
                    replay_lsn: lsn_of(&x.replay_lsn),
                    replay_lag_s: x.replay_lag_s,
                })
                .collect(),
            slots: r
                .slots
                .into_iter()
                .map(|x| Slot {
                    name: x.slot_name,
                    slot_type: x.slot_type,
                    active: x.active,
                    wal_status: x.wal_status,
                    safe_wal_size: x.safe_wal_size,
                    invalidation_reason: x.invalidation_reason,
                    retained_bytes: x.retained_bytes,
                })
                .collect(),
            pending_restart: r.pending_restart,
            auto_conf: r.auto_conf,
            rewindable: r.data_checksums || r.wal_log_hints,
            timeline_history: None,
            max_wal_senders: r.max_wal_senders,
            max_replication_slots: r.max_replication_slots,
            sync_standby_names: r.sync_standby_names,
            archive: r.archive.into(),
        })
    }
}
