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
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Row, SimpleQueryMessage};

use crate::pg::Lsn;

mod roles;
mod router;
mod state;
mod tls;

pub use roles::RoleInfo;
pub use router::{connect_tcp, Landing};
pub use tls::SenderTls;

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
        // synchronous_commit=local: pgrepl's own commits (roles, slots, checkpoints) never wait
        // for a synchronous standby, so no step can hang on one that is missing.
        .options("-c search_path= -c statement_timeout=60000 -c lock_timeout=10000 -c synchronous_commit=local")
        .connect_timeout(timeout);
    open(&cfg, timeout, String::new()).await
}

/// Connects with `cfg`, the whole attempt (connect, auth, startup) bounded by `timeout`; the
/// connection is driven by a task of its own. `host` names the session in logs.
async fn open(cfg: &tokio_postgres::Config, timeout: Duration, host: String) -> anyhow::Result<Db> {
    let (client, conn) = tokio::time::timeout(timeout, cfg.connect(NoTls))
        .await
        .map_err(|_| anyhow::anyhow!("no answer within {}s", timeout.as_secs()))?
        .map_err(|e| match e.code() {
            Some(c) if *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION => {
                anyhow::Error::new(LoginRefused(pg_error_text(&e)))
            }
            _ => anyhow::anyhow!("{}", pg_error_text(&e)),
        })?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(Db { client, host })
}

/// The server refused the login itself: SQLSTATE 28000 `invalid_authorization_specification`,
/// which PostgreSQL 13 to 18 return when no pg_hba.conf line admits the connection, when peer
/// authentication fails (no pg_ident.conf mapping), and when the role does not exist or may not
/// log in. Not for a server that is down, full (`too many connections`, 53300) or starting up.
#[derive(Debug)]
pub struct LoginRefused(String);

impl std::fmt::Display for LoginRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LoginRefused {}

/// Did the server refuse the login itself ([`LoginRefused`]), whatever context was added?
pub fn login_refused(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<LoginRefused>())
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

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Db")
    }
}

/// A physical or logical slot.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SlotInfo {
    /// `pg_replication_slots.slot_name`.
    pub name: String,
    /// `pg_replication_slots.slot_type`: `physical` or `logical`.
    pub slot_type: String,
    /// `pg_replication_slots.active`: a connection is using the slot now.
    pub active: bool,
}

