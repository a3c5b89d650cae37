//! The parts of the inventory that serve applications rather than replication: the login roles
//! and databases pgrepl creates for them (`roles:`, `databases:`), and the routers in front of
//! the cluster (`routers:`: HAProxy or PgBouncer), as resolved values with every default filled
//! in. Built only by `check::build`; no I/O here.

use super::secrets::PasswordSource;

/// An application login role (`roles[]`), created on the primary with a SCRAM-SHA-256 verifier
/// that pgrepl computes, so that a PgBouncer's auth file can hold the same verifier and log in
/// to PostgreSQL with it. The clear text is never written anywhere.
#[derive(Debug, Clone)]
pub struct AppRole {
    /// `roles[].name`: the role's name (a plain identifier).
    pub name: String,
    /// Where its password comes from (`password_env` or `password_file`).
    pub password: PasswordSource,
    /// `roles[].clients`: networks (CIDR) whose direct connections pg_hba.conf admits for this
    /// role (`host all <role> <cidr> scram-sha-256`); routers' addresses are admitted anyway.
    pub clients: Vec<String>,
}

/// An application database (`databases[]`), created on the primary if missing.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Database {
    /// `databases[].name`.
    pub name: String,
    /// `databases[].owner`: one of `roles[]` (default: the first role).
    pub owner: String,
}

/// What a router runs (`routers[].kind`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum RouterKind {
    /// HAProxy in TCP mode: a write port, a read port and a stats page.
    Haproxy,
    /// PgBouncer: one pooler process per route (write, read), each on its own port.
    Pgbouncer,
}

impl RouterKind {
    /// `haproxy` or `pgbouncer`.
    pub fn as_str(self) -> &'static str {
        match self {
            RouterKind::Haproxy => "haproxy",
            RouterKind::Pgbouncer => "pgbouncer",
        }
    }
}

/// Which nodes a read route balances over (`routers[].read_targets`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadTargets {
    /// The replicas only (default); the primary when there is no replica.
    Replicas,
    /// The replicas and the primary.
    All,
}

/// A router's listen ports (`routers[].ports`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RouterPorts {
    /// `write`: reaches only the live primary.
    pub write: u16,
    /// `read`: balances over `read_targets`; none means no read route.
    pub read: Option<u16>,
    /// `stats`: HAProxy's stats page (HTTP); none means no page.
    pub stats: Option<u16>,
}

/// One router (`routers[]`), defaults filled in.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Router {
    /// `routers[].name`: unique among routers and hosts.
    pub name: String,
    /// haproxy or pgbouncer.
    pub kind: RouterKind,
    /// Where clients (and pgrepl's checks) connect: an IP or DNS name.
    pub address: String,
    /// The ssh destination of the machine it runs on (default `address`); with the local
    /// transport, this machine.
    pub ssh_host: String,
    /// The ssh port (default `access.ssh.port`).
    pub ssh_port: u16,
    /// `dir`: the directory pgrepl keeps its files in (config, auth file, pid files, logs,
    /// sockets); default `/var/lib/pgrepl/routers/{router}`; owned by the OS user.
    pub dir: String,
    /// `bin`: the program (default `/usr/sbin/haproxy` or `/usr/sbin/pgbouncer`).
    pub bin: String,
    /// The listen ports.
    pub ports: RouterPorts,
    /// What the read route balances over.
    pub read_targets: ReadTargets,
    /// PgBouncer's `pool_mode` (session, transaction or statement; default transaction).
    pub pool_mode: String,
    /// PgBouncer's `default_pool_size` (default 20).
    pub pool_size: u32,
    /// The databases a PgBouncer serves (default: every `databases[]`); HAProxy passes all.
    pub databases: Vec<String>,
}
