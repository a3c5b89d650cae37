//! The rules of `status`: one pure function per [`FindingCode`], each reading the live
//! [`Topology`] (and the inventory's intent beside it) and saying what it finds, how bad it is
//! and the fix, whose commands come from [`Fixes`]. No I/O, no printing, no sorting: [`all`]
//! runs them in a fixed order and `assess` sorts the result.
//!
//! A rule about one thing that another rule already explains stays quiet: without a primary
//! nothing streams (`no_primary` says so, not `not_streaming`), and a standby that does not
//! stream has no `wrong_upstream`.

use crate::inventory::{Host, Role};
use crate::topology::{Node, Topology};

use super::fixes::Fixes;
pub use super::slot_rules::{slot_inactive, slot_lost, slots};
use super::{
    behind_bytes, inventory_upstream, is_streaming, reference_primary, Finding, FindingCode,
    Severity, Thresholds,
};

/// Every rule's findings, in the order the rules are listed here (`assess` sorts them stably,
/// so this order decides among findings of one severity on one host).
pub fn all(topo: &Topology, t: &Thresholds) -> Vec<Finding> {
    let mut f = unreachable(topo);
    f.extend(no_primary(topo));
    f.extend(split_brain(topo));
    f.extend(inventory_primary_stale(topo));
    f.extend(foreign_system_identifier(topo));
    f.extend(not_streaming(topo));
    f.extend(wrong_upstream(topo));
    f.extend(replay_paused(topo));
    f.extend(lag(topo, t));
    f.extend(slots(topo));
    f.extend(pending_restart(topo));
    f.extend(auto_conf_override(topo));
    f.extend(super::mode_rules::sync_standbys_missing(topo));
    f.extend(super::mode_rules::archiving(topo));
    f.extend(super::login_rules::monitor_login_missing(topo));
    f
}

pub(super) fn finding(
    severity: Severity,
    code: FindingCode,
    host: Option<&Host>,
    message: String,
    fix: String,
) -> Finding {
    Finding {
        severity,
        code,
        host: host.map(|h| h.name.clone()),
        message,
        fix,
    }
}

/// `unreachable` (warning), one per host whose server did not answer the probe.
/// Fix: check the host and its server with `pg_ctl status`.
pub fn unreachable(topo: &Topology) -> Vec<Finding> {
    let fix = Fixes::new(topo.inv);
    topo.unreachable()
        .map(|n| {
            finding(
                Severity::Warning,
                FindingCode::Unreachable,
                Some(n.host),
                format!("{} is unreachable: {}", n.name(), n.error()),
                format!(
                    "check the host and its server: {}",
                    fix.pg_ctl_status(n.host)
                ),
            )
        })
        .collect()
}

/// `no_primary` (critical), when no reachable node accepts writes.
/// Fix: start the primary if it can come back, otherwise promote the most advanced reachable
/// standby (the first in inventory order among equals); start the primary's server when no
/// standby answered either.
pub fn no_primary(topo: &Topology) -> Option<Finding> {
    if topo.writable().next().is_some() {
        return None;
    }
    let fix = Fixes::new(topo.inv);
    let remedy = match topo.most_advanced_standby(None) {
        Some(n) => format!(
            "start the primary if it can come back; otherwise promote the most advanced replica, {} (WAL up to {}): {}",
            n.name(),
            n.wal_received()
                .map(|l| l.to_string())
                .unwrap_or_else(|| "unknown".into()),
            fix.promote(n.host)
        ),
        None => "start the primary's server".into(),
    };
    Some(finding(
        Severity::Critical,
        FindingCode::NoPrimary,
        None,
        "no reachable node accepts writes".into(),
        remedy,
    ))
}

/// What each writable node but `kept` wrote after it left `kept`'s history (the fork point in
/// `kept`'s timeline history file): what a rebuild of it discards. Empty when unknown.
fn written_after_fork(kept: &Node, writable: &[&Node]) -> String {
    let Some(history) = kept.live().and_then(|s| s.timeline_history.as_deref()) else {
        return String::new();
    };
    writable
        .iter()
        .filter(|n| n.id != kept.id)
        .filter_map(|n| {
            let fork = crate::pg::wal::fork_point(history, n.timeline()?)?;
            let end = n.live()?.current_lsn?;
            Some(format!(
                "; {} wrote {} bytes after the fork at {fork} (a rebuild of it discards them)",
                n.name(),
                fork.bytes_until(end)
            ))
        })
        .collect()
}

