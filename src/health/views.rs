//! The views of `ClusterView` built from the topology: each host, each standby, each slot.

use super::*;

pub(super) fn host_view(n: &Node) -> HostView {
    let h = n.host;
    let s = n.live();
    HostView {
        name: h.name.clone(),
        address: h.address.clone(),
        port: h.port,
        inventory_role: h.role,
        reachable: n.reachable(),
        error: n.state.as_ref().err().cloned(),
        role: n.role(),
        server_version: s.map(|s| s.server_version.clone()),
        system_identifier: s.map(|s| s.system_identifier.clone()),
        timeline: n.timeline(),
        current_lsn: s.and_then(|s| s.current_lsn).map(|l| l.to_string()),
        receive_lsn: s.and_then(|s| s.receive_lsn).map(|l| l.to_string()),
        replay_lsn: s.and_then(|s| s.replay_lsn).map(|l| l.to_string()),
        replay_paused: s.filter(|s| s.in_recovery).map(|s| s.replay_paused),
        pending_restart: s.map(|s| s.pending_restart.clone()).unwrap_or_default(),
    }
}

pub(super) fn replica_view(topo: &Topology, n: &Node) -> ReplicaView {
    let row = topo.sender_row(n);
    ReplicaView {
        host: n.name().to_string(),
        inventory_upstream: inventory_upstream(topo, n).map(str::to_string),
        upstream: topo.upstream_of(n).map(|u| u.name().to_string()),
        streaming: is_streaming(topo, n),
        state: row.map(|r| r.state.clone()),
        sync_state: row.map(|r| r.sync_state.clone()),
        lag_bytes: row.and_then(|r| Some(r.replay_lsn?.bytes_until(r.sent_lsn?))),
        behind_bytes: behind_bytes(topo, n),
        replay_lag_seconds: row.and_then(|r| r.replay_lag_s),
        last_replay_age_seconds: n.live().and_then(|s| s.last_replay_age_s),
        apply_delay_seconds: n.host.apply_delay,
    }
}

pub(super) fn slot_views(topo: &Topology) -> Vec<SlotView> {
    let mut slots = Vec::new();
    for n in &topo.nodes {
        for sl in n.live().map(|s| s.slots.as_slice()).unwrap_or_default() {
            slots.push(SlotView {
                host: n.name().to_string(),
                name: sl.name.clone(),
                slot_type: sl.slot_type.clone(),
                active: sl.active,
                wal_status: sl.wal_status.clone(),
                safe_wal_size: sl.safe_wal_size,
                invalidation_reason: sl.invalidation_reason.clone(),
                retained_bytes: sl.retained_bytes,
            });
        }
    }
    slots
}

/// The node the others are measured against: the one writable node or, in a split-brain, the
/// one pgrepl keeps (`Topology::leader`: newest timeline, then most WAL).
pub(super) fn reference_primary<'t, 'i>(topo: &'t Topology<'i>) -> Option<&'t Node<'i>> {
    topo.leader()
}

/// The host the inventory says `n` streams from: its `upstream`, or for a host the inventory
/// calls primary, the inventory's primary when that is another host.
pub(super) fn inventory_upstream<'t>(topo: &Topology<'t>, n: &Node<'t>) -> Option<&'t str> {
    let h = n.host;
    h.upstream.as_deref().or_else(|| {
        let p = topo.inv.primary().name.as_str();
        (h.role == Role::Primary && p != h.name).then_some(p)
    })
}

/// Does `n`'s WAL sender report `streaming`?
pub(super) fn is_streaming(topo: &Topology, n: &Node) -> bool {
    topo.sender_row(n).is_some_and(|r| r.state == "streaming")
}

/// The upstream's WAL position (the reference primary's when nothing serves `n`) minus `n`'s
/// replay position.
pub(super) fn behind_bytes(topo: &Topology, n: &Node) -> Option<u64> {
    let upstream = topo
        .upstream_of(n)
        .and_then(|u| u.live()?.position())
        .or_else(|| reference_primary(topo)?.live()?.position());
    // A delayed replica (apply_delay) replays late on purpose: what it has received counts.
    let own = match n.host.apply_delay {
        Some(_) => n.live()?.receive_lsn.or(n.live()?.replay_lsn)?,
        None => n.live()?.replay_lsn?,
    };
    Some(own.bytes_until(upstream?))
}
