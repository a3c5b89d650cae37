//! SQL through a router and to PgBouncer's console: a TCP login with a password (no startup
//! `options`: PgBouncer refuses parameters it does not track), which node a route lands on,
//! console commands (simple protocol only), and the SCRAM verifiers PgBouncer's auth file
//! needs, read from `pg_authid` on the primary.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio_postgres::SimpleQueryMessage;

use super::Db;

/// Logs in over TCP as `user` with `password` to `dbname` at `address:port` (a router's route
/// or PgBouncer's console); the whole attempt bounded by `timeout`. `label` names it in logs.
pub async fn connect_tcp(
    label: &str,
    (address, port): (&str, u16),
    (user, password): (&str, &str),
    dbname: &str,
    timeout: Duration,
) -> anyhow::Result<Db> {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(address)
        .port(port)
        .user(user)
        .password(password)
        .dbname(dbname)
        .connect_timeout(timeout);
    super::open(&cfg, timeout, label.to_string()).await
}

/// Where a session through a route landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Landing {
    /// The host name from `cluster_name` (`<cluster>/<host>`, set by pgrepl's postgresql.conf).
    pub host: String,
    /// `pg_is_in_recovery()`.
    pub in_recovery: bool,
}

impl Db {
    /// Rows of a simple-protocol statement, as column name → text (NULL as "").
    pub async fn simple_rows(&self, sql: &str) -> anyhow::Result<Vec<BTreeMap<String, String>>> {
        let mut out = Vec::new();
        for m in self.simple(sql).await? {
            if let SimpleQueryMessage::Row(r) = m {
                let row = r
                    .columns()
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (c.name().to_string(), r.get(i).unwrap_or("").to_string()))
                    .collect();
                out.push(row);
            }
        }
        Ok(out)
    }

    /// Which node this session is on; with `write`, also `txid_current()` (which fails on a
    /// standby): proof that the route accepts writes. Simple protocol (transaction pooling).
    pub async fn landing(&self, write: bool) -> anyhow::Result<Landing> {
        let sql = if write {
            "SELECT pg_catalog.pg_is_in_recovery()::text AS r, pg_catalog.current_setting('cluster_name') AS n, pg_catalog.txid_current()::text AS x"
        } else {
            // In a transaction: PgBouncer keeps the server connection for this client until it
            // ends, so that concurrent probes take distinct server connections (round robin).
            "BEGIN; SELECT pg_catalog.pg_is_in_recovery()::text AS r, pg_catalog.current_setting('cluster_name') AS n"
        };
        let rows = self.simple_rows(sql).await?;
        let row = rows.first().ok_or_else(|| anyhow::anyhow!("no row"))?;
        let name = row.get("n").cloned().unwrap_or_default();
        Ok(Landing {
            host: name.rsplit('/').next().unwrap_or("").to_string(),
            in_recovery: row.get("r").map(String::as_str) == Some("true"),
        })
    }

    /// The SCRAM verifiers of `roles` from `pg_authid` (superuser session): (role, verifier),
    /// roles without a password left out.
    pub async fn verifiers(&self, roles: &[String]) -> anyhow::Result<Vec<(String, String)>> {
        let rows = self
            .rows(
                "SELECT rolname::text, rolpassword FROM pg_catalog.pg_authid WHERE rolname = ANY($1) AND rolpassword IS NOT NULL ORDER BY 1",
                &[&roles],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}