/// `split_brain` (critical), when more than one node accepts writes.
/// Fix: keep the node on the newest timeline with the most WAL (`Topology::leader`), stop every
/// other writable node now, then rebuild each stopped one as a replica. It never advises
/// stopping the newer primary.
pub fn split_brain(topo: &Topology) -> Option<Finding> {
    let writable: Vec<&Node> = topo.writable().collect();
    if writable.len() < 2 {
        return None;
    }
    let fix = Fixes::new(topo.inv);
    let kept = topo.leader();
    let keep = kept.map(|n| n.id);
    let others: Vec<&Host> = writable
        .iter()
        .filter(|n| Some(n.id) != keep)
        .map(|n| n.host)
        .collect();
    let list = |cmd: &dyn Fn(&Host) -> String| {
        others.iter().map(|h| cmd(h)).collect::<Vec<_>>().join("; ")
    };
    let names: Vec<&str> = writable.iter().map(|n| n.name()).collect();
    // Standbys that follow a node to be stopped (directly or down a cascade) replayed its writes
    // after the fork: they are rebuilt from the kept node too.
    let mut led: Vec<&Node> = Vec::new();
    let mut frontier: Vec<&Node> = writable
        .iter()
        .filter(|n| Some(n.id) != keep)
        .copied()
        .collect();
    while let Some(n) = frontier.pop() {
        for f in topo.followers(n).filter(|f| f.is_standby()) {
            if !led.iter().any(|x| x.id == f.id) {
                led.push(f);
                frontier.push(f);
            }
        }
    }
    let followers = if led.is_empty() {
        String::new()
    } else {
        format!(
            "; and the standbys that replayed their writes: {}",
            led.iter()
                .map(|n| fix.rebuild(n.host))
                .collect::<Vec<_>>()
                .join("; ")
        )
    };
    Some(finding(
        Severity::Critical,
        FindingCode::SplitBrain,
        None,
        format!(
            "{} nodes accept writes: {} (split-brain){}",
            names.len(),
            names.join(", "),
            kept.map(|k| written_after_fork(k, &writable)).unwrap_or_default()
        ),
        format!(
            "keep {}{}; stop every other writable node, now: {}; then rebuild each as a replica: {}{followers}",
            kept.map(|n| n.name()).unwrap_or("?"),
            kept.map(|n| format!(
                " (timeline {}, WAL up to {}: the newest)",
                n.timeline().map(|t| t.to_string()).unwrap_or_else(|| "?".into()),
                n.live()
                    .and_then(|s| s.current_lsn)
                    .map(|l| l.to_string())
                    .unwrap_or_else(|| "?".into())
            ))
            .unwrap_or_default(),
            list(&|h| fix.pg_ctl_stop(h)),
            list(&|h| fix.rebuild(h))
        ),
    ))
}

/// `inventory_primary_stale` (warning), when exactly one node accepts writes and the inventory
/// calls it a replica (after a failover or switchover the inventory was not edited for).
/// Fix: edit the roles in the inventory.
pub fn inventory_primary_stale(topo: &Topology) -> Option<Finding> {
    let p = topo.primary().filter(|p| p.host.role != Role::Primary)?;
    let inv_p = topo.inv.primary();
    Some(finding(
        Severity::Warning,
        FindingCode::InventoryPrimaryStale,
        Some(p.host),
        format!(
            "the live primary is {}, the inventory says {}",
            p.name(),
            inv_p.name
        ),
        Fixes::new(topo.inv).edit_roles(p.host, inv_p),
    ))
}

/// `foreign_system_identifier` (critical), one per reachable node whose system identifier is
/// not the primary's (in a split-brain, the writable node `split_brain` keeps): it is not a copy
/// of this cluster. Fix: re-clone it with `rebuild --method clone`.
pub fn foreign_system_identifier(topo: &Topology) -> Vec<Finding> {
    let Some((p, ps)) = reference_primary(topo).and_then(|p| Some((p, p.live()?))) else {
        return Vec::new();
    };
    let fix = Fixes::new(topo.inv);
    let foreign = topo.nodes.iter().filter_map(|n| {
        let s = n.live()?;
        (n.id != p.id && s.system_identifier != ps.system_identifier).then_some((n, s))
    });
    foreign
        .map(|(n, s)| {
            let message = format!(
                "{} has system identifier {}, the primary has {}: it is not a copy of this cluster",
                n.name(),
                s.system_identifier,
                ps.system_identifier
            );
            let remedy = format!(
                "re-clone it as a copy of this cluster: {}",
                fix.rebuild_clone(n.host)
            );
            let code = FindingCode::ForeignSystemIdentifier;
            finding(Severity::Critical, code, Some(n.host), message, remedy)
        })
        .collect()
}

