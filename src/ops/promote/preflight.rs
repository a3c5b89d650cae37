//! `promote`'s preflight: a pure function from the live `Topology` (and what pgrepl found on the
//! hosts whose server did not answer) to the plan of named steps, or every problem that refuses
//! it. No I/O; every refusal is unit-tested below.

use std::fmt;

use crate::error::Problem;
use crate::inventory::Host;
use crate::pg::Lsn;
use crate::topology::{Node, NodeId, Topology};

use super::Options;

/// What pgrepl found, through its transport, on a host whose server did not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Down {
    /// The server is down and its data directory is a primary's: write `standby.signal`.
    Fenceable,
    /// The server is down and the directory already a standby's (or no data): nothing to do.
    Harmless,
    /// The server runs but does not answer (frozen) on a primary's data directory: a promotion
    /// now could make two primaries; `--force` kills its postmaster, proves it down, fences it.
    Frozen,
    /// The host is unreachable: pgrepl cannot fence it; the DBA vouches that it stays down.
    CannotFence,
}

/// The promotion pgrepl will carry out, in order.
#[derive(Debug, Clone)]
pub struct Plan<'i> {
    /// The standby to promote.
    pub target: &'i Host,
    /// The target's node in the live topology (its position in the inventory's host list).
    pub target_id: NodeId,
    /// Its WAL position now (the larger of received and replayed).
    pub target_lsn: Option<Lsn>,
    /// Its timeline before the promotion.
    pub old_timeline: Option<u32>,
    /// Running primaries to stop, prove down and fence first (`--force`).
    pub stop: Vec<&'i Host>,
    /// Stopped primaries to fence (`standby.signal`).
    pub fence: Vec<&'i Host>,
    /// Primaries whose server runs without answering: SIGKILL, prove down, fence (`--force`).
    pub kill: Vec<&'i Host>,
    /// Hosts pgrepl cannot fence: the DBA confirms they are down for good.
    pub unfenced: Vec<&'i Host>,
    /// The other reachable standbys: they follow the new primary.
    pub siblings: Vec<NodeId>,
}

/// One named step of the plan, as the confirmation and `--dry-run` show it.
#[derive(Debug, Clone)]
pub enum Step<'i> {
    /// Promote the target, whose WAL reaches the LSN.
    Promote(&'i Host, Option<Lsn>),
    /// Stop a running primary and prove it down (then fence it).
    StopPrimary(&'i Host),
    /// Write standby.signal into a stopped primary's data directory.
    Fence(&'i Host),
    /// SIGKILL a frozen primary's postmaster, prove it down, fence it.
    KillFrozen(&'i Host),
    /// A host pgrepl cannot fence; the DBA vouches for it.
    Unfenced(&'i Host),
}

impl fmt::Display for Step<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Promote(h, lsn) => write!(
                f,
                "promote {} (WAL up to {})",
                h.name,
                lsn.map(|l| l.to_string())
                    .unwrap_or_else(|| "unknown".into())
            ),
            Step::StopPrimary(h) => write!(
                f,
                "first stop the running primary {} and prove it down",
                h.name
            ),
            Step::Fence(h) => write!(
                f,
                "fence {} (its server is down): write standby.signal so it can only restart read-only",
                h.name
            ),
            Step::KillFrozen(h) => write!(
                f,
                "first stop {}, whose server runs without answering: SIGKILL to its postmaster (pg_ctl kill KILL), prove it down, write standby.signal",
                h.name
            ),
            Step::Unfenced(h) => write!(
                f,
                "{} cannot be fenced (its host is unreachable): you confirm it is down for good",
                h.name
            ),
        }
    }
}

impl<'i> Plan<'i> {
    /// The steps as the DBA confirms them: the promotion, then what happens to the others.
    pub fn steps(&self) -> Vec<Step<'i>> {
        let mut v = vec![Step::Promote(self.target, self.target_lsn)];
        v.extend(self.stop.iter().map(|h| Step::StopPrimary(h)));
        v.extend(self.kill.iter().map(|h| Step::KillFrozen(h)));
        v.extend(self.fence.iter().map(|h| Step::Fence(h)));
        v.extend(self.unfenced.iter().map(|h| Step::Unfenced(h)));
        v
    }
}

