//! The live cluster as a typed value: who accepts writes and on which timeline, which replica
//! streams from whom, who did not answer — with the inventory's intent beside it.
//!
//! Built from one probe per inventory host (`steps::probe::discover` does the I/O); everything
//! here is pure. Every command plans from a `Topology` and `health` assesses one. A replica's
//! upstream is a [`NodeId`], not a name to look up again.

use crate::inventory::{Host, Inventory, Role};
use crate::pg::state::{NodeState, Sender};
use crate::pg::Lsn;

/// One host's probe: the state its server reported, or why there is none.
#[derive(Debug, Clone)]
pub struct Probe {
    /// The server's answer (`Db::node_state`), or why there is none: its error, or the timeout.
    pub state: Result<NodeState, String>,
    /// The monitor role could not log in there (the server's words): the state was read as the
    /// superuser (`Context::monitor_db`). `None` when it could, or when the superuser was asked.
    pub monitor_refused: Option<String>,
}

/// A node of the topology: its position in the inventory's host list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub usize);

/// One host as the cluster sees it now.
#[derive(Debug, Clone)]
pub struct Node<'i> {
    /// Its position in the inventory's host list (and in [`Topology::nodes`]).
    pub id: NodeId,
    /// The inventory's description of the host (addresses, paths, slot name).
    pub host: &'i Host,
    /// What its server said, or why it said nothing.
    pub state: Result<NodeState, String>,
    /// The host whose WAL sender serves it (its `application_name` in that host's
    /// `pg_stat_replication`), whatever the inventory says.
    pub upstream: Option<NodeId>,
    /// See [`Probe::monitor_refused`].
    pub monitor_refused: Option<String>,
}

impl<'i> Node<'i> {
    /// The host's name.
    pub fn name(&self) -> &'i str {
        &self.host.name
    }

    /// The server's state, when it answered.
    pub fn live(&self) -> Option<&NodeState> {
        self.state.as_ref().ok()
    }

    /// Did its server answer?
    pub fn reachable(&self) -> bool {
        self.state.is_ok()
    }

    /// Why its server did not answer (empty when it did).
    pub fn error(&self) -> &str {
        self.state.as_ref().err().map(String::as_str).unwrap_or("")
    }

    /// Live role: `Primary` when it accepts writes (`pg_is_in_recovery()` false), `Replica` when
    /// in recovery, `None` when it did not answer.
    pub fn role(&self) -> Option<Role> {
        self.live().map(|s| {
            if s.in_recovery {
                Role::Replica
            } else {
                Role::Primary
            }
        })
    }

    /// Accepts writes now?
    pub fn is_writable(&self) -> bool {
        self.role() == Some(Role::Primary)
    }

    /// A reachable standby?
    pub fn is_standby(&self) -> bool {
        self.role() == Some(Role::Replica)
    }

    /// How far a standby's WAL goes: the larger of received and replayed LSN.
    pub fn wal_received(&self) -> Option<Lsn> {
        self.live().and_then(|s| s.receive_lsn.max(s.replay_lsn))
    }

    /// The timeline the server is on.
    pub fn timeline(&self) -> Option<u32> {
        self.live().and_then(|s| s.timeline)
    }
}

/// The live cluster, in inventory host order, and the inventory it was probed from.
#[derive(Debug, Clone)]
pub struct Topology<'i> {
    /// The inventory's intent: roles, upstreams and slots as written.
    pub inv: &'i Inventory,
    /// One node per inventory host, in inventory order (`NodeId(i)` is `inv.hosts[i]`).
    pub nodes: Vec<Node<'i>>,
}

impl<'i> Topology<'i> {
    /// Builds the topology from one probe per inventory host (in inventory order).
    ///
    /// A standby's upstream is the first host, in inventory order, whose `pg_stat_replication`
    /// lists it by `application_name`.
    pub fn discover(inv: &'i Inventory, probes: Vec<Probe>) -> Topology<'i> {
        assert_eq!(inv.hosts.len(), probes.len(), "one probe per host");
        let mut nodes: Vec<Node<'i>> = inv
            .hosts
            .iter()
            .zip(probes)
            .enumerate()
            .map(|(i, (host, p))| Node {
                id: NodeId(i),
                host,
                state: p.state,
                upstream: None,
                monitor_refused: p.monitor_refused,
            })
            .collect();
        let ups: Vec<Option<NodeId>> = nodes
            .iter()
            .map(|n| {
                if !n.is_standby() {
                    return None;
                }
                nodes.iter().find_map(|u| {
                    u.live()?
                        .senders
                        .iter()
                        .any(|r| r.application_name == n.host.name)
                        .then_some(u.id)
                })
            })
            .collect();
        for (n, up) in nodes.iter_mut().zip(ups) {
            n.upstream = up;
        }
        Topology { inv, nodes }
    }

    /// The node of `id`.
    pub fn node(&self, id: NodeId) -> &Node<'i> {
        &self.nodes[id.0]
    }