/// A standby that does not stream while some node accepts writes (without one, nothing can
/// stream, and `no_primary` says what to do).
fn stalled(topo: &Topology, n: &Node) -> bool {
    !is_streaming(topo, n) && reference_primary(topo).is_some()
}

/// `not_streaming` (warning), one per reachable standby whose WAL sender is not `streaming`
/// (or that no host serves) while a node accepts writes. The message says why: the sender's
/// state, the WAL receiver's status, or no receiver at all.
/// Fix: read its server log; rebuild it if it cannot catch up.
pub fn not_streaming(topo: &Topology) -> Vec<Finding> {
    let fix = Fixes::new(topo.inv);
    topo.standbys()
        .filter(|n| stalled(topo, n))
        .map(|n| {
            let receiver = n.live().and_then(|s| s.receiver.as_ref());
            let why = match (topo.sender_row(n), receiver) {
                (Some(row), _) => format!(
                    "its WAL sender on {} is in state {}",
                    topo.upstream_of(n).map_or("?", |u| u.name()),
                    row.state
                ),
                (None, Some(r)) => {
                    format!("its WAL receiver is {} but no host serves it", r.status)
                }
                (None, None) => "it has no WAL receiver".into(),
            };
            let remedy = match n.host.apply_delay {
                // PostgreSQL starts a delayed standby's WAL receiver again only when its
                // delayed replay asks for more WAL.
                Some(d) => format!("a delayed replica (apply_delay {d}s): it streams again when its delayed replay asks for WAL; nothing to do unless that takes longer than its delay ({})", fix.tail_log(n.host)),
                None => format!(
                    "read its server log ({}); if it cannot catch up, rebuild it: {}",
                    fix.tail_log(n.host),
                    fix.rebuild(n.host)
                ),
            };
            finding(
                Severity::Warning,
                FindingCode::NotStreaming,
                Some(n.host),
                format!("{} is a standby but not streaming: {why}", n.name()),
                remedy,
            )
        })
        .collect()
}

/// `wrong_upstream` (warning), one per reachable standby served by another host than the
/// inventory's upstream (not for a stalled standby: that is `not_streaming`).
/// Fix: write the live upstream into the inventory, or re-point the standby with `init`.
pub fn wrong_upstream(topo: &Topology) -> Vec<Finding> {
    let fix = Fixes::new(topo.inv);
    topo.standbys()
        .filter(|n| !stalled(topo, n))
        .filter_map(|n| {
            let live = topo.upstream_of(n)?.name();
            let want = inventory_upstream(topo, n)?;
            (live != want).then(|| {
                finding(
                    Severity::Warning,
                    FindingCode::WrongUpstream,
                    Some(n.host),
                    format!(
                        "{} streams from {live}, the inventory says {want}",
                        n.name()
                    ),
                    format!(
                        "{}, or re-point it with {}",
                        fix.edit_upstream(n.host, live),
                        fix.init()
                    ),
                )
            })
        })
        .collect()
}

/// `replay_paused` (warning), one per reachable standby whose WAL replay is paused
/// (`pg_wal_replay_pause()`, or a recovery target reached with `recovery_target_action=pause`).
/// Fix: `pg_wal_replay_resume()`.
pub fn replay_paused(topo: &Topology) -> Vec<Finding> {
    let fix = Fixes::new(topo.inv);
    topo.standbys()
        .filter(|n| n.live().is_some_and(|s| s.replay_paused))
        .map(|n| {
            finding(
                Severity::Warning,
                FindingCode::ReplayPaused,
                Some(n.host),
                format!("WAL replay is paused on {}", n.name()),
                format!("resume it: {}", fix.resume_replay(n.host)),
            )
        })
        .collect()
}

