//! What `init` will do, as a value: each host's fate ([`HostPlan`]) and the named steps in the
//! order the executor runs them ([`InitStep`]), one line each when displayed (what a dry run
//! would print). Pure: built by `preflight` from the gathered facts; the restart-only settings
//! of running servers (read from the hosts) are added before the first change. No I/O here.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::inventory::{Host, Inventory};

/// What `init` does with one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HostPlan {
    /// Empty data directory on the primary: initdb.
    Initdb,
    /// This cluster's primary already exists: keep it, converge its configuration.
    KeepPrimary,
    /// Empty data directory on a replica: clone it from its upstream.
    Clone,
    /// Already a replica of this primary: keep it, converge its configuration.
    KeepReplica,
}

/// One replica's physical slot on its upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotFor {
    /// The replica that streams on the slot.
    pub replica: String,
    /// The slot's name (`hosts[].slot`).
    pub slot: String,
    /// The replica is cloned by this run: the slot is dropped again if the clone does not finish.
    pub clone: bool,
}

/// One replica's own steps inside a wave, run in order; the lanes of a wave run in parallel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lane {
    /// The replica.
    pub host: String,
    /// Its steps: `TlsFiles` (TLS on), `PasswordFile`, `Clone` (new replicas only), `Configure`.
    pub steps: Vec<InitStep>,
}

/// One named step of `init`, in the words the executor reports it in. `host`, `primary` and
/// `upstream` are inventory host names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitStep {
    /// `initdb` into the primary's empty data directory (data checksums on).
    Initdb {
        /// The primary.
        host: String,
    },
    /// The socket directory and the rendered configuration files (only those that differ);
    /// then start the stopped server, or apply the change to the running one.
    Configure {
        /// The host.
        host: String,
        /// Its server runs (and is kept): apply the change; else start it.
        running: bool,
        /// Changed restart-only settings: restart instead of reload (empty: reload).
        restart: Vec<String>,
    },
    /// The host's TLS files (`tls_dir`): the CA bundle, its server certificate and key, the
    /// client certificate; certificates issued only when missing or no longer valid.
    TlsFiles {
        /// The host.
        host: String,
    },
    /// The 0600 password file of the replication and rewind roles.
    PasswordFile {
        /// The host.
        host: String,
    },
    /// The replication role (`LOGIN REPLICATION`) and the rewind role (`LOGIN`, EXECUTE on the
    /// functions pg_rewind uses) on the primary, with the inventory's password; the monitor role
    /// (`LOGIN`, `pg_monitor`, no password).
    Roles {
        /// The primary.
        primary: String,
        /// `replication.user`.
        replication_user: String,
        /// `replication.rewind_user`.
        rewind_user: String,
        /// The monitor role (`inventory::MONITOR_USER`).
        monitor_user: String,
    },
    /// Each replica's physical slot on `upstream`, created when missing.
    Slots {
        /// The server the slots are on.
        upstream: String,
        /// The replicas of this wave that stream from it, in inventory order.
        replicas: Vec<SlotFor>,
    },
    /// The replicas of one wave (their upstreams all run), in parallel.
    Wave {
        /// The wave's number, from 1.
        number: usize,
        /// One lane per replica, in inventory order.
        replicas: Vec<Lane>,
    },
    /// Clone a new replica with pg_basebackup, through a staging directory.
    Clone {
        /// The new replica.
        host: String,
        /// The server it is cloned from.
        upstream: String,
    },
    /// Poll until every replica streams from its upstream on an active slot
    /// (`timeouts.streaming`); reported on the primary.
    VerifyStreaming {
        /// The primary.
        primary: String,
        /// How many replicas the inventory has.
        replicas: usize,
    },
    /// Bring every router up to the topology (install, start or reload) and verify its routes.
    Routers {
        /// The routers' names, in inventory order.
        names: Vec<String>,
    },
}

/// The whole of `init`: each host's fate and the steps in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitPlan {
    /// What init does with each host, by host name (what `check` prints as INIT WOULD).
    pub hosts: BTreeMap<String, HostPlan>,
    /// Hosts whose server runs now, in inventory order: their restart-only settings are read
    /// (`set_restarts`) before the first change.
    pub running: Vec<String>,
    /// Running servers that a restart-only setting change makes restart: host → settings.
    pub restarts: BTreeMap<String, Vec<String>>,
    /// The steps, in the order they run.
    pub steps: Vec<InitStep>,
}

