//! The slot rules of `status` (`slot_lost`, `slot_inactive`), apart from `rules.rs` only for
//! size: pure functions over the live [`Topology`], one pass over every reachable host's slots.
//! A lost slot is worded by its `invalidation_reason` (PostgreSQL 17+).

use crate::inventory::Host;
use crate::pg::state::Slot;
use crate::topology::{Node, Topology};

use super::fixes::Fixes;
use super::rules::finding;
use super::{is_streaming, Finding, FindingCode, Severity};

/// The slot findings of every reachable host, slot by slot in the order its server listed them
/// (one pass, so that a host's lost and inactive slots keep that order among equals).
pub fn slots(topo: &Topology) -> Vec<Finding> {
    let mut f = Vec::new();
    for n in &topo.nodes {
        for sl in n.live().map(|s| s.slots.as_slice()).unwrap_or_default() {
            f.extend(slot_lost(topo, n, sl));
            f.extend(slot_inactive(topo, n, sl));
        }
    }
    f
}

/// The host the inventory gives the slot `name` (the first, in inventory order; it may be a
/// primary now).
fn slot_user<'i>(topo: &Topology<'i>, name: &str) -> Option<&'i Host> {
    topo.inv.hosts.iter().find(|r| r.slot == name)
}

/// Whether `h` accepts writes now.
fn writable_now(topo: &Topology, h: &Host) -> bool {
    topo.find(&h.name).is_some_and(|n| n.is_writable())
}

/// `slot_lost` (critical), for a slot on `on` whose `wal_status` is `lost`, worded by its
/// `invalidation_reason` (PostgreSQL 17+). `wal_removed` (or no reason, below 17): its replica
/// needs WAL that is gone; fix: re-clone that replica. `idle_timeout` (18,
/// `idle_replication_slot_timeout`): the slot sat unused too long, its WAL may still be there;
/// fix: a plain rebuild (or init) re-creates the slot. Another reason: the same plain fix. A slot
/// no inventory replica uses: drop it.
pub fn slot_lost(topo: &Topology, on: &Node, sl: &Slot) -> Option<Finding> {
    if sl.wal_status.as_deref() != Some("lost") {
        return None;
    }
    let fix = Fixes::new(topo.inv);
    // A slot kept for a host that is a primary now has no replica to re-clone.
    let user = slot_user(topo, &sl.name).filter(|r| !writable_now(topo, r));
    let (message, remedy) = match sl.invalidation_reason.as_deref() {
        None | Some("wal_removed") => (
            format!("slot {} on {} has lost WAL its replica needs", sl.name, on.name()),
            user.map(|r| format!("re-clone {}: {}", r.name, fix.rebuild_clone(r))),
        ),
        Some("idle_timeout") => (
            format!(
                "slot {} on {} was invalidated after sitting idle longer than idle_replication_slot_timeout (its WAL may still be there)",
                sl.name,
                on.name()
            ),
            user.map(|r| {
                format!(
                    "re-create the slot and stream again: {} (or {}); set idle_replication_slot_timeout to 0",
                    fix.rebuild(r),
                    fix.init()
                )
            }),
        ),
        Some(reason) => (
            format!("slot {} on {} was invalidated ({reason})", sl.name, on.name()),
            user.map(|r| format!("re-create the slot: {}", fix.rebuild(r))),
        ),
    };
    Some(finding(
        Severity::Critical,
        FindingCode::SlotLost,
        Some(on.host),
        message,
        remedy
            .unwrap_or_else(|| format!("drop it if unused: {}", fix.drop_slot(on.host, &sl.name))),
    ))
}

/// `slot_inactive`, for a slot on `on` (not lost) that no WAL sender uses and that retains WAL:
/// critical when its `wal_status` is `unreserved` (the WAL is about to go), else a warning.
/// Fix: when its replica streams from another host now, drop this stale slot; when its replica
/// is away, bring it back (`pg_ctl start`) or drop the slot; drop it when no replica uses it.
pub fn slot_inactive(topo: &Topology, on: &Node, sl: &Slot) -> Option<Finding> {
    let retained = sl.retained_bytes.unwrap_or(0);
    if sl.wal_status.as_deref() == Some("lost") || sl.active || retained <= 0 {
        return None;
    }
    let fix = Fixes::new(topo.inv);
    let sev = if sl.wal_status.as_deref() == Some("unreserved") {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let streams_elsewhere = |r: &Host| {
        topo.find(&r.name)
            .is_some_and(|n| n.is_standby() && is_streaming(topo, n) && n.upstream != Some(on.id))
    };
    let remedy = match slot_user(topo, &sl.name) {
        Some(r) if writable_now(topo, r) => format!(
            "{} is a primary now and streams from nobody: drop this stale slot: {}",
            r.name,
            fix.drop_slot(on.host, &sl.name)
        ),
        Some(r) if streams_elsewhere(r) => format!(
            "{} now streams from another host: drop this stale slot: {}",
            r.name,
            fix.drop_slot(on.host, &sl.name)
        ),
        Some(r) if r.apply_delay.is_some() && topo.find(&r.name).is_some_and(|n| n.is_standby()) => format!(
            "{} is a delayed replica that runs: its WAL receiver starts again (and uses this slot) when its delayed replay asks for WAL; nothing to do",
            r.name
        ),
        Some(r) => format!(
            "bring {} back ({}), or drop the slot if it is gone for good",
            r.name,
            fix.pg_ctl_start(r)
        ),
        None => format!("drop it if unused: {}", fix.drop_slot(on.host, &sl.name)),
    };
    Some(finding(
        sev,
        FindingCode::SlotInactive,
        Some(on.host),
        format!(
            "slot {} on {} is inactive and retains {} bytes of WAL (wal_status {})",
            sl.name,
            on.name(),
            retained,
            sl.wal_status.as_deref().unwrap_or("?")
        ),
        remedy,
    ))
}
