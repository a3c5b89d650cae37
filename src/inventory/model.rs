//! The resolved inventory every command works from: every default filled in, every value
//! validated, upstreams forming one tree under exactly one primary. Also the questions asked of
//! that tree (who is primary, who follows whom, in which order replicas are built) and the
//! replication capacity a cluster of n hosts needs.
//!
//! A value of these types is only built by `check::build` from a file that passed every check;
//! the methods here rely on that (one primary, no loops) and must do no I/O. The password is
//! not here, only where it comes from (`secrets`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::secrets::PasswordSource;

/// A host's role as the inventory declares it (`hosts[].role`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// `primary`: accepts writes; exactly one per inventory.
    Primary,
    /// `replica`: streams from its upstream.
    Replica,
}

/// How hosts are reached (`access.transport`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// `ssh` (default): every host over ssh.
    Ssh,
    /// `local`: every host is this machine; commands run without ssh.
    Local,
}

/// What to do with a host key that is not in known_hosts yet (`access.ssh.host_keys`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostKeyPolicy {
    /// Refuse unknown and changed keys (default).
    Strict,
    /// Trust an unknown key on first use and record it; still refuse a changed key.
    AcceptNew,
}

/// The monitor role's fixed name: pgrepl's reading sessions (`status`, `check`) log in as it,
/// never as the superuser, so a read cannot change anything (CloudNativePG's CVE-2026-44477: a
/// superuser session that runs `SET ROLE pg_monitor` has dropped nothing). Reserved: no
/// `roles:` entry and neither replication role may take it.
pub const MONITOR_USER: &str = "pgrepl_monitor";

/// A validated inventory.
#[derive(Debug, Clone)]
pub struct Inventory {
    /// The file it was read from (named in errors; relative paths in it start from its directory).
    pub file: PathBuf,
    /// `cluster`: the cluster's name.
    pub cluster: String,
    /// `postgres.version`: the PostgreSQL major version, 13 to 18.
    pub version: u32,
    /// `postgres.os_user`: the OS account owning PostgreSQL, also the superuser role.
    pub os_user: String,
    /// `postgres.locale`: initdb's locale.
    pub locale: String,
    /// Extra postgresql.conf settings (sorted).
    pub settings: BTreeMap<String, String>,
    /// Where each of `settings` is written in the file: (line, column) of its value.
    pub setting_positions: BTreeMap<String, (u64, u64)>,
    /// `postgres.primary_settings`: only on the host that is primary (sorted).
    pub primary_settings: BTreeMap<String, String>,
    /// `postgres.replica_settings`: only on replicas (sorted).
    pub replica_settings: BTreeMap<String, String>,
    /// `replication.synchronous`, if any.
    pub synchronous: Option<super::modes::SyncRule>,
    /// `archive:`, if any.
    pub archive: Option<super::modes::Archive>,
    /// Extra pg_hba.conf rules, in order.
    pub hba: Vec<HbaRule>,
    /// `replication.user`: the role replicas log in as.
    pub replication_user: String,
    /// The role pg_rewind logs in as: LOGIN and EXECUTE on four file functions, nothing more.
    pub rewind_user: String,
    /// The role `status` and `check` read as ([`MONITOR_USER`]): a login member of `pg_monitor`,
    /// no password (peer authentication through the socket only), nothing else.
    pub monitor_user: String,
    /// Where the replication password comes from (read only when needed).
    pub password: PasswordSource,
    /// `access.transport`.
    pub transport: TransportKind,
    /// `access.ssh`, defaults filled in.
    pub ssh: SshSettings,
    /// `timeouts`, defaults filled in.
    pub timeouts: Timeouts,
    /// `status` lag thresholds.
    pub thresholds: Thresholds,
    /// Every host, in inventory order; replicas' `upstream` resolved.
    pub hosts: Vec<Host>,
    /// `roles`: application login roles, in inventory order.
    pub roles: Vec<super::apps::AppRole>,
    /// `databases`: application databases, in inventory order.
    pub databases: Vec<super::apps::Database>,
    /// `routers`: HAProxy and PgBouncer instances in front of the cluster, in inventory order.
    pub routers: Vec<super::apps::Router>,
    /// `tls`: how replication, rewind and router connections are encrypted.
    pub tls: super::tls::Tls,
    /// Set only by `init` while it changes a running cluster's TLS (on, off, client
    /// certificates): servers keep `ssl` on and the replication and rewind lines accept a login
    /// with or without TLS (`host`, no `clientcert`) until every replica connects the new way.
    /// False everywhere else.
    pub tls_moving: bool,
}