/// Decides the promotion of `o.host` from the live topology and the verdicts on the hosts that
/// did not answer (`down`, by node). Refuses (every problem listed) when the target is not a
/// reachable standby, when another reachable standby has more WAL (unless `allow_data_loss`),
/// or when another node accepts writes (unless `force`).
pub fn preflight<'i>(
    topo: &Topology<'i>,
    down: &[(NodeId, Down)],
    o: &Options,
) -> Result<Plan<'i>, Vec<Problem>> {
    let inv_path = topo.inv.file.display().to_string();
    let Some(target) = topo.find(&o.host) else {
        return Err(vec![Problem::new(
            &o.host,
            "host",
            format!("{} is not a host of {inv_path}", o.host),
            "pgrepl status shows the hosts".into(),
        )]);
    };
    let mut problems = target_problems(target, &inv_path);
    if target.is_standby() && !o.allow_data_loss {
        problems.extend(better_candidate(topo, target, &inv_path));
        problems.extend(super::modes::sync_problem(topo, target, &inv_path));
    }
    if target.is_standby() && !o.allow_delayed {
        problems.extend(super::modes::delayed_problem(topo, target, &inv_path));
    }
    let writable: Vec<&Node<'i>> = topo.writable().filter(|n| n.id != target.id).collect();
    if !o.force {
        problems.extend(writable.iter().map(|p| {
            Problem::new(
                p.name(),
                "fencing",
                format!(
                    "{} is a running primary: promoting {} now would make two primaries",
                    p.name(),
                    target.name()
                ),
                format!(
                    "for a planned change of primary, use a switchover; to stop {} and promote anyway: pgrepl -i {inv_path} promote {} --force",
                    p.name(),
                    target.name()
                ),
            )
        }));
    }
    if !o.force {
        problems.extend(
            down.iter()
                .filter(|(id, d)| *d == Down::Frozen && *id != target.id)
                .map(|(id, _)| frozen_problem(topo.node(*id).host, target.name(), &inv_path)),
        );
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let verdict = |v: Down| -> Vec<&'i Host> {
        down.iter()
            .filter(|(id, d)| *d == v && *id != target.id)
            .map(|(id, _)| topo.node(*id).host)
            .collect()
    };
    Ok(Plan {
        target: target.host,
        target_id: target.id,
        target_lsn: target.wal_received(),
        old_timeline: target.timeline(),
        stop: writable.iter().map(|n| n.host).collect(),
        fence: verdict(Down::Fenceable),
        kill: verdict(Down::Frozen),
        unfenced: verdict(Down::CannotFence),
        siblings: topo
            .standbys()
            .filter(|n| n.id != target.id)
            .map(|n| n.id)
            .collect(),
    })
}

/// A primary whose server runs without answering: `--yes` answers a question, it never stands
/// for "that primary is dead"; `--force` stops it.
fn frozen_problem(h: &Host, target: &str, inv_path: &str) -> Problem {
    Problem::new(
        &h.name,
        "fencing",
        format!(
            "{}'s server runs but does not answer (its host does): it may still take writes, and promoting {target} now could make two primaries",
            h.name
        ),
        format!(
            "to stop it (SIGKILL to its postmaster through its host, proven down, then fenced) and promote: pgrepl -i {inv_path} promote {target} --force"
        ),
    )
}

/// The target must be a reachable standby.
fn target_problems(target: &Node<'_>, inv_path: &str) -> Vec<Problem> {
    if !target.reachable() {
        vec![Problem::new(
            target.name(),
            "target",
            format!("{} cannot be queried: {}", target.name(), target.error()),
            "promote a reachable replica (pgrepl status shows them)".into(),
        )]
    } else if target.is_writable() {
        vec![Problem::new(
            target.name(),
            "target",
            format!(
                "{} already accepts writes: there is nothing to promote",
                target.name()
            ),
            format!("pgrepl -i {inv_path} status"),
        )]
    } else {
        Vec::new()
    }
}

