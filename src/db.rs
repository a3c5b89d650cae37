//! tokio-postgres: connect to a host's server through the socket its transport provides, with
//! `search_path=''` and timeouts, and the typed queries pgrepl needs. Every function call is
//! schema-qualified (`pg_catalog.`), so objects a user creates cannot hijack pgrepl's queries.
//!
//! Every statement goes through one of three wrappers (`rows`, `execute`, `simple`), which log
//! it at DEBUG (`-vv`) with anything after `PASSWORD` redacted ([`redact_sql`]); parameter values
//! are never logged.

use std::borrow::Cow;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Row, SimpleQueryMessage};

use crate::pg::Lsn;

/// One open connection to one server.
pub struct Db {
    client: Client,
    /// The inventory name of the host, for logs.
    host: String,
}

/// Connects as `user` to database `postgres` through the socket directory `dir`.
/// The whole attempt (connect, auth, startup) is bounded by `timeout`.
pub async fn connect(dir: &Path, port: u16, user: &str, timeout: Duration) -> anyhow::Result<Db> {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host_path(dir)
        .port(port)
        .user(user)
        .dbname("postgres")
        .application_name("pgrepl")
        .options("-c search_path= -c statement_timeout=60000 -c lock_timeout=10000")
        .connect_timeout(timeout);
    let (client, conn) = tokio::time::timeout(timeout, cfg.connect(NoTls))
        .await
        .map_err(|_| anyhow::anyhow!("no answer within {}s", timeout.as_secs()))?
        .map_err(|e| anyhow::anyhow!("{}", pg_error_text(&e)))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(Db {
        client,
        host: String::new(),
    })
}

/// The server's own message for an error (SQLSTATE message and detail), not Rust's wrapper.
pub fn pg_error_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(d) => format!("{}: {} ({d})", db.severity(), db.message()),
            None => format!("{}: {}", db.severity(), db.message()),
        },
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(x) = src {
                s.push_str(&format!(": {x}"));
                src = x.source();
            }
            s
        }
    }
}

/// A role's attributes, as `init` checks them.
#[derive(Debug, Clone)]
pub struct RoleInfo {
    pub login: bool,
    pub replication: bool,
    /// Any attribute beyond LOGIN REPLICATION (superuser, createdb, createrole, bypassrls).
    pub extra_privileges: bool,
    /// The stored verifier (`pg_authid.rolpassword`); never printed.
    pub verifier: Option<String>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Db")
    }
}

/// A physical or logical slot.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SlotInfo {
    pub name: String,
    pub slot_type: String,
    pub active: bool,
}

/// One row of `pg_stat_replication`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReplicationRow {
    pub application_name: String,
    pub client_addr: Option<String>,
    pub state: String,
    pub sync_state: String,
    pub sent_lsn: Option<String>,
    pub replay_lsn: Option<String>,
}

fn pg_err(e: tokio_postgres::Error) -> anyhow::Error {
    anyhow::anyhow!("{}", pg_error_text(&e))
}

/// A statement as logged: everything after the first `PASSWORD` keyword (or a SCRAM verifier,
/// wherever it is) replaced by `<redacted>`. `rolpassword` or `password_encryption` are not the
/// keyword.
pub fn redact_sql(sql: &str) -> Cow<'_, str> {
    // ASCII upper-casing keeps byte offsets.
    let upper = sql.to_ascii_uppercase();
    let b = upper.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'$';
    let mut keyword = None;
    let mut from = 0;
    while let Some(i) = upper[from..].find("PASSWORD") {
        let (at, end) = (from + i, from + i + "PASSWORD".len());
        if (at == 0 || !ident(b[at - 1])) && (end == b.len() || !ident(b[end])) {
            keyword = Some(end);
            break;
        }
        from = at + 1;
    }
    let verifier = upper.find("SCRAM-SHA-256$");
    let cut = match (keyword, verifier) {
        (Some(k), Some(v)) => Some(k.min(v)),
        (k, v) => k.or(v),
    };
    match cut {
        None => Cow::Borrowed(sql),
        Some(at) => Cow::Owned(format!("{} <redacted>", sql[..at].trim_end())),
    }
}