impl InitPlan {
    /// Whether this run creates the primary (initdb) or clones a replica: a synchronous rule
    /// is then enabled only once every replica streams.
    pub fn builds(&self) -> bool {
        self.hosts
            .values()
            .any(|p| matches!(p, HostPlan::Initdb | HostPlan::Clone))
    }

    /// The steps for `inv` given each host's fate (`hosts` must hold every inventory host) and
    /// the hosts whose server runs now: the primary (initdb, configuration, password file,
    /// roles), then wave by wave the slots on each upstream (by upstream name) and the wave's
    /// replicas in parallel, then the check that every replica streams.
    pub fn build(
        inv: &Inventory,
        hosts: BTreeMap<String, HostPlan>,
        running: Vec<String>,
    ) -> InitPlan {
        let runs = |h: &Host| running.contains(&h.name);
        let p = inv.primary();
        let mut steps = Vec::new();
        let new_primary = hosts[&p.name] == HostPlan::Initdb;
        if new_primary {
            steps.push(InitStep::Initdb {
                host: p.name.clone(),
            });
        }
        if inv.tls.is_on() {
            steps.push(InitStep::TlsFiles {
                host: p.name.clone(),
            });
        }
        steps.push(configure(p, runs(p) && !new_primary));
        steps.push(InitStep::PasswordFile {
            host: p.name.clone(),
        });
        steps.push(InitStep::Roles {
            primary: p.name.clone(),
            replication_user: inv.replication_user.clone(),
            rewind_user: inv.rewind_user.clone(),
            monitor_user: inv.monitor_user.clone(),
        });
        for (i, wave) in inv.replica_waves().into_iter().enumerate() {
            let upstreams: BTreeSet<&str> =
                wave.iter().filter_map(|h| h.upstream.as_deref()).collect();
            for up in upstreams {
                let replicas = wave
                    .iter()
                    .filter(|h| h.upstream.as_deref() == Some(up))
                    .map(|h| SlotFor {
                        replica: h.name.clone(),
                        slot: h.slot.clone(),
                        clone: hosts[&h.name] == HostPlan::Clone,
                    })
                    .collect();
                steps.push(InitStep::Slots {
                    upstream: up.to_string(),
                    replicas,
                });
            }
            let replicas = wave
                .iter()
                .map(|h| lane(inv, h, hosts[&h.name], runs(h)))
                .collect();
            steps.push(InitStep::Wave {
                number: i + 1,
                replicas,
            });
        }
        steps.push(InitStep::VerifyStreaming {
            primary: p.name.clone(),
            replicas: inv.replicas().count(),
        });
        if !inv.routers.is_empty() {
            steps.push(InitStep::Routers {
                names: inv.routers.iter().map(|r| r.name.clone()).collect(),
            });
        }
        InitPlan {
            hosts,
            running,
            restarts: BTreeMap::new(),
            steps,
        }
    }

    /// Records which running servers must restart (host → changed restart-only settings; empty
    /// lists are ignored) and puts the settings into their `Configure` steps.
    pub fn set_restarts(&mut self, restarts: BTreeMap<String, Vec<String>>) {
        self.restarts = restarts
            .into_iter()
            .filter(|(_, s)| !s.is_empty())
            .collect();
        let restarts = &self.restarts;
        let set = |step: &mut InitStep| {
            if let InitStep::Configure { host, restart, .. } = step {
                *restart = restarts.get(host).cloned().unwrap_or_default();
            }
        };
        for step in &mut self.steps {
            if let InitStep::Wave { replicas, .. } = step {
                replicas.iter_mut().flat_map(|l| &mut l.steps).for_each(set);
            } else {
                set(step);
            }
        }
    }

    /// Moves the `Configure` steps of the standbys in `early` (running, restarting) out of
    /// their waves to just before the primary's: raised hot-standby settings reach the
    /// standbys before the primary WAL-logs them.
    pub fn standbys_first(&mut self, early: &BTreeSet<String>) {
        if early.is_empty() {
            return;
        }
        let mut moved = Vec::new();
        for step in &mut self.steps {
            if let InitStep::Wave { replicas, .. } = step {
                for lane in replicas.iter_mut().filter(|l| early.contains(&l.host)) {
                    lane.steps.retain(|s| {
                        let go = matches!(s, InitStep::Configure { .. });
                        if go {
                            moved.push(s.clone());
                        }
                        !go
                    });
                }
            }
        }
        let at = self
            .steps
            .iter()
            .position(|s| matches!(s, InitStep::Configure { .. }))
            .unwrap_or(0);
        self.steps.splice(at..at, moved);
    }

