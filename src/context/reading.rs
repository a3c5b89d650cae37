//! Reading sessions: `status` and `check` read through the monitor role (a `pg_monitor` member
//! that logs in by peer authentication through the same socket as the superuser), never as the
//! superuser — a superuser session that runs `SET ROLE pg_monitor` drops nothing (CloudNativePG's
//! CVE-2026-44477). A cluster built before pgrepl had the role is still read, as the superuser,
//! and says so. The commands that change the cluster read as the superuser.

use crate::db::{self, Db};
use crate::inventory::Host;
use crate::transport::Transport;

use super::Context;

/// Who a reading session logs in as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Login {
    /// The superuser (`postgres.os_user`): the commands that change the cluster.
    Superuser,
    /// The monitor role (`inventory::MONITOR_USER`): `status` and `check`, which only read.
    Monitor,
}

/// A reading session, and whether it had to be the superuser's.
pub struct Reading {
    /// The session.
    pub db: Db,
    /// The server refused the monitor role's login, in its words: this session is the
    /// superuser's (`None`: it is the login asked for).
    pub monitor_refused: Option<String>,
}

impl Context<'_> {
    /// Opens a reading session on `h`'s server as `login` (see [`Context::monitor_db`]).
    pub async fn reading_db(
        &self,
        login: Login,
        t: &dyn Transport,
        h: &Host,
    ) -> anyhow::Result<Reading> {
        match login {
            Login::Superuser => Ok(Reading {
                db: self.db(t, h).await?,
                monitor_refused: None,
            }),
            Login::Monitor => self.monitor_db(t, h).await,
        }
    }

    /// Opens a SQL session as the monitor role (`pg_monitor`, peer authentication through the
    /// same socket): what `status` and `check` read through. Only when the server refuses that
    /// login itself (`db::login_refused`: the role or its pg_ident.conf mapping is missing, as
    /// on a cluster built before pgrepl had it) is the session the superuser's, with the
    /// server's words kept for the `monitor_login_missing` finding; any other failure (a server
    /// down, full, starting) is the failure.
    pub async fn monitor_db(&self, t: &dyn Transport, h: &Host) -> anyhow::Result<Reading> {
        let dir = t.pg_socket_dir(&h.socket_dir, h.port).await?;
        let timeout = self.inv.timeouts.connect;
        let user = &self.inv.monitor_user;
        match db::connect_host(&h.name, &dir, h.port, user, timeout).await {
            Ok(db) => Ok(Reading {
                db,
                monitor_refused: None,
            }),
            Err(e) if db::login_refused(&e) => {
                let db = self.db(t, h).await?;
                let why = format!("{:#}", e.root_cause());
                tracing::warn!(
                    host = %h.name,
                    "the monitor role could not log in ({why}): reading as the superuser"
                );
                Ok(Reading {
                    db,
                    monitor_refused: Some(why),
                })
            }
            Err(e) => Err(e),
        }
    }
}