impl Db {
    fn log(&self, sql: &str) {
        let one_line = redact_sql(sql)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        tracing::debug!(host = %self.host, sql = %one_line, "sql");
    }

    /// A statement with parameters (extended protocol): its rows.
    async fn rows(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> anyhow::Result<Vec<Row>> {
        self.log(sql);
        self.client.query(sql, params).await.map_err(pg_err)
    }

    /// A statement without parameters (simple protocol, one round trip): its messages.
    async fn simple(&self, sql: &str) -> anyhow::Result<Vec<SimpleQueryMessage>> {
        self.log(sql);
        self.client.simple_query(sql).await.map_err(pg_err)
    }

    /// The first row of a statement with parameters.
    async fn row(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> anyhow::Result<Row> {
        self.rows(sql, params)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| anyhow::anyhow!("the server returned no row"))
    }

    async fn one_text(&self, sql: &str) -> anyhow::Result<String> {
        Ok(self.row(sql, &[]).await?.get::<_, String>(0))
    }

    /// `pg_is_in_recovery()`: true on a standby.
    pub async fn in_recovery(&self) -> anyhow::Result<bool> {
        let row = self
            .row("SELECT pg_catalog.pg_is_in_recovery()", &[])
            .await?;
        Ok(row.get(0))
    }

    /// The cluster's system identifier (same on a primary and all its replicas).
    pub async fn system_identifier(&self) -> anyhow::Result<String> {
        self.one_text(
            "SELECT system_identifier::pg_catalog.text FROM pg_catalog.pg_control_system()",
        )
        .await
    }

    /// `pg_postmaster_start_time()` as text: changes exactly when the server restarts.
    pub async fn postmaster_start_time(&self) -> anyhow::Result<String> {
        self.one_text("SELECT pg_catalog.pg_postmaster_start_time()::pg_catalog.text")
            .await
    }

    /// The WAL position: `pg_current_wal_lsn()` on a primary, last replayed on a standby.
    pub async fn wal_lsn(&self) -> anyhow::Result<Option<Lsn>> {
        let s = self
            .one_text(
                "SELECT (CASE WHEN pg_catalog.pg_is_in_recovery() THEN pg_catalog.pg_last_wal_replay_lsn() \
                 ELSE pg_catalog.pg_current_wal_lsn() END)::pg_catalog.text",
            )
            .await
            .unwrap_or_default();
        Ok(Lsn::parse(&s))
    }

    /// Looks up a role's attributes (needs a superuser connection to read the verifier).
    pub async fn role(&self, name: &str) -> anyhow::Result<Option<RoleInfo>> {
        let rows = self
            .rows(
                "SELECT rolcanlogin, rolreplication, (rolsuper OR rolcreatedb OR rolcreaterole OR rolbypassrls), \
                 rolpassword FROM pg_catalog.pg_authid WHERE rolname = $1",
                &[&name],
            )
            .await?;
        Ok(rows.first().map(|r| RoleInfo {
            login: r.get(0),
            replication: r.get(1),
            extra_privileges: r.get(2),
            verifier: r.get(3),
        }))
    }

    /// Which of the function `signatures` may `role` not execute yet? (One round trip.)
    pub async fn missing_execute(
        &self,
        role: &str,
        signatures: &[&str],
    ) -> anyhow::Result<Vec<String>> {
        let sigs: Vec<String> = signatures.iter().map(|s| s.to_string()).collect();
        let rows = self
            .rows(
                "SELECT f FROM pg_catalog.unnest($2::pg_catalog.text[]) AS f WHERE NOT pg_catalog.has_function_privilege($1, f, 'EXECUTE')",
                &[&role, &sigs],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Runs a utility statement (no parameters possible; identifiers quoted by the caller).
    pub async fn execute(&self, sql: &str) -> anyhow::Result<()> {
        self.log(sql);
        self.client.batch_execute(sql).await.map_err(pg_err)
    }

    /// All replication slots.
    pub async fn slots(&self) -> anyhow::Result<Vec<SlotInfo>> {
        let rows = self
            .rows("SELECT slot_name::pg_catalog.text, slot_type, active FROM pg_catalog.pg_replication_slots ORDER BY 1", &[])
            .await?;
        Ok(rows
            .iter()
            .map(|r| SlotInfo {
                name: r.get(0),
                slot_type: r.get(1),
                active: r.get(2),
            })
            .collect())
    }

    /// Creates a physical slot that reserves WAL at once (so a clone started next is covered).
    pub async fn create_physical_slot(&self, name: &str) -> anyhow::Result<()> {
        self.rows(
            "SELECT pg_catalog.pg_create_physical_replication_slot($1, true)",
            &[&name],
        )
        .await?;
        Ok(())
    }

    /// Drops a replication slot.
    pub async fn drop_slot(&self, name: &str) -> anyhow::Result<()> {
        self.rows("SELECT pg_catalog.pg_drop_replication_slot($1)", &[&name])
            .await?;
        Ok(())
    }

    /// The rows of `pg_stat_replication` (the WAL senders of this server).
    pub async fn replication(&self) -> anyhow::Result<Vec<ReplicationRow>> {
        let rows = self
            .rows(
                "SELECT application_name, pg_catalog.host(client_addr), state, sync_state, \
                 sent_lsn::pg_catalog.text, replay_lsn::pg_catalog.text \
                 FROM pg_catalog.pg_stat_replication ORDER BY application_name",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| ReplicationRow {
                application_name: r.get(0),
                client_addr: r.get(1),
                state: r.get::<_, Option<String>>(2).unwrap_or_default(),
                sync_state: r.get::<_, Option<String>>(3).unwrap_or_default(),
                sent_lsn: r.get(4),
                replay_lsn: r.get(5),
            })
            .collect())
    }

    /// `pg_reload_conf()`: pg_hba.conf, pg_ident.conf and reloadable settings take effect.
    pub async fn reload(&self) -> anyhow::Result<()> {
        self.execute("SELECT pg_catalog.pg_reload_conf()").await
    }

    /// Which of `names` can only change with a server restart (context `postmaster`).
    pub async fn restart_only(&self, names: &[String]) -> anyhow::Result<Vec<String>> {
        let rows = self
            .rows(
                "SELECT name FROM pg_catalog.pg_settings WHERE context = 'postmaster' AND name = ANY($1) ORDER BY 1",
                &[&names],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
}

/// Quotes an identifier for a utility statement (`CREATE ROLE "x"`).
pub fn quote_ident(s: &str) -> String {
    postgres_protocol::escape::escape_identifier(s)
}

/// Quotes a literal for a utility statement.
pub fn quote_literal(s: &str) -> String {
    postgres_protocol::escape::escape_literal(s)
}

/// Connect with context: which host, through what.
pub async fn connect_host(
    host: &str,
    dir: &Path,
    port: u16,
    user: &str,
    timeout: Duration,
) -> anyhow::Result<Db> {
    let mut db = connect(dir, port, user, timeout).await.with_context(|| {
        format!(
            "{host}: could not connect to PostgreSQL as {user} through {}",
            dir.display()
        )
    })?;
    db.host = host.to_string();
    Ok(db)
}

/// Everything `status` reads from one server, built by the server as one JSON document so that
/// it costs one round trip (simple protocol): through an SSH-forwarded socket each round trip
/// is expensive, and `status` must stay fast for many hosts.
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
  'receiver', (SELECT pg_catalog.row_to_json(w) FROM (SELECT status, sender_host, sender_port, received_tli
               FROM pg_catalog.pg_stat_wal_receiver) w),
  'senders', (SELECT COALESCE(pg_catalog.json_agg(s ORDER BY s.application_name), '[]'::pg_catalog.json) FROM (
               SELECT application_name, pg_catalog.host(client_addr) AS client_addr, state, sync_state,
                      sent_lsn::pg_catalog.text AS sent_lsn, replay_lsn::pg_catalog.text AS replay_lsn,
                      EXTRACT(epoch FROM replay_lag)::pg_catalog.float8 AS replay_lag_s
               FROM pg_catalog.pg_stat_replication) s),
  'slots', (SELECT COALESCE(pg_catalog.json_agg(s ORDER BY s.slot_name), '[]'::pg_catalog.json) FROM (
               SELECT slot_name::pg_catalog.text AS slot_name, slot_type, active, wal_status, safe_wal_size,
                      pg_catalog.pg_wal_lsn_diff(CASE WHEN pg_catalog.pg_is_in_recovery() THEN pg_catalog.pg_last_wal_replay_lsn()
                        ELSE pg_catalog.pg_current_wal_lsn() END, restart_lsn)::pg_catalog.int8 AS retained_bytes
               FROM pg_catalog.pg_replication_slots) s),
  'pending_restart', (SELECT COALESCE(pg_catalog.json_agg(name ORDER BY name), '[]'::pg_catalog.json)
               FROM pg_catalog.pg_settings WHERE pending_restart),
  'data_checksums', pg_catalog.current_setting('data_checksums') = 'on',
  'wal_log_hints', pg_catalog.current_setting('wal_log_hints') = 'on',
  'max_wal_senders', pg_catalog.current_setting('max_wal_senders')::pg_catalog.int4,
  'max_replication_slots', pg_catalog.current_setting('max_replication_slots')::pg_catalog.int4
)::pg_catalog.text"#;

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
    receiver: Option<RawReceiver>,
    senders: Vec<RawSender>,
    slots: Vec<RawSlot>,
    pending_restart: Vec<String>,
    data_checksums: bool,
    wal_log_hints: bool,
    max_wal_senders: i32,
    max_replication_slots: i32,
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
    retained_bytes: Option<i64>,
}

fn lsn_of(s: &Option<String>) -> Option<Lsn> {
    s.as_deref().and_then(Lsn::parse)
}

impl Db {
    /// Everything `status` needs from this server, in one round trip.
    pub async fn node_state(&self) -> anyhow::Result<crate::health::NodeState> {
        use crate::health::{NodeState, Receiver, Sender, Slot};
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
        Ok(NodeState {
            in_recovery: r.in_recovery,
            server_version: r
                .server_version
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_string(),
            system_identifier: r.system_identifier,
            // The primary's timeline is in its current WAL file name; a standby's is the one it
            // receives (or, when not streaming, its last checkpoint's).
            timeline: r
                .wal_file
                .as_deref()
                .and_then(|f| u32::from_str_radix(f.get(..8)?, 16).ok())
                .or(receiver_tli)
                .or(r.checkpoint_tli),
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
                    retained_bytes: x.retained_bytes,
                })
                .collect(),
            pending_restart: r.pending_restart,
            rewindable: r.data_checksums || r.wal_log_hints,
            max_wal_senders: r.max_wal_senders,
            max_replication_slots: r.max_replication_slots,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::redact_sql;

    #[test]
    fn passwords_are_redacted_from_logged_sql() {
        let v = "SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy";
        assert_eq!(
            redact_sql(&format!(
                "CREATE ROLE \"rep\" LOGIN REPLICATION PASSWORD '{v}'"
            )),
            "CREATE ROLE \"rep\" LOGIN REPLICATION PASSWORD <redacted>"
        );
        assert_eq!(
            redact_sql("alter role x encrypted password 'md5abc'; SELECT 1"),
            "alter role x encrypted password <redacted>"
        );
        assert_eq!(
            redact_sql("ALTER ROLE x PASSWORD"),
            "ALTER ROLE x PASSWORD <redacted>"
        );
        assert_eq!(
            redact_sql(&format!("SELECT '{v}'")),
            "SELECT ' <redacted>",
            "a verifier is cut wherever it is"
        );
        assert!(!redact_sql(&format!("ALTER ROLE x PASSWORD\n'{v}'")).contains("SCRAM"));
    }

    #[test]
    fn other_statements_are_left_alone() {
        for sql in [
            "SELECT rolcanlogin, rolpassword FROM pg_catalog.pg_authid WHERE rolname = $1",
            "SET password_encryption = 'scram-sha-256'",
            "SELECT pg_catalog.pg_reload_conf()",
            "SELECT \"passwords$\" FROM t",
        ] {
            assert!(
                matches!(redact_sql(sql), std::borrow::Cow::Borrowed(s) if s == sql),
                "{sql}"
            );
        }
    }
}