    /// What to confirm before the first change when running servers must restart: "restart
    /// running servers whose restart-only settings changed: pg1 (shared_buffers); …". `None`
    /// when no server restarts.
    pub fn restart_prompt(&self) -> Option<String> {
        if self.restarts.is_empty() {
            return None;
        }
        let what = self
            .restarts
            .iter()
            .map(|(h, s)| format!("{h} ({})", s.join(", ")))
            .collect::<Vec<_>>()
            .join("; ");
        Some(format!(
            "restart running servers whose restart-only settings changed: {what}"
        ))
    }
}

/// The `Configure` step of `h`, without restarts (`set_restarts` adds them).
fn configure(h: &Host, running: bool) -> InitStep {
    InitStep::Configure {
        host: h.name.clone(),
        running,
        restart: Vec::new(),
    }
}

/// One replica's steps: its password file, its clone when new, its configuration.
fn lane(inv: &Inventory, h: &Host, plan: HostPlan, running: bool) -> Lane {
    let mut steps = Vec::new();
    if inv.tls.is_on() {
        steps.push(InitStep::TlsFiles {
            host: h.name.clone(),
        });
    }
    steps.push(InitStep::PasswordFile {
        host: h.name.clone(),
    });
    if plan == HostPlan::Clone {
        steps.push(InitStep::Clone {
            host: h.name.clone(),
            upstream: inv
                .upstream_of(h)
                .map(|u| u.name.clone())
                .unwrap_or_default(),
        });
    }
    steps.push(configure(h, running && plan == HostPlan::KeepReplica));
    Lane {
        host: h.name.clone(),
        steps,
    }
}

/// One line: `host: what`.
impl fmt::Display for InitStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitStep::Initdb { host } => write!(f, "{host}: initdb (data checksums on)"),
            InitStep::Configure {
                host,
                running: false,
                ..
            } => write!(f, "{host}: install configuration files, start PostgreSQL"),
            InitStep::Configure { host, restart, .. } if restart.is_empty() => write!(
                f,
                "{host}: install configuration files, reload if any changed"
            ),
            InitStep::Configure { host, restart, .. } => write!(
                f,
                "{host}: install configuration files, restart PostgreSQL ({})",
                restart.join(", ")
            ),
            InitStep::PasswordFile { host } => write!(f, "{host}: password file"),
            InitStep::TlsFiles { host } => write!(
                f,
                "{host}: TLS files (CA bundle, server certificate and key; issued when missing or no longer valid)"
            ),
            InitStep::Roles {
                primary,
                replication_user,
                rewind_user,
                monitor_user,
            } => write!(
                f,
                "{primary}: roles {replication_user} (LOGIN REPLICATION), {rewind_user} (LOGIN), {monitor_user} (LOGIN, pg_monitor)"
            ),
            InitStep::Slots { upstream, replicas } => {
                let slots: Vec<String> = replicas
                    .iter()
                    .map(|s| format!("{} for {}", s.slot, s.replica))
                    .collect();
                write!(f, "{upstream}: replication slots {}", slots.join(", "))
            }
            InitStep::Wave { number, replicas } => {
                write!(f, "wave {number}, in parallel:")?;
                for step in replicas.iter().flat_map(|l| &l.steps) {
                    write!(f, "\n  {step}")?;
                }
                Ok(())
            }
            InitStep::Clone { host, upstream } => write!(
                f,
                "{host}: clone from {upstream} (pg_basebackup into a staging directory)"
            ),
            InitStep::VerifyStreaming { primary, replicas } => write!(
                f,
                "{primary}: verify {replicas} replica(s) streaming, every slot active"
            ),
            InitStep::Routers { names } => write!(
                f,
                "{}: install, start or reload, and verify the routes",
                names.join(", ")
            ),
        }
    }
}

/// One line per step (a wave's replica steps indented under it).
impl fmt::Display for InitPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for step in &self.steps {
            writeln!(f, "{step}")?;
        }
        Ok(())
    }
}