/// One extra pg_hba.conf rule (`postgres.hba[]`), validated.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HbaRule {
    /// `local`, `host`, `hostssl`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// The database field (`all`, names, comma-separated names).
    pub database: String,
    /// The user field.
    pub user: String,
    /// The address field; empty for `local` rules.
    pub address: String,
    /// The auth method; never `trust` or `password` on a network line.
    pub method: String,
    /// The method's options, rendered `name="value"` after it, sorted by name.
    pub options: BTreeMap<String, String>,
}

/// SSH settings shared by all hosts (`access.ssh`).
#[derive(Debug, Clone)]
pub struct SshSettings {
    /// The login user (default `postgres.os_user`).
    pub user: String,
    /// The default ssh port (22 unless set).
    pub port: u16,
    /// A private key file on this machine.
    pub identity_file: Option<PathBuf>,
    /// A known_hosts file on this machine.
    pub known_hosts_file: Option<PathBuf>,
    /// An ssh config file on this machine.
    pub config_file: Option<PathBuf>,
    /// Unknown host keys: refused or trusted on first use.
    pub host_keys: HostKeyPolicy,
}

/// Deadlines, each named after its inventory key in error messages.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// `timeouts.connect`: reaching a host (ssh) or its server (SQL).
    pub connect: Duration,
    /// `timeouts.start`: a server start or restart.
    pub start: Duration,
    /// `timeouts.streaming`: replicas streaming after init.
    pub streaming: Duration,
    /// `timeouts.status`: each host's whole probe in `status` (connect and queries).
    pub status: Duration,
    /// `timeouts.promote`: a promoted server accepting writes.
    pub promote: Duration,
}

/// Lag thresholds (defaults in README, "status"): `status:` in the inventory, overridden by
/// `status`'s flags.
#[derive(Debug, Clone, Copy, serde::Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Thresholds {
    /// Bytes behind at which a replica's lag is a warning (default 16 MiB).
    pub lag_warning_bytes: u64,
    /// Bytes behind at which a replica's lag is critical (default 1 GiB).
    pub lag_critical_bytes: u64,
    /// Seconds of replay lag at which a replica's lag is a warning (default 30).
    #[schemars(range(min = 0))]
    pub lag_warning_seconds: f64,
    /// Seconds of replay lag at which a replica's lag is critical (default 300).
    #[schemars(range(min = 0))]
    pub lag_critical_seconds: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            lag_warning_bytes: 16 << 20,
            lag_critical_bytes: 1 << 30,
            lag_warning_seconds: 30.0,
            lag_critical_seconds: 300.0,
        }
    }
}

