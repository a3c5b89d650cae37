//! The pure model behind `pgrepl status`: what each server said, what it means for the cluster,
//! and the findings a DBA acts on — each with a severity and the command that fixes it.
//! No I/O: live states come in from `ops::status`, a `ClusterView` goes out.
//!
//! The live state is the truth: the primary is whoever is writable, a replica's upstream is the
//! host whose WAL sender serves it. The inventory is compared against that, not trusted.

use serde::Serialize;

use crate::inventory::{Host, Inventory, Role};
use crate::pg::state::NodeState;
use crate::pg::Lsn;
use crate::topology::Topology;

/// Version of the JSON document (`schemas/status.schema.json`).
pub const FORMAT_VERSION: u32 = 1;

pub use crate::inventory::Thresholds;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Ok,
    Warning,
    Critical,
}

/// Something that needs a DBA.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub severity: Severity,
    /// Stable identifier (`split_brain`, `not_streaming`, ...).
    pub code: &'static str,
    pub host: Option<String>,
    pub message: String,
    /// The command (or edit) that fixes it.
    pub fix: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostView {
    pub name: String,
    pub address: String,
    pub port: u16,
    pub inventory_role: Role,
    pub reachable: bool,
    pub error: Option<String>,
    /// Live role, from `pg_is_in_recovery()`.
    pub role: Option<Role>,
    pub server_version: Option<String>,
    pub system_identifier: Option<String>,
    pub timeline: Option<u32>,
    pub current_lsn: Option<String>,
    pub receive_lsn: Option<String>,
    pub replay_lsn: Option<String>,
    pub replay_paused: Option<bool>,
    pub pending_restart: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReplicaView {
    pub host: String,
    pub inventory_upstream: Option<String>,
    /// The host whose WAL sender serves it (live).
    pub upstream: Option<String>,
    pub streaming: bool,
    /// `state` and `sync_state` in the upstream's `pg_stat_replication`.
    pub state: Option<String>,
    pub sync_state: Option<String>,
    /// Sent by the upstream but not yet replayed (`sent_lsn - replay_lsn`).
    pub lag_bytes: Option<u64>,
    /// The upstream's WAL position minus this replica's replay position (includes unsent WAL).
    pub behind_bytes: Option<u64>,
    /// `replay_lag` from the upstream's `pg_stat_replication`.
    pub replay_lag_seconds: Option<f64>,
    /// Age of the last replayed transaction (grows while the primary is idle: not a lag by itself).
    pub last_replay_age_seconds: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SlotView {
    pub host: String,
    pub name: String,
    pub slot_type: String,
    pub active: bool,
    pub wal_status: Option<String>,
    pub safe_wal_size: Option<i64>,
    pub retained_bytes: Option<i64>,
}

/// The whole answer of `status` (the JSON document).
#[derive(Debug, Clone, Serialize)]
pub struct ClusterView {
    pub format_version: u32,
    pub cluster: String,
    pub severity: Severity,
    pub healthy: bool,
    /// The live primary, when there is exactly one.
    pub primary: Option<String>,
    pub duration_seconds: f64,
    pub thresholds: Thresholds,
    pub hosts: Vec<HostView>,
    pub replicas: Vec<ReplicaView>,
    pub slots: Vec<SlotView>,
    pub findings: Vec<Finding>,
}

fn on(h: &Host, inv: &Inventory, what: &str) -> String {
    match inv.transport {
        crate::inventory::TransportKind::Local => format!("(as {}) {what}", inv.os_user),
        crate::inventory::TransportKind::Ssh => {
            format!("ssh {}@{} {what}", inv.ssh.user, h.ssh_host)
        }
    }
}

/// Assesses the probes (in inventory host order) against the inventory and thresholds.
pub fn assess(topo: &Topology, t: &Thresholds, duration_seconds: f64) -> ClusterView {
    let mut findings = Vec::new();
    let inv = topo.inv;
    let states: Vec<Option<&NodeState>> = topo.nodes.iter().map(|n| n.live()).collect();
    let inv_path = inv.file.display().to_string();

    let hosts: Vec<HostView> = inv
        .hosts
        .iter()
        .zip(&topo.nodes)
        .map(|(h, p)| {
            let s = p.live();
            HostView {
                name: h.name.clone(),
                address: h.address.clone(),
                port: h.port,
                inventory_role: h.role,
                reachable: s.is_some(),
                error: p.state.as_ref().err().cloned(),
                role: s.map(|s| {
                    if s.in_recovery {
                        Role::Replica
                    } else {
                        Role::Primary
                    }
                }),
                server_version: s.map(|s| s.server_version.clone()),
                system_identifier: s.map(|s| s.system_identifier.clone()),
                timeline: s.and_then(|s| s.timeline),
                current_lsn: s.and_then(|s| s.current_lsn).map(|l| l.to_string()),
                receive_lsn: s.and_then(|s| s.receive_lsn).map(|l| l.to_string()),
                replay_lsn: s.and_then(|s| s.replay_lsn).map(|l| l.to_string()),
                replay_paused: s.filter(|s| s.in_recovery).map(|s| s.replay_paused),
                pending_restart: s.map(|s| s.pending_restart.clone()).unwrap_or_default(),
            }
        })
        .collect();

    // Unreachable hosts.
    for (h, p) in inv.hosts.iter().zip(&topo.nodes) {
        if let Err(e) = &p.state {
            findings.push(Finding {
                severity: Severity::Warning,
                code: "unreachable",
                host: Some(h.name.clone()),
                message: format!("{} is unreachable: {e}", h.name),
                fix: format!(
                    "check the host and its server: {}",
                    on(
                        h,
                        inv,
                        &format!("{}/pg_ctl status -D {}", h.bin_dir, h.data_dir)
                    )
                ),
            });
        }
    }

    // Who is writable?
    let writable: Vec<usize> = states
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_some_and(|s| !s.in_recovery))
        .map(|(i, _)| i)
        .collect();
    let primary_idx = match writable.len() {
        0 => {
            let best = states
                .iter()
                .enumerate()
                .filter_map(|(i, s)| {
                    s.filter(|s| s.in_recovery)
                        .map(|s| (i, s.receive_lsn.max(s.replay_lsn)))
                })
                // The first of equally advanced replicas, in inventory order.
                .fold(
                    None,
                    |best: Option<(usize, Option<Lsn>)>, (i, l)| match best {
                        Some((_, bl)) if bl >= l => best,
                        _ => Some((i, l)),
                    },
                );
            let fix = match best {
                Some((i, l)) => {
                    let h = &inv.hosts[i];
                    format!(
                        "start the primary if it can come back; otherwise promote the most advanced replica, {} (WAL up to {}): pgrepl -i {inv_path} promote {}",
                        h.name,
                        l.map(|l| l.to_string()).unwrap_or_else(|| "unknown".into()),
                        h.name
                    )
                }
                None => "start the primary's server".into(),
            };
            findings.push(Finding {
                severity: Severity::Critical,
                code: "no_primary",
                host: None,
                message: "no reachable node accepts writes".into(),
                fix,
            });
            None
        }
        1 => Some(writable[0]),
        _ => {
            let names: Vec<&str> = writable
                .iter()
                .map(|&i| inv.hosts[i].name.as_str())
                .collect();
            let keep = writable
                .iter()
                .copied()
                .find(|&i| inv.hosts[i].role == Role::Primary)
                .unwrap_or(writable[0]);
            let others: Vec<&Host> = writable
                .iter()
                .filter(|&&i| i != keep)
                .map(|&i| &inv.hosts[i])
                .collect();
            findings.push(Finding {
                severity: Severity::Critical,
                code: "split_brain",
                host: None,
                message: format!(
                    "{} nodes accept writes: {} (split-brain)",
                    names.len(),
                    names.join(", ")
                ),
                fix: format!(
                    "stop every writable node but one, now: {}; then rebuild each as a replica: {}",
                    others
                        .iter()
                        .map(|h| on(
                            h,
                            inv,
                            &format!("{}/pg_ctl stop -m fast -D {}", h.bin_dir, h.data_dir)
                        ))
                        .collect::<Vec<_>>()
                        .join("; "),
                    others
                        .iter()
                        .map(|h| format!("pgrepl -i {inv_path} rebuild {}", h.name))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            });
            Some(keep)
        }
    };
    let primary = primary_idx.map(|i| &inv.hosts[i]);
    let primary_state = primary_idx.and_then(|i| states[i]);

    if let Some(p) = primary {
        if p.role != Role::Primary && writable.len() == 1 {
            let inv_p = inv.primary();
            findings.push(Finding {
                severity: Severity::Warning,
                code: "inventory_primary_stale",
                host: Some(p.name.clone()),
                message: format!(
                    "the live primary is {}, the inventory says {}",
                    p.name, inv_p.name
                ),
                fix: format!(
                    "edit {inv_path}: role: primary on {}, role: replica on {}",
                    p.name, inv_p.name
                ),
            });
        }
    }

    // Nodes of another cluster.
    if let Some(ps) = primary_state {
        for (i, s) in states.iter().enumerate() {
            if let Some(s) = s {
                if Some(i) != primary_idx && s.system_identifier != ps.system_identifier {
                    let h = &inv.hosts[i];
                    findings.push(Finding {
                        severity: Severity::Critical,
                        code: "foreign_system_identifier",
                        host: Some(h.name.clone()),
                        message: format!("{} has system identifier {}, the primary has {}: it is not a copy of this cluster", h.name, s.system_identifier, ps.system_identifier),
                        fix: format!("re-clone it as a copy of this cluster: pgrepl -i {inv_path} rebuild {} --method clone", h.name),
                    });
                }
            }
        }
    }

    // Replicas: who serves them, and how far behind they are.
    let mut replicas = Vec::new();
    for (i, h) in inv.hosts.iter().enumerate() {
        let Some(s) = states[i] else { continue };
        if !s.in_recovery {
            continue;
        }
        let served = inv.hosts.iter().enumerate().find_map(|(j, u)| {
            let us = states[j]?;
            us.senders
                .iter()
                .find(|r| r.application_name == h.name)
                .map(|r| (u, us, r))
        });
        let inv_up = h.upstream.clone().or_else(|| {
            (h.role == Role::Primary)
                .then(|| inv.primary().name.clone())
                .filter(|n| *n != h.name)
        });
        let streaming = served.is_some_and(|(_, _, r)| r.state == "streaming");
        let upstream_pos = served
            .and_then(|(_, us, _)| us.position())
            .or_else(|| primary_state.and_then(|p| p.position()));
        let behind = match (s.replay_lsn, upstream_pos) {
            (Some(r), Some(u)) => Some(r.bytes_until(u)),
            _ => None,
        };
        let lag = served.and_then(|(_, _, r)| Some(r.replay_lsn?.bytes_until(r.sent_lsn?)));
        let view = ReplicaView {
            host: h.name.clone(),
            inventory_upstream: inv_up.clone(),
            upstream: served.map(|(u, _, _)| u.name.clone()),
            streaming,
            state: served.map(|(_, _, r)| r.state.clone()),
            sync_state: served.map(|(_, _, r)| r.sync_state.clone()),
            lag_bytes: lag,
            behind_bytes: behind,
            replay_lag_seconds: served.and_then(|(_, _, r)| r.replay_lag_s),
            last_replay_age_seconds: s.last_replay_age_s,
        };
        // Without a primary nothing can stream: the no_primary finding says what to do.
        if !streaming && primary.is_some() {
            let why = match (&view.state, &s.receiver) {
                (Some(st), _) => format!(
                    "its WAL sender on {} is in state {st}",
                    view.upstream.as_deref().unwrap_or("?")
                ),
                (None, Some(r)) => {
                    format!("its WAL receiver is {} but no host serves it", r.status)
                }
                (None, None) => "it has no WAL receiver".into(),
            };
            findings.push(Finding {
                severity: Severity::Warning,
                code: "not_streaming",
                host: Some(h.name.clone()),
                message: format!("{} is a standby but not streaming: {why}", h.name),
                fix: format!("read its server log ({}); if it cannot catch up, rebuild it: pgrepl -i {inv_path} rebuild {}", on(h, inv, &format!("tail -n 50 {}", h.log_file)), h.name),
            });
        } else if let (Some(live), Some(want)) = (&view.upstream, &inv_up) {
            if live != want {
                findings.push(Finding {
                    severity: Severity::Warning,
                    code: "wrong_upstream",
                    host: Some(h.name.clone()),
                    message: format!("{} streams from {live}, the inventory says {want}", h.name),
                    fix: format!("set upstream: {live} for {} in {inv_path}, or re-point it with pgrepl init -i {inv_path}", h.name),
                });
            }
        }
        if s.replay_paused {
            findings.push(Finding {
                severity: Severity::Warning,
                code: "replay_paused",
                host: Some(h.name.clone()),
                message: format!("WAL replay is paused on {}", h.name),
                fix: format!(
                    "resume it: {}",
                    on(h, inv, "psql -c 'SELECT pg_wal_replay_resume()'")
                ),
            });
        }
        let by_bytes = behind.map(|b| {
            if b >= t.lag_critical_bytes {
                Severity::Critical
            } else if b >= t.lag_warning_bytes {
                Severity::Warning
            } else {
                Severity::Ok
            }
        });
        let by_secs = view.replay_lag_seconds.map(|l| {
            if l >= t.lag_critical_seconds {
                Severity::Critical
            } else if l >= t.lag_warning_seconds {
                Severity::Warning
            } else {
                Severity::Ok
            }
        });
        let sev = by_bytes.max(by_secs).unwrap_or(Severity::Ok);
        if sev > Severity::Ok {
            findings.push(Finding {
                severity: sev,
                code: "lag",
                host: Some(h.name.clone()),
                message: format!(
                    "{} is {} bytes behind{} (thresholds: {}/{} bytes, {}/{} s)",
                    h.name,
                    behind.map(|b| b.to_string()).unwrap_or_else(|| "?".into()),
                    view.replay_lag_seconds.map(|l| format!(", replay lag {l:.1} s")).unwrap_or_default(),
                    t.lag_warning_bytes,
                    t.lag_critical_bytes,
                    t.lag_warning_seconds,
                    t.lag_critical_seconds
                ),
                fix: format!("check the replica's disk and network; watch it with pgrepl -i {inv_path} status --watch"),
            });
        }
        replicas.push(view);
    }

    // Slots.
    let replica_streams_elsewhere = |r: &Host, here: &str| {
        replicas.iter().any(|v: &ReplicaView| {
            v.host == r.name && v.streaming && v.upstream.as_deref() != Some(here)
        })
    };
    let mut slots = Vec::new();
    for (i, h) in inv.hosts.iter().enumerate() {
        let Some(s) = states[i] else { continue };
        for sl in &s.slots {
            let user = inv
                .hosts
                .iter()
                .find(|r| r.role == Role::Replica && r.slot == sl.name);
            if sl.wal_status.as_deref() == Some("lost") {
                findings.push(Finding {
                    severity: Severity::Critical,
                    code: "slot_lost",
                    host: Some(h.name.clone()),
                    message: format!(
                        "slot {} on {} has lost WAL its replica needs",
                        sl.name, h.name
                    ),
                    fix: match user {
                        Some(r) => format!(
                            "re-clone {}: pgrepl -i {inv_path} rebuild {} --method clone",
                            r.name, r.name
                        ),
                        None => format!(
                            "drop it if unused: {}",
                            on(
                                h,
                                inv,
                                &format!(
                                    "psql -c \"SELECT pg_drop_replication_slot('{}')\"",
                                    sl.name
                                )
                            )
                        ),
                    },
                });
            } else if !sl.active && sl.retained_bytes.unwrap_or(0) > 0 {
                let sev = if sl.wal_status.as_deref() == Some("unreserved") {
                    Severity::Critical
                } else {
                    Severity::Warning
                };
                findings.push(Finding {
                    severity: sev,
                    code: "slot_inactive",
                    host: Some(h.name.clone()),
                    message: format!(
                        "slot {} on {} is inactive and retains {} bytes of WAL (wal_status {})",
                        sl.name,
                        h.name,
                        sl.retained_bytes.unwrap_or(0),
                        sl.wal_status.as_deref().unwrap_or("?")
                    ),
                    fix: match user {
                        Some(r) if replica_streams_elsewhere(r, &h.name) => format!(
                            "{} now streams from another host: drop this stale slot: {}",
                            r.name,
                            on(
                                h,
                                inv,
                                &format!(
                                    "psql -c \"SELECT pg_drop_replication_slot('{}')\"",
                                    sl.name
                                )
                            )
                        ),
                        Some(r) => format!(
                            "bring {} back ({}), or drop the slot if it is gone for good",
                            r.name,
                            on(
                                r,
                                inv,
                                &format!(
                                    "{}/pg_ctl start -D {} -l {}",
                                    r.bin_dir, r.data_dir, r.log_file
                                )
                            )
                        ),
                        None => format!(
                            "drop it if unused: {}",
                            on(
                                h,
                                inv,
                                &format!(
                                    "psql -c \"SELECT pg_drop_replication_slot('{}')\"",
                                    sl.name
                                )
                            )
                        ),
                    },
                });
            }
            slots.push(SlotView {
                host: h.name.clone(),
                name: sl.name.clone(),
                slot_type: sl.slot_type.clone(),
                active: sl.active,
                wal_status: sl.wal_status.clone(),
                safe_wal_size: sl.safe_wal_size,
                retained_bytes: sl.retained_bytes,
            });
        }
        if !s.pending_restart.is_empty() {
            findings.push(Finding {
                severity: Severity::Warning,
                code: "pending_restart",
                host: Some(h.name.clone()),
                message: format!(
                    "{} has settings waiting for a restart: {}",
                    h.name,
                    s.pending_restart.join(", ")
                ),
                fix: format!(
                    "restart it when convenient: {}",
                    on(
                        h,
                        inv,
                        &format!("{}/pg_ctl restart -m fast -D {}", h.bin_dir, h.data_dir)
                    )
                ),
            });
        }
    }

    findings.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.host.cmp(&b.host)));
    let severity = findings
        .iter()
        .map(|f| f.severity)
        .max()
        .unwrap_or(Severity::Ok);
    ClusterView {
        format_version: FORMAT_VERSION,
        cluster: inv.cluster.clone(),
        severity,
        healthy: severity == Severity::Ok,
        primary: (writable.len() == 1)
            .then(|| primary.map(|p| p.name.clone()))
            .flatten(),
        duration_seconds,
        thresholds: *t,
        hosts,
        replicas,
        slots,
        findings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::state::{Sender, Slot};
    use crate::topology::Probe;

    fn inv() -> Inventory {
        crate::inventory::parse(
            "cluster: c\npostgres: {version: 15}\nreplication: {password_env: X}\nhosts:\n  - {name: p, address: 10.0.0.1, role: primary}\n  - {name: r1, address: 10.0.0.2, role: replica}\n  - {name: r2, address: 10.0.0.3, role: replica}\n",
            std::path::Path::new("i.yml"),
        )
        .unwrap()
    }

    fn lsn(s: &str) -> Option<Lsn> {
        Lsn::parse(s)
    }

    fn primary(senders: Vec<Sender>, slots: Vec<Slot>) -> NodeState {
        NodeState {
            in_recovery: false,
            system_identifier: "7".into(),
            current_lsn: lsn("0/5000000"),
            senders,
            slots,
            ..Default::default()
        }
    }

    fn replica(replay: &str) -> NodeState {
        NodeState {
            in_recovery: true,
            system_identifier: "7".into(),
            replay_lsn: lsn(replay),
            receive_lsn: lsn(replay),
            ..Default::default()
        }
    }

    fn sender(name: &str, state: &str, replay: &str) -> Sender {
        Sender {
            application_name: name.into(),
            state: state.into(),
            sync_state: "async".into(),
            sent_lsn: lsn("0/5000000"),
            replay_lsn: lsn(replay),
            ..Default::default()
        }
    }

    fn slot(name: &str, active: bool, retained: i64) -> Slot {
        Slot {
            name: name.into(),
            slot_type: "physical".into(),
            active,
            wal_status: Some("reserved".into()),
            retained_bytes: Some(retained),
            ..Default::default()
        }
    }

    fn assess_probes(probes: Vec<Probe>, t: &Thresholds, d: f64) -> ClusterView {
        let inv = inv();
        assess(&Topology::discover(&inv, probes), t, d)
    }

    fn ok(s: NodeState) -> Probe {
        Probe { state: Ok(s) }
    }

    #[test]
    fn healthy_cluster_has_no_findings() {
        let p = primary(
            vec![
                sender("r1", "streaming", "0/5000000"),
                sender("r2", "streaming", "0/4FFFF00"),
            ],
            vec![slot("r1", true, 0), slot("r2", true, 256)],
        );
        let v = assess_probes(
            vec![ok(p), ok(replica("0/5000000")), ok(replica("0/4FFFF00"))],
            &Thresholds::default(),
            0.1,
        );
        assert!(v.healthy, "{:?}", v.findings);
        assert_eq!(v.primary.as_deref(), Some("p"));
        assert_eq!(v.replicas[1].behind_bytes, Some(0x100));
        assert_eq!(v.replicas[1].lag_bytes, Some(0x100));
        assert_eq!(v.replicas[0].upstream.as_deref(), Some("p"));
    }

    #[test]
    fn stopped_replica_makes_unreachable_and_inactive_slot_warnings() {
        let p = primary(
            vec![sender("r1", "streaming", "0/5000000")],
            vec![slot("r1", true, 0), slot("r2", false, 1 << 20)],
        );
        let v = assess_probes(
            vec![
                ok(p),
                ok(replica("0/5000000")),
                Probe {
                    state: Err("connection refused".into()),
                },
            ],
            &Thresholds::default(),
            0.1,
        );
        assert_eq!(v.severity, Severity::Warning);
        let codes: Vec<_> = v.findings.iter().map(|f| f.code).collect();
        assert!(
            codes.contains(&"unreachable") && codes.contains(&"slot_inactive"),
            "{codes:?}"
        );
        let f = v
            .findings
            .iter()
            .find(|f| f.code == "slot_inactive")
            .unwrap();
        assert!(f.fix.contains("pg_ctl start"), "{}", f.fix);
    }

    #[test]
    fn two_writable_nodes_are_split_brain() {
        let p = primary(vec![sender("r1", "streaming", "0/5000000")], vec![]);
        let mut r2 = primary(vec![], vec![]);
        r2.current_lsn = lsn("0/5000100");
        let v = assess_probes(
            vec![ok(p), ok(replica("0/5000000")), ok(r2)],
            &Thresholds::default(),
            0.1,
        );
        assert_eq!(v.severity, Severity::Critical);
        let f = v
            .findings
            .iter()
            .find(|f| f.code == "split_brain")
            .expect("split brain");
        assert!(
            f.message.contains("p, r2") && f.fix.contains("pg_ctl stop"),
            "{f:?}"
        );
        assert_eq!(v.primary, None);
    }

    #[test]
    fn no_primary_names_the_first_of_the_most_advanced_replicas() {
        let v = assess_probes(
            vec![
                Probe {
                    state: Err("down".into()),
                },
                ok(replica("0/6000000")),
                ok(replica("0/6000000")),
            ],
            &Thresholds::default(),
            0.1,
        );
        let f = v.findings.iter().find(|f| f.code == "no_primary").unwrap();
        assert!(f.fix.contains("promote r1"), "{}", f.fix);
        assert!(
            !v.findings.iter().any(|f| f.code == "not_streaming"),
            "{:?}",
            v.findings
        );
    }

    #[test]
    fn no_primary_names_the_most_advanced_replica() {
        let v = assess_probes(
            vec![
                Probe {
                    state: Err("down".into()),
                },
                ok(replica("0/5000000")),
                ok(replica("0/6000000")),
            ],
            &Thresholds::default(),
            0.1,
        );
        let f = v.findings.iter().find(|f| f.code == "no_primary").unwrap();
        assert_eq!(f.severity, Severity::Critical);
        assert!(
            f.fix.contains("r2") && f.fix.contains("0/6000000"),
            "{}",
            f.fix
        );
    }

    #[test]
    fn lag_thresholds_wrong_upstream_and_stale_inventory() {
        let t = Thresholds {
            lag_warning_bytes: 1000,
            lag_critical_bytes: 1 << 20,
            ..Thresholds::default()
        };
        // r1 became primary; p and r2 follow r1 (2000 bytes behind); the inventory says r2 follows p.
        let r1 = primary(
            vec![
                sender("p", "streaming", "0/4FFF830"),
                sender("r2", "streaming", "0/4FFF830"),
            ],
            vec![],
        );
        let p = replica("0/4FFF830");
        let v = assess_probes(vec![ok(p), ok(r1), ok(replica("0/4FFF830"))], &t, 0.1);
        let codes: Vec<_> = v.findings.iter().map(|f| (f.code, f.severity)).collect();
        assert!(
            codes.contains(&("inventory_primary_stale", Severity::Warning)),
            "{codes:?}"
        );
        assert!(codes.contains(&("lag", Severity::Warning)), "{codes:?}");
        assert!(
            codes.contains(&("wrong_upstream", Severity::Warning)),
            "{codes:?}"
        );
    }

    #[test]
    fn foreign_cluster_and_lost_slot_are_critical() {
        let mut s = slot("r1", false, 1 << 30);
        s.wal_status = Some("lost".into());
        let p = primary(vec![], vec![s]);
        let mut r2 = replica("0/1");
        r2.system_identifier = "8".into();
        let v = assess_probes(
            vec![ok(p), ok(replica("0/1")), ok(r2)],
            &Thresholds::default(),
            0.1,
        );
        let codes: Vec<_> = v
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Critical)
            .map(|f| f.code)
            .collect();
        assert!(
            codes.contains(&"slot_lost") && codes.contains(&"foreign_system_identifier"),
            "{codes:?}"
        );
    }
}