    /// The node of the inventory host `name`.
    pub fn find(&self, name: &str) -> Option<&Node<'i>> {
        self.nodes.iter().find(|n| n.host.name == name)
    }

    /// Every node that accepts writes now (more than one is a split-brain).
    pub fn writable(&self) -> impl Iterator<Item = &Node<'i>> {
        self.nodes.iter().filter(|n| n.is_writable())
    }

    /// The one node that accepts writes, when there is exactly one.
    pub fn primary(&self) -> Option<&Node<'i>> {
        let mut w = self.writable();
        match (w.next(), w.next()) {
            (Some(p), None) => Some(p),
            _ => None,
        }
    }

    /// Who is primary by pgrepl's one rule: the node that accepts writes; when several do, the
    /// one on the highest timeline, then with the most WAL (then the inventory's primary, then
    /// the first in inventory order). The others are split-brain: their writes since the fork
    /// are what a rebuild discards.
    pub fn leader(&self) -> Option<&Node<'i>> {
        let rank = |n: &Node<'i>| {
            (
                n.timeline(),
                n.live().and_then(|s| s.current_lsn),
                n.host.role == Role::Primary,
            )
        };
        self.writable()
            .fold(None, |best: Option<&Node<'i>>, n| match best {
                Some(b) if rank(b) >= rank(n) => Some(b),
                _ => Some(n),
            })
    }

    /// Every reachable standby.
    pub fn standbys(&self) -> impl Iterator<Item = &Node<'i>> {
        self.nodes.iter().filter(|n| n.is_standby())
    }

    /// The nodes whose server did not answer.
    pub fn unreachable(&self) -> impl Iterator<Item = &Node<'i>> {
        self.nodes.iter().filter(|n| !n.reachable())
    }

    /// The node serving `n` its WAL now.
    pub fn upstream_of(&self, n: &Node<'i>) -> Option<&Node<'i>> {
        n.upstream.map(|u| self.node(u))
    }

    /// `n`'s row in its upstream's `pg_stat_replication`.
    pub fn sender_row(&self, n: &Node<'i>) -> Option<&Sender> {
        self.upstream_of(n)?
            .live()?
            .senders
            .iter()
            .find(|r| r.application_name == n.host.name)
    }

    /// Does `n` stream (WAL sender state `streaming`) from `from`?
    pub fn streams_from(&self, n: &Node<'i>, from: &Node<'i>) -> bool {
        n.upstream == Some(from.id) && self.sender_row(n).is_some_and(|r| r.state == "streaming")
    }

    /// The standbys that `n` serves now.
    pub fn followers(&self, n: &Node<'i>) -> impl Iterator<Item = &Node<'i>> {
        let id = n.id;
        self.nodes.iter().filter(move |x| x.upstream == Some(id))
    }

    /// How many bytes of WAL a standby has yet to replay: its upstream's position (or, when no
    /// host serves it, the primary's) minus its replay LSN. `None` when either is unknown.
    pub fn behind_bytes(&self, n: &Node<'i>) -> Option<u64> {
        let upstream_pos = self
            .upstream_of(n)
            .and_then(|u| u.live()?.position())
            .or_else(|| self.primary()?.live()?.position());
        Some(n.live()?.replay_lsn?.bytes_until(upstream_pos?))
    }

    /// The inventory as it stands once `new_primary` is the primary, from the live state:
    /// `Inventory::with_primary`; then each host in `moved` (the hosts this run re-points)
    /// whose upstream is neither the new primary nor a live standby — it is down, or it is the
    /// primary being replaced — follows the new primary instead. Other hosts keep what the
    /// inventory says. The hosts keep their order (`NodeId(i)` is still `hosts[i]`).
    pub fn intent_after(&self, new_primary: &str, moved: &[&str]) -> Inventory {
        let mut inv = self.inv.with_primary(new_primary);
        for h in inv.hosts.iter_mut() {
            let Some(u) = h.upstream.as_deref() else {
                continue;
            };
            let upstream_ok =
                u == new_primary || (u != h.name && self.find(u).is_some_and(|n| n.is_standby()));
            if !upstream_ok && moved.contains(&h.name.as_str()) {
                h.upstream = Some(new_primary.to_string());
            }
        }
        inv
    }

    /// The names of the live standbys but `except`: the hosts a change of primary re-points.
    pub fn standby_names(&self, except: &[&str]) -> Vec<&'i str> {
        self.standbys()
            .map(|n| n.name())
            .filter(|n| !except.contains(n))
            .collect()
    }

    /// The reachable standby with the most WAL, other than `except` and other than delayed
    /// replicas (`apply_delay`: never suggested for promotion); the first in inventory order
    /// among equals.
    pub fn most_advanced_standby(&self, except: Option<NodeId>) -> Option<&Node<'i>> {
        self.standbys()
            .filter(|n| Some(n.id) != except && n.host.apply_delay.is_none())
            .fold(None, |best: Option<&Node<'i>>, n| match best {
                Some(b) if b.wal_received() >= n.wal_received() => Some(b),
                _ => Some(n),
            })
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! Topologies for the pure tests of `health` and the preflights.
    use super::*;
    use crate::pg::state::{Receiver, Slot};

    /// A three-host inventory: p (primary), r1, r2 (replicas of p).
    pub fn inventory() -> Inventory {
        crate::inventory::parse(
            "cluster: c\npostgres: {version: 15}\nreplication: {password_env: X}\nhosts:\n  - {name: p, address: 10.0.0.1, role: primary}\n  - {name: r1, address: 10.0.0.2, role: replica}\n  - {name: r2, address: 10.0.0.3, role: replica}\n",
            std::path::Path::new("i.yml"),
        )
        .unwrap()
    }

    /// A physical slot `name`, reserved, retaining nothing; `active` as given.
    pub fn slot(name: &str, active: bool) -> Slot {
        Slot {
            name: name.into(),
            slot_type: "physical".into(),
            active,
            wal_status: Some("reserved".into()),
            safe_wal_size: None,
            retained_bytes: Some(0),
            invalidation_reason: None,
        }
    }

    /// A writable server on timeline 1 at `lsn`, serving `followers` (streaming).
    pub fn primary(lsn: &str, followers: &[&str]) -> NodeState {
        NodeState {
            in_recovery: false,
            system_identifier: "7".into(),
            timeline: Some(1),
            current_lsn: Lsn::parse(lsn),
            senders: followers
                .iter()
                .map(|f| Sender {
                    application_name: f.to_string(),
                    state: "streaming".into(),
                    sync_state: "async".into(),
                    sent_lsn: Lsn::parse(lsn),
                    replay_lsn: Lsn::parse(lsn),
                    ..Default::default()
                })
                .collect(),
            slots: followers
                .iter()
                .map(|f| Slot {
                    name: f.to_string(),
                    slot_type: "physical".into(),
                    active: true,
                    wal_status: Some("reserved".into()),
                    ..Default::default()
                })
                .collect(),
            rewindable: true,
            max_wal_senders: 10,
            max_replication_slots: 10,
            ..Default::default()
        }
    }

    /// A standby on timeline 1 that received and replayed up to `lsn`.
    pub fn standby(lsn: &str) -> NodeState {
        NodeState {
            in_recovery: true,
            system_identifier: "7".into(),
            timeline: Some(1),
            receive_lsn: Lsn::parse(lsn),
            replay_lsn: Lsn::parse(lsn),
            receiver: Some(Receiver {
                status: "streaming".into(),
                ..Default::default()
            }),
            rewindable: true,
            max_wal_senders: 10,
            max_replication_slots: 10,
            ..Default::default()
        }
    }

    /// A probe that found the server up.
    pub fn up(s: NodeState) -> Probe {
        Probe {
            state: Ok(s),
            monitor_refused: None,
        }
    }

    /// A probe that found nothing.
    pub fn down(why: &str) -> Probe {
        Probe {
            state: Err(why.into()),
            monitor_refused: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    #[test]
    fn upstreams_are_node_references_from_the_live_senders() {
        let inv = inventory();
        let t = Topology::discover(
            &inv,
            vec![
                up(primary("0/5000000", &["r1"])),
                up(standby("0/5000000")),
                down("no answer"),
            ],
        );
        assert_eq!(t.primary().map(|n| n.name()), Some("p"));
        let r1 = t.find("r1").unwrap();
        assert_eq!(t.upstream_of(r1).map(|n| n.name()), Some("p"));
        assert!(t.streams_from(r1, t.find("p").unwrap()));
        assert_eq!(
            t.unreachable().map(|n| n.name()).collect::<Vec<_>>(),
            ["r2"]
        );
        assert_eq!(
            t.followers(t.find("p").unwrap())
                .map(|n| n.name())
                .collect::<Vec<_>>(),
            ["r1"]
        );
    }

    #[test]
    fn after_a_failover_replicas_of_a_gone_node_follow_the_new_primary() {
        // r2 cascades from r1 in the inventory; r1 is gone: re-pointed, r2 follows p.
        let mut inv = inventory();
        inv.hosts[2].upstream = Some("r1".into());
        let t = Topology::discover(
            &inv,
            vec![
                up(standby("0/5000000")),
                down("gone"),
                up(standby("0/5000000")),
            ],
        );
        assert_eq!(t.standby_names(&["p"]), ["r2"]);
        let eff = t.intent_after("p", &["r2"]);
        assert_eq!(eff.hosts[2].upstream.as_deref(), Some("p"));
        // Not re-pointed by this run, it keeps what the inventory says.
        assert_eq!(
            t.intent_after("p", &[]).hosts[2].upstream.as_deref(),
            Some("r1")
        );
        // While r1 is a live standby, r2 keeps cascading from it.
        let t = Topology::discover(
            &inv,
            vec![
                up(standby("0/5000000")),
                up(standby("0/5000000")),
                up(standby("0/5000000")),
            ],
        );
        assert_eq!(
            t.intent_after("p", &["r1", "r2"]).hosts[2]
                .upstream
                .as_deref(),
            Some("r1")
        );
    }

    #[test]
    fn two_writable_nodes_are_no_primary() {
        let inv = inventory();
        let t = Topology::discover(
            &inv,
            vec![
                up(primary("0/5000000", &[])),
                up(primary("0/6000000", &[])),
                up(standby("0/5000000")),
            ],
        );
        assert!(t.primary().is_none());
        assert_eq!(t.writable().count(), 2);
    }

    #[test]
    fn the_leader_is_on_the_newest_timeline_then_has_the_most_wal() {
        let inv = inventory();
        let on = |tli: u32, lsn: &str| {
            let mut s = primary(lsn, &[]);
            s.timeline = Some(tli);
            up(s)
        };
        let leader = |probes| {
            Topology::discover(&inv, probes)
                .leader()
                .map(|n| n.name().to_string())
        };
        // A newer timeline wins over more WAL and over the inventory's primary.
        assert_eq!(
            leader(vec![
                on(1, "0/9000000"),
                on(2, "0/5000000"),
                up(standby("0/1"))
            ]),
            Some("r1".into())
        );
        // On one timeline, the most WAL wins.
        assert_eq!(
            leader(vec![
                on(2, "0/5000000"),
                on(2, "0/6000000"),
                on(2, "0/5800000")
            ]),
            Some("r1".into())
        );
        // Equal: the inventory's primary, then the first in inventory order.
        assert_eq!(
            leader(vec![on(2, "0/5000000"), on(2, "0/5000000"), down("x")]),
            Some("p".into())
        );
        assert_eq!(
            leader(vec![down("x"), on(2, "0/5000000"), on(2, "0/5000000")]),
            Some("r1".into())
        );
        assert_eq!(leader(vec![down("x"), down("y"), up(standby("0/1"))]), None);
    }

    #[test]
    fn most_advanced_standby_prefers_inventory_order_among_equals() {
        let inv = inventory();
        let t = Topology::discover(
            &inv,
            vec![
                down("gone"),
                up(standby("0/5000000")),
                up(standby("0/5000000")),
            ],
        );
        assert_eq!(t.most_advanced_standby(None).map(|n| n.name()), Some("r1"));
        let t = Topology::discover(
            &inv,
            vec![
                down("gone"),
                up(standby("0/5000000")),
                up(standby("0/6000000")),
            ],
        );
        assert_eq!(t.most_advanced_standby(None).map(|n| n.name()), Some("r2"));
        assert_eq!(
            t.most_advanced_standby(Some(NodeId(2))).map(|n| n.name()),
            Some("r1")
        );
    }
}