/// One host, with every default resolved.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Host {
    /// `hosts[].name`, unique.
    pub name: String,
    /// Where the server listens and replicas connect: an IP or DNS name.
    pub address: String,
    /// The server's port.
    pub port: u16,
    /// The role the inventory declares.
    pub role: Role,
    /// The host this replica streams from (None for the primary).
    pub upstream: Option<String>,
    /// The replication slot this replica uses on its upstream.
    pub slot: String,
    /// The data directory (absolute, placeholders replaced).
    pub data_dir: String,
    /// The directory of the server binaries.
    pub bin_dir: String,
    /// `unix_socket_directories`.
    pub socket_dir: String,
    /// The 0600 password file the replica's walreceiver reads (`passfile=`).
    pub passfile: String,
    /// The 0700 directory of the host's TLS files (`<data_dir>.tls`; see `tls_files`).
    pub tls_dir: String,
    /// pg_ctl's log file.
    pub log_file: String,
    /// The ssh destination (defaults to `address`).
    pub ssh_host: String,
    /// The ssh port (defaults to `access.ssh.port`).
    pub ssh_port: u16,
    /// `hosts[].settings`: this host's own settings, over every other (sorted).
    pub settings: BTreeMap<String, String>,
    /// `hosts[].apply_delay` in seconds (`recovery_min_apply_delay`), for a delayed replica.
    pub apply_delay: Option<u64>,
    /// `hosts[].listen_addresses`: addresses the server listens on beside `address` (e.g.
    /// `localhost` for a pooler on the same machine).
    pub listen_extra: Vec<String>,
}

impl Inventory {
    /// The host whose role is primary.
    pub fn primary(&self) -> &Host {
        self.hosts
            .iter()
            .find(|h| h.role == Role::Primary)
            .expect("validated: exactly one primary")
    }

    /// The host called `name`, if there is one.
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// The inventory as it stands once `new_primary` is the primary: it has no upstream; the old
    /// primary, and every replica that followed the old or the new primary, follow it; cascading
    /// replicas keep their upstream. Every operation renders from this live topology.
    pub fn with_primary(&self, new_primary: &str) -> Inventory {
        let old = self.primary().name.clone();
        let mut inv = self.clone();
        for h in &mut inv.hosts {
            if h.name == new_primary {
                h.role = Role::Primary;
                h.upstream = None;
            } else {
                h.role = Role::Replica;
                if h.upstream.is_none()
                    || h.upstream.as_deref() == Some(old.as_str())
                    || h.upstream.as_deref() == Some(new_primary)
                {
                    h.upstream = Some(new_primary.to_string());
                }
            }
        }
        inv
    }

    /// The host a replica streams from (`None` for the primary). Upstream names are validated
    /// when the inventory is loaded, so a replica always has one.
    pub fn upstream_of(&self, h: &Host) -> Option<&Host> {
        h.upstream.as_deref().and_then(|u| self.host(u))
    }

    /// Every replica, in inventory order.
    pub fn replicas(&self) -> impl Iterator<Item = &Host> {
        self.hosts.iter().filter(|h| h.role == Role::Replica)
    }

    /// The replicas whose upstream is `name`.
    pub fn followers_of<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Host> + 'a {
        self.replicas()
            .filter(move |h| h.upstream.as_deref() == Some(name))
    }

    /// Replicas grouped in waves: each wave's upstreams are all in earlier waves (or the primary).
    pub fn replica_waves(&self) -> Vec<Vec<&Host>> {
        let mut done: BTreeSet<&str> = [self.primary().name.as_str()].into();
        let mut left: Vec<&Host> = self.replicas().collect();
        let mut waves = Vec::new();
        while !left.is_empty() {
            let (ready, rest): (Vec<&Host>, Vec<&Host>) = left
                .into_iter()
                .partition(|h| done.contains(h.upstream.as_deref().unwrap_or("")));
            assert!(!ready.is_empty(), "validated: upstreams form a tree");
            done.extend(ready.iter().map(|h| h.name.as_str()));
            waves.push(ready);
            left = rest;
        }
        waves
    }
}

/// WAL senders a cluster of `hosts` needs on each host: after a failover one host may serve all
/// the others, and each clone holds two senders (base backup + WAL stream) while it runs.
/// At least 10 (PostgreSQL's default).
pub fn needed_wal_senders(hosts: usize) -> usize {
    (2 * hosts.saturating_sub(1) + 2).max(10)
}

/// Replication slots a cluster of `hosts` needs on each host (one per other host, plus spare).
/// At least 10 (PostgreSQL's default).
pub fn needed_slots(hosts: usize) -> usize {
    (hosts.saturating_sub(1) + 2).max(10)
}