/// One row of `pg_stat_replication`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReplicationRow {
    /// `application_name` of the WAL receiver: the replica's inventory host name for pgrepl's
    /// standbys, `pgrepl_clone_<slot>` during a clone.
    pub application_name: String,
    /// `host(client_addr)`: the receiver's IP address as text; `None` over a Unix socket.
    pub client_addr: Option<String>,
    /// `state`: `startup`, `catchup`, `streaming`, `backup` or `stopping`; empty when NULL.
    pub state: String,
    /// `sync_state`: `async`, `potential`, `sync` or `quorum`; empty when NULL.
    pub sync_state: String,
    /// `sent_lsn` as text (`X/Y`, e.g. `0/3000148`): WAL sent to the receiver; `None` when NULL.
    pub sent_lsn: Option<String>,
    /// `replay_lsn` as text (`X/Y`): WAL the receiver has replayed; `None` until reported.
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

    /// A standby's received and replayed WAL positions (`pg_last_wal_receive_lsn()`,
    /// `pg_last_wal_replay_lsn()`), in one light query: what a switchover polls while the
    /// candidate catches up.
    pub async fn received_and_replayed(&self) -> anyhow::Result<(Option<Lsn>, Option<Lsn>)> {
        let s = self
            .one_text(
                "SELECT COALESCE(pg_catalog.pg_last_wal_receive_lsn()::pg_catalog.text, '-') || ' ' || \
                 COALESCE(pg_catalog.pg_last_wal_replay_lsn()::pg_catalog.text, '-')",
            )
            .await?;
        let mut w = s.split_whitespace().map(Lsn::parse);
        Ok((w.next().flatten(), w.next().flatten()))
    }

    /// `CHECKPOINT` (superuser).
    pub async fn checkpoint(&self) -> anyhow::Result<()> {
        self.execute("CHECKPOINT").await
    }

    /// Asks a standby to promote: `pg_promote(false, wait)` returns at once; the caller polls
    /// `in_recovery` against its own deadline.
    pub async fn promote(&self, wait: Duration) -> anyhow::Result<()> {
        self.execute(&format!(
            "SELECT pg_catalog.pg_promote(false, {})",
            wait.as_secs().max(1)
        ))
        .await
    }

    /// Proves the server accepts writes: creates a temporary table (gone with the session).
    pub async fn write_check(&self) -> anyhow::Result<()> {
        self.execute("CREATE TEMPORARY TABLE pgrepl_write_check(x int)")
            .await
    }

    /// Runs a utility statement (no parameters possible; identifiers quoted by this module).
    async fn execute(&self, sql: &str) -> anyhow::Result<()> {
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

    /// Ends the WAL sender (or other backend) using slot `name`, if any: `pg_terminate_backend`
    /// of its `active_pid`. Returns whether one was signalled.
    pub async fn terminate_slot_user(&self, name: &str) -> anyhow::Result<bool> {
        let rows = self
            .rows(
                "SELECT pg_catalog.pg_terminate_backend(active_pid) FROM pg_catalog.pg_replication_slots \
                 WHERE slot_name = $1 AND active_pid IS NOT NULL",
                &[&name],
            )
            .await?;
        Ok(rows.iter().any(|r| r.get::<_, bool>(0)))
    }

    /// The directories of the server's tablespaces outside its data directory (absolute
    /// `pg_tablespace_location`; in-place ones are inside the data directory and skipped).
    pub async fn tablespace_locations(&self) -> anyhow::Result<Vec<String>> {
        let rows = self
            .rows(
                "SELECT l FROM (SELECT pg_catalog.pg_tablespace_location(oid) AS l FROM pg_catalog.pg_tablespace) t \
                 WHERE l LIKE '/%' ORDER BY 1",
                &[],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Who uses slot `name` now: the WAL sender's pid, `application_name` and client address
    /// (`None`: inactive or absent).
    pub async fn slot_holder(&self, name: &str) -> anyhow::Result<Option<(i32, String, String)>> {
        let rows = self
            .rows(
                "SELECT s.active_pid, COALESCE(r.application_name, ''), COALESCE(pg_catalog.host(r.client_addr), 'local') \
                 FROM pg_catalog.pg_replication_slots s LEFT JOIN pg_catalog.pg_stat_replication r ON r.pid = s.active_pid \
                 WHERE s.slot_name = $1 AND s.active_pid IS NOT NULL",
                &[&name],
            )
            .await?;
        Ok(rows.first().map(|r| (r.get(0), r.get(1), r.get(2))))
    }

    /// Whether slot `name` exists and a connection uses it now.
    pub async fn slot_active(&self, name: &str) -> anyhow::Result<bool> {
        Ok(self
            .slots()
            .await?
            .into_iter()
            .any(|s| s.name == name && s.active))
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

    /// `idle_replication_slot_timeout` as `pg_settings` shows it (seconds; PostgreSQL 18+):
    /// `None` on a major that does not have it.
    pub async fn idle_slot_timeout(&self) -> anyhow::Result<Option<i64>> {
        let rows = self
            .rows(
                "SELECT setting::pg_catalog.int8 FROM pg_catalog.pg_settings WHERE name = 'idle_replication_slot_timeout'",
                &[],
            )
            .await?;
        Ok(rows.first().map(|r| r.get(0)))
    }

    /// Which of `names` the running server took from its command line (`pg_ctl -o "-c …"`),
    /// not from postgresql.conf.
    pub async fn from_command_line(&self, names: &[String]) -> anyhow::Result<Vec<String>> {
        let rows = self
            .rows(
                "SELECT name FROM pg_catalog.pg_settings WHERE source = 'command line' AND name = ANY($1) ORDER BY 1",
                &[&names],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
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