/// Another reachable standby with more WAL than the target: promoting the target would lose it.
fn better_candidate(topo: &Topology<'_>, target: &Node<'_>, inv_path: &str) -> Option<Problem> {
    let mine = target.wal_received();
    let b = topo
        .standbys()
        .filter(|n| n.id != target.id && n.wal_received().is_some())
        .filter(|n| n.wal_received() > mine)
        .max_by_key(|n| n.wal_received())?;
    let bl = b.wal_received()?;
    let lsn = |n: &Node<'_>, f: fn(&crate::pg::state::NodeState) -> Option<Lsn>| {
        n.live()
            .and_then(f)
            .map(|l| l.to_string())
            .unwrap_or_else(|| "-".into())
    };
    Some(Problem::new(
        target.name(),
        "candidate",
        format!(
            "{} has WAL up to {bl} (received {}, replayed {}), {} only up to {} (received {}, replayed {}): promoting {} would lose {} bytes",
            b.name(),
            lsn(b, |s| s.receive_lsn),
            lsn(b, |s| s.replay_lsn),
            target.name(),
            mine.map(|l| l.to_string()).unwrap_or_else(|| "unknown".into()),
            lsn(target, |s| s.receive_lsn),
            lsn(target, |s| s.replay_lsn),
            target.name(),
            mine.map(|m| m.bytes_until(bl)).unwrap_or(0)
        ),
        format!(
            "promote the better candidate: pgrepl -i {inv_path} promote {}; or accept the loss with --allow-data-loss",
            b.name()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::fixtures::*;
    use crate::topology::Probe;

    fn opts(host: &str) -> Options {
        Options {
            host: host.into(),
            force: false,
            allow_data_loss: false,
            allow_delayed: false,
        }
    }

    fn checks(r: Result<Plan<'_>, Vec<Problem>>) -> Vec<(String, String)> {
        r.expect_err("refused")
            .into_iter()
            .map(|p| (p.host, p.check))
            .collect()
    }

    fn run(probes: Vec<Probe>, down: &[(NodeId, Down)], o: &Options) -> Vec<(String, String)> {
        let inv = inventory();
        let topo = Topology::discover(&inv, probes);
        checks(preflight(&topo, down, o))
    }

    fn pair(h: &str, c: &str) -> (String, String) {
        (h.into(), c.into())
    }

    #[test]
    fn refuses_an_unreachable_target() {
        let got = run(
            vec![down("gone"), down("no answer"), up(standby("0/5000000"))],
            &[],
            &opts("r1"),
        );
        assert_eq!(got, [pair("r1", "target")]);
    }

    #[test]
    fn refuses_a_target_that_already_accepts_writes() {
        let got = run(
            vec![
                down("gone"),
                up(primary("0/5000000", &[])),
                up(standby("0/5000000")),
            ],
            &[],
            &opts("r1"),
        );
        assert_eq!(got, [pair("r1", "target")]);
    }

    #[test]
    fn refuses_a_candidate_behind_another_standby_unless_data_loss_is_allowed() {
        let probes = || {
            vec![
                down("gone"),
                up(standby("0/5000000")),
                up(standby("0/6000000")),
            ]
        };
        assert_eq!(run(probes(), &[], &opts("r1")), [pair("r1", "candidate")]);
        let inv = inventory();
        let topo = Topology::discover(&inv, probes());
        let o = Options {
            allow_data_loss: true,
            allow_delayed: false,
            ..opts("r1")
        };
        let plan = preflight(&topo, &[], &o).expect("allowed");
        assert_eq!(plan.target.name, "r1");
        assert_eq!(plan.siblings, [NodeId(2)]);
    }

    #[test]
    fn refuses_while_another_node_accepts_writes_unless_forced() {
        let probes = || {
            vec![
                up(primary("0/5000000", &["r1", "r2"])),
                up(standby("0/5000000")),
                up(standby("0/5000000")),
            ]
        };
        assert_eq!(run(probes(), &[], &opts("r1")), [pair("p", "fencing")]);
        let inv = inventory();
        let topo = Topology::discover(&inv, probes());
        let o = Options {
            force: true,
            ..opts("r1")
        };
        let plan = preflight(&topo, &[], &o).expect("forced");
        let shown: Vec<String> = plan.steps().iter().map(|s| s.to_string()).collect();
        assert_eq!(
            shown,
            [
                "promote r1 (WAL up to 0/5000000)",
                "first stop the running primary p and prove it down"
            ]
        );
    }

    #[test]
    fn a_frozen_primary_is_refused_without_force_and_killed_with_it() {
        let probes = || {
            vec![
                down("no answer"),
                up(standby("0/5000000")),
                up(standby("0/5000000")),
            ]
        };
        let frozen = [(NodeId(0), Down::Frozen)];
        assert_eq!(run(probes(), &frozen, &opts("r1")), [pair("p", "fencing")]);
        let inv = inventory();
        let topo = Topology::discover(&inv, probes());
        let o = Options {
            force: true,
            ..opts("r1")
        };
        let plan = preflight(&topo, &frozen, &o).expect("forced");
        assert_eq!(
            plan.kill
                .iter()
                .map(|h| h.name.as_str())
                .collect::<Vec<_>>(),
            ["p"]
        );
        assert!(plan.unfenced.is_empty());
        let shown: Vec<String> = plan.steps().iter().map(|s| s.to_string()).collect();
        assert!(
            shown[1].starts_with("first stop p, whose server runs without answering"),
            "{shown:?}"
        );
    }

    #[test]
    fn lists_every_problem_at_once() {
        let got = run(
            vec![
                up(primary("0/5000000", &[])),
                up(standby("0/4000000")),
                up(standby("0/5000000")),
            ],
            &[],
            &opts("r1"),
        );
        assert_eq!(got, [pair("r1", "candidate"), pair("p", "fencing")]);
    }

    #[test]
    fn refuses_an_unknown_host() {
        let got = run(
            vec![
                down("gone"),
                up(standby("0/5000000")),
                up(standby("0/5000000")),
            ],
            &[],
            &opts("nope"),
        );
        assert_eq!(got, [pair("nope", "host")]);
    }

    #[test]
    fn fences_a_stopped_primary_and_names_what_it_cannot_fence() {
        let inv = inventory();
        let topo = Topology::discover(
            &inv,
            vec![down("gone"), up(standby("0/5000000")), down("no answer")],
        );
        let down = [(NodeId(0), Down::Fenceable), (NodeId(2), Down::CannotFence)];
        let plan = preflight(&topo, &down, &opts("r1")).expect("plan");
        let shown: Vec<String> = plan.steps().iter().map(|s| s.to_string()).collect();
        assert_eq!(shown[0], "promote r1 (WAL up to 0/5000000)");
        assert!(
            shown[1].starts_with("fence p (its server is down)"),
            "{shown:?}"
        );
        assert!(shown[2].starts_with("r2 cannot be fenced"), "{shown:?}");
        assert!(plan.siblings.is_empty());
    }
}