/// How `value` compares with a warning and a critical threshold.
fn graded<T: PartialOrd>(value: T, warning: T, critical: T) -> Severity {
    if value >= critical {
        Severity::Critical
    } else if value >= warning {
        Severity::Warning
    } else {
        Severity::Ok
    }
}

/// `lag` (warning or critical), one per reachable standby whose bytes behind its upstream or
/// whose `replay_lag` reaches a threshold; the worse of the two decides the severity.
/// Fix: check the replica's disk and network, and watch it.
pub fn lag(topo: &Topology, t: &Thresholds) -> Vec<Finding> {
    let fix = Fixes::new(topo.inv);
    topo.standbys()
        .filter_map(|n| {
            let behind = behind_bytes(topo, n);
            // A delayed replica's replay lag counts beyond its apply_delay only.
            let delay = n.host.apply_delay.unwrap_or(0) as f64;
            let replay_lag = topo
                .sender_row(n)
                .and_then(|r| r.replay_lag_s)
                .map(|l| (l - delay).max(0.0));
            let by_bytes = behind.map(|b| graded(b, t.lag_warning_bytes, t.lag_critical_bytes));
            let by_secs =
                replay_lag.map(|l| graded(l, t.lag_warning_seconds, t.lag_critical_seconds));
            let sev = by_bytes.max(by_secs).unwrap_or(Severity::Ok);
            (sev > Severity::Ok).then(|| {
                finding(
                    sev,
                    FindingCode::Lag,
                    Some(n.host),
                    format!(
                        "{} is {} bytes behind{} (thresholds: {}/{} bytes, {}/{} s)",
                        n.name(),
                        behind.map(|b| b.to_string()).unwrap_or_else(|| "?".into()),
                        replay_lag
                            .map(|l| format!(", replay lag {l:.1} s"))
                            .unwrap_or_default(),
                        t.lag_warning_bytes,
                        t.lag_critical_bytes,
                        t.lag_warning_seconds,
                        t.lag_critical_seconds
                    ),
                    format!(
                        "check the replica's disk and network; watch it with {}",
                        fix.status_watch()
                    ),
                )
            })
        })
        .collect()
}

/// `pending_restart` (warning), one per reachable host with settings that wait for a restart
/// (`pg_settings.pending_restart`). Fix: restart it when convenient.
pub fn pending_restart(topo: &Topology) -> Vec<Finding> {
    let fix = Fixes::new(topo.inv);
    topo.nodes
        .iter()
        .filter_map(|n| {
            let pending = &n.live()?.pending_restart;
            (!pending.is_empty()).then(|| {
                finding(
                    Severity::Warning,
                    FindingCode::PendingRestart,
                    Some(n.host),
                    format!(
                        "{} has settings waiting for a restart: {}",
                        n.name(),
                        pending.join(", ")
                    ),
                    format!("restart it when convenient: {}", fix.pg_ctl_restart(n.host)),
                )
            })
        })
        .collect()
}

/// `auto_conf_override` (warning), one per reachable host whose `postgresql.auto.conf` sets a
/// setting a standby must not inherit (`pg::autoconf`): it overrides pgrepl's `postgresql.conf`
/// there, and a clone of that host would copy it. Fix: `ALTER SYSTEM RESET` them, reload.
pub fn auto_conf_override(topo: &Topology) -> Vec<Finding> {
    let fix = Fixes::new(topo.inv);
    topo.nodes
        .iter()
        .filter_map(|n| {
            let set: Vec<&(String, u32)> = n
                .live()?
                .auto_conf
                .iter()
                .filter(|(name, _)| crate::pg::autoconf::must_not_inherit(name))
                .collect();
            (!set.is_empty()).then(|| {
                let names: Vec<&str> = set.iter().map(|(name, _)| name.as_str()).collect();
                let lines: Vec<String> = set
                    .iter()
                    .map(|(name, line)| format!("{name} (line {line})"))
                    .collect();
                finding(
                    Severity::Warning,
                    FindingCode::AutoConfOverride,
                    Some(n.host),
                    format!(
                        "{}'s {} sets {}: it overrides pgrepl's postgresql.conf, and a standby must not inherit it",
                        n.name(),
                        crate::pg::autoconf::FILE,
                        lines.join(", ")
                    ),
                    format!("remove it: {}", fix.alter_system_reset(n.host, &names)),
                )
            })
        })
        .collect()
}
