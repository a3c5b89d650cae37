//! What a server says about TLS: whether it has `ssl` on, and which WAL senders stream over TLS
//! (`pg_stat_ssl` joined to `pg_stat_replication`).

use super::Db;

/// One WAL sender and its connection's TLS.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SenderTls {
    /// `application_name` of the receiver (the replica's host name for pgrepl's standbys).
    pub application_name: String,
    /// `pg_stat_ssl.ssl`: the connection uses TLS.
    pub ssl: bool,
    /// `pg_stat_ssl.version` (`TLSv1.3`), when it does.
    pub version: Option<String>,
    /// The receiver presented a client certificate (`pg_stat_ssl.client_dn` is set).
    pub client_cert: bool,
}

impl Db {
    /// Whether the server has `ssl` off, or sends WAL to a receiver over a connection without
    /// TLS.
    pub async fn plain_replication(&self) -> anyhow::Result<bool> {
        let row = self
            .row(
                "SELECT pg_catalog.current_setting('ssl') <> 'on' OR EXISTS (SELECT 1 FROM pg_catalog.pg_stat_replication r JOIN pg_catalog.pg_stat_ssl s ON s.pid = r.pid WHERE NOT s.ssl)",
                &[],
            )
            .await?;
        Ok(row.get(0))
    }

    /// The server's `ssl` setting is on.
    pub async fn ssl_on(&self) -> anyhow::Result<bool> {
        Ok(self
            .one_text("SELECT pg_catalog.current_setting('ssl')")
            .await?
            == "on")
    }

    /// `primary_conninfo` as the server has it.
    pub async fn primary_conninfo(&self) -> anyhow::Result<String> {
        self.one_text("SELECT pg_catalog.current_setting('primary_conninfo')")
            .await
    }

    /// Every WAL sender with its TLS, by application name.
    pub async fn senders_tls(&self) -> anyhow::Result<Vec<SenderTls>> {
        let rows = self
            .rows(
                "SELECT r.application_name, s.ssl, s.version, s.client_dn IS NOT NULL FROM pg_catalog.pg_stat_replication r JOIN pg_catalog.pg_stat_ssl s ON s.pid = r.pid ORDER BY 1",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| SenderTls {
                application_name: r.get(0),
                ssl: r.get(1),
                version: r.get(2),
                client_cert: r.get(3),
            })
            .collect())
    }
}
