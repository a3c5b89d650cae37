//! `switchover`'s preflight: a pure function from the live `Topology` and the options to the plan
//! of named steps, or every problem that refuses it. No I/O; every refusal is unit-tested below.

use std::fmt;
use std::time::Duration;

use crate::error::Problem;
use crate::inventory::Host;
use crate::inventory::Thresholds;
use crate::pg::state::Archiver;
use crate::pg::{controldata, ctl};
use crate::steps::server::server;
use crate::topology::{Node, Topology};

use super::Options;

/// The switchover pgrepl will carry out.
#[derive(Debug, Clone)]
pub struct Plan<'i> {
    /// The primary now.
    pub old: &'i Host,
    /// The standby that becomes the primary.
    pub candidate: &'i Host,
    /// Chosen by `--to auto` (the most caught-up standby streaming from the primary).
    pub auto: bool,
    /// The other standbys (in inventory order): they follow the candidate.
    pub siblings: Vec<&'i Host>,
    /// `timeouts.start`: bounds pg_ctl's stop.
    pub stop_timeout: Duration,
    /// `timeouts.promote`: bounds catching up and the promotion.
    pub promote_timeout: Duration,
}

/// One named step of a switchover, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `CHECKPOINT` on the old primary, so its shutdown checkpoint is short.
    Checkpoint,
    /// Stop the old primary (fast): its final WAL, shutdown checkpoint included, reaches the
    /// standbys.
    StopOld,
    /// Read the shutdown checkpoint's LSN with pg_controldata; fence the old primary
    /// (standby.signal) so that nothing but pgrepl can start it as a primary again.
    ReadShutdownCheckpoint,
    /// Wait until the candidate has received and replayed past it.
    CatchUp,
    /// Promote the candidate and poll until it accepts writes. The point of no return.
    Promote,
    /// Start the old primary as a standby of the new one (pg_rewind only if it cannot follow).
    RejoinOld,
    /// Point the siblings at the new primary; verify every replica streams.
    Follow,
}

impl Step {
    /// Every step, in the order they run.
    pub const ALL: [Step; 7] = [
        Step::Checkpoint,
        Step::StopOld,
        Step::ReadShutdownCheckpoint,
        Step::CatchUp,
        Step::Promote,
        Step::RejoinOld,
        Step::Follow,
    ];

    /// The step's number as the narration shows it ("1." … "7.").
    pub fn number(self) -> usize {
        Step::ALL.iter().position(|s| *s == self).unwrap_or(0) + 1
    }
}

/// One step of a plan, with the plan's hosts and commands: one `--dry-run` line.
pub struct Shown<'p, 'i>(pub Step, pub &'p Plan<'i>);

impl fmt::Display for Shown<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Shown(step, p) = self;
        let (old, cand) = (&p.old.name, &p.candidate.name);
        write!(f, "{}. ", step.number())?;
        match step {
            Step::Checkpoint => write!(f, "CHECKPOINT on {old}"),
            Step::StopOld => write!(
                f,
                "stop {old} (fast): {}",
                ctl::stop(&server(p.old), p.stop_timeout.as_secs())
                    .full_argv()
                    .join(" ")
            ),
            Step::ReadShutdownCheckpoint => write!(
                f,
                "read its shutdown checkpoint LSN and fence it (standby.signal): {}",
                controldata::cmd(&p.old.bin_dir, &p.old.data_dir)
                    .full_argv()
                    .join(" ")
            ),
            Step::CatchUp => write!(
                f,
                "wait until {cand} has received and replayed it (timeouts.promote, {}s)",
                p.promote_timeout.as_secs()
            ),
            Step::Promote => write!(
                f,
                "promote {cand}: SELECT pg_promote(false); poll pg_is_in_recovery() until false"
            ),
            Step::RejoinOld => write!(
                f,
                "start {old} as a standby of {cand} (slot {}, primary_conninfo with passfile=, standby.signal); pg_rewind only if it cannot follow",
                p.old.slot
            ),
            Step::Follow => write!(
                f,
                "point {} at {cand}; verify every replica streams on the new timeline",
                p.siblings
                    .iter()
                    .map(|h| h.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

impl Plan<'_> {
    /// The whole plan, one numbered line per step (what `--dry-run` prints).
    pub fn describe(&self) -> String {
        Step::ALL
            .iter()
            .map(|s| Shown(*s, self).to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Decides the switchover from the live topology: every node reachable; exactly one primary;
/// the candidate streams from it, within `t.lag_warning_bytes`, replay not paused, with WAL
/// senders and slots for everyone who will follow it; the old primary rewindable if ever
/// needed. Every problem is listed.
pub fn preflight<'i>(
    topo: &Topology<'i>,
    t: &Thresholds,
    o: &Options,
    archiver: Option<&Archiver>,
) -> Result<Plan<'i>, Vec<Problem>> {
    let inv = topo.inv;
    let inv_path = inv.file.display().to_string();
    let status = format!("pgrepl -i {inv_path} status");
    let mut problems: Vec<Problem> = topo
        .unreachable()
        .map(|n| {
            Problem::new(
                n.name(),
                "reachable",
                format!("{} cannot be queried: {}", n.name(), n.error()),
                "a switchover needs every node; fix it first, or fail over with pgrepl promote"
                    .into(),
            )
        })
        .collect();
    let Some(old) = topo.primary() else {
        problems.push(Problem::new(
            &inv.cluster,
            "primary",
            format!(
                "{} nodes accept writes; a switchover needs exactly one",
                topo.writable().count()
            ),
            status,
        ));
        return Err(problems);
    };
    let cand = match choose(topo, old, &o.to, &inv_path) {
        Ok(c) => c,
        Err(p) => {
            problems.push(p);
            return Err(problems);
        }
    };
    problems.extend(candidate_problems(topo, old, cand, t, &inv_path));
    problems.extend(archiver.and_then(|a| archiver_problem(old.host, a)));
    if !old.live().is_some_and(|s| s.rewindable) {
        problems.push(Problem::new(old.name(), "rewind", format!("{} has neither data checksums nor wal_log_hints: if it could not follow, it could not be rewound", old.name()), format!("set wal_log_hints = on (pgrepl init -i {inv_path}) and restart {}", old.name())));
    }
    if cand.id == old.id {
        problems.push(Problem::new(
            cand.name(),
            "candidate",
            format!("{} is already the primary", cand.name()),
            status,
        ));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Plan {
        old: old.host,
        candidate: cand.host,
        auto: o.to == "auto",
        siblings: inv
            .hosts
            .iter()
            .filter(|h| h.name != old.name() && h.name != cand.name())
            .collect(),
        stop_timeout: inv.timeouts.start,
        promote_timeout: inv.timeouts.promote,
    })
}

/// More segments than this waiting to be archived on the primary refuse a switchover: its clean
/// shutdown would wait for all of them (`status` warns from the same number).
pub use crate::pg::state::ARCHIVE_BACKLOG_MAX;

/// The primary's archiver, when it would hold the clean shutdown up: failing (its last attempt
/// failed), or far behind ([`ARCHIVE_BACKLOG_MAX`]). Pure.
pub fn archiver_problem(old: &Host, a: &Archiver) -> Option<Problem> {
    if a.mode == "off" || !(a.failing || a.ready > ARCHIVE_BACKLOG_MAX) {
        return None;
    }
    let why = if a.failing {
        format!(
            "{}'s WAL archiver is failing ({} failed attempts, the last on {} at {}; last success: {})",
            old.name,
            a.failed_count,
            a.last_failed_wal.as_deref().unwrap_or("?"),
            a.last_failed_time.as_deref().unwrap_or("?"),
            a.last_archived_time.as_deref().unwrap_or("never")
        )
    } else {
        format!(
            "{} WAL segments wait to be archived on {}",
            a.ready, old.name
        )
    };
    Some(Problem::new(
        &old.name,
        "archiver",
        format!("{why}: a clean shutdown waits for archive_command, so the switchover could hang with no primary"),
        format!(
            "fix archive_command (its errors are in {}'s server log, {}) or let the archiver catch up (pg_stat_archiver), then re-run",
            old.name, old.log_file
        ),
    ))
}

/// The candidate: the named host, or with `auto` the standby streaming from the primary with
/// the least WAL left to replay, delayed replicas left out.
fn choose<'t, 'i>(
    topo: &'t Topology<'i>,
    old: &Node<'i>,
    to: &str,
    inv_path: &str,
) -> Result<&'t Node<'i>, Problem> {
    if to != "auto" {
        return topo.find(to).ok_or_else(|| {
            Problem::new(
                to,
                "candidate",
                format!("{to} is not a host of {inv_path}"),
                format!(
                    "use one of: {}",
                    topo.nodes
                        .iter()
                        .map(|n| n.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        });
    }
    // A delayed replica (apply_delay) is never chosen for the DBA.
    topo.standbys()
        .filter(|n| topo.streams_from(n, old) && n.host.apply_delay.is_none())
        .min_by_key(|n| topo.behind_bytes(n).unwrap_or(u64::MAX))
        .ok_or_else(|| {
            Problem::new(
                old.name(),
                "candidate",
                "no replica without apply_delay streams from the primary".into(),
                format!("pgrepl -i {inv_path} status"),
            )
        })
}

/// What stops the candidate from taking over now.
fn candidate_problems(
    topo: &Topology<'_>,
    old: &Node<'_>,
    c: &Node<'_>,
    t: &Thresholds,
    inv_path: &str,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    let (cn, pn) = (c.name(), old.name());
    if let Some(d) = c.host.apply_delay {
        // Its replay trails by the delay: the switchover would wait for it past every deadline.
        problems.push(Problem::new(
            cn,
            "candidate",
            format!("{cn} is a delayed replica (apply_delay {d}s): it replays the old primary's last WAL only after its delay"),
            format!("switch over to a replica without apply_delay (pgrepl -i {inv_path} switchover --to auto)"),
        ));
    }
    let Some(cs) = c.live().filter(|s| s.in_recovery) else {
        problems.push(Problem::new(
            cn,
            "candidate",
            format!("{cn} is not a standby"),
            format!("pgrepl -i {inv_path} status"),
        ));
        return problems;
    };
    if !topo.streams_from(c, old) {
        let row = topo.sender_row(c);
        problems.push(Problem::new(
            cn,
            "candidate",
            format!(
                "{cn} does not stream from the primary {pn} (upstream {}, state {})",
                topo.upstream_of(c).map(|u| u.name()).unwrap_or("none"),
                row.map(|r| r.state.as_str()).unwrap_or("none")
            ),
            format!("pgrepl -i {inv_path} status"),
        ));
    }
    let behind = topo.behind_bytes(c).unwrap_or(u64::MAX);
    if behind > t.lag_warning_bytes {
        problems.push(Problem::new(
            cn,
            "lag",
            format!(
                "{cn} is {behind} bytes behind {pn} (the limit is status.lag_warning_bytes, {})",
                t.lag_warning_bytes
            ),
            "wait for it to catch up (pgrepl status --wait), or choose another candidate".into(),
        ));
    }
    if cs.replay_paused {
        problems.push(Problem::new(
            cn,
            "replay",
            format!("WAL replay is paused on {cn}"),
            format!("resume it on {cn}: SELECT pg_wal_replay_resume()"),
        ));
    }
    let need = topo.nodes.len().saturating_sub(1) as i32;
    if cs.max_wal_senders < need || cs.max_replication_slots < need {
        problems.push(Problem::new(cn, "capacity", format!("{cn} has max_wal_senders {} and max_replication_slots {}; {need} hosts will follow it", cs.max_wal_senders, cs.max_replication_slots), format!("raise them (pgrepl init -i {inv_path} renders enough) and restart {cn}")));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::state::NodeState;
    use crate::topology::fixtures::*;
    use crate::topology::Probe;

    fn opts(to: &str) -> Options {
        Options {
            to: to.into(),
            dry_run: true,
        }
    }

    fn healthy() -> Vec<Probe> {
        vec![
            up(primary("0/5000000", &["r1", "r2"])),
            up(standby("0/5000000")),
            up(standby("0/4FFFF00")),
        ]
    }

    fn refused(probes: Vec<Probe>, to: &str) -> Vec<(String, String)> {
        let inv = inventory();
        let topo = Topology::discover(&inv, probes);
        preflight(&topo, &Thresholds::default(), &opts(to), None)
            .expect_err("refused")
            .into_iter()
            .map(|p| (p.host, p.check))
            .collect()
    }

    fn pair(h: &str, c: &str) -> (String, String) {
        (h.into(), c.into())
    }

    fn with(mut probes: Vec<Probe>, i: usize, f: impl FnOnce(&mut NodeState)) -> Vec<Probe> {
        f(probes[i].state.as_mut().expect("up"));
        probes
    }

    #[test]
    fn plans_every_step_in_order() {
        let inv = inventory();
        let topo = Topology::discover(&inv, healthy());
        let plan = preflight(&topo, &Thresholds::default(), &opts("r1"), None).expect("plan");
        let text = plan.describe();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 7);
        assert_eq!(lines[0], "1. CHECKPOINT on p");
        assert!(lines[1].starts_with("2. stop p (fast): ") && lines[1].contains("pg_ctl stop"));
        assert!(lines[4].starts_with("5. promote r1"));
        assert_eq!(
            lines[6],
            "7. point r2 at r1; verify every replica streams on the new timeline"
        );
    }

    #[test]
    fn auto_picks_the_most_caught_up_standby_streaming_from_the_primary() {
        let inv = inventory();
        let probes = with(healthy(), 2, |s| {
            s.replay_lsn = crate::pg::Lsn::parse("0/5000000")
        });
        let probes = with(probes, 1, |s| {
            s.replay_lsn = crate::pg::Lsn::parse("0/4000000")
        });
        let topo = Topology::discover(&inv, probes);
        let plan = preflight(&topo, &Thresholds::default(), &opts("auto"), None).expect("plan");
        assert_eq!(plan.candidate.name, "r2");
        assert!(plan.auto);
    }

    #[test]
    fn refuses_an_unreachable_node() {
        let probes = vec![
            up(primary("0/5000000", &["r1"])),
            up(standby("0/5000000")),
            down("gone"),
        ];
        assert_eq!(refused(probes, "r1"), [pair("r2", "reachable")]);
    }

    #[test]
    fn refuses_without_exactly_one_primary() {
        let probes = vec![
            up(standby("0/5000000")),
            up(standby("0/5000000")),
            up(standby("0/5000000")),
        ];
        assert_eq!(refused(probes, "r1"), [pair("c", "primary")]);
        let probes = vec![
            up(primary("0/5000000", &[])),
            up(primary("0/5000000", &[])),
            up(standby("0/5000000")),
        ];
        assert_eq!(refused(probes, "r2"), [pair("c", "primary")]);
    }

    #[test]
    fn refuses_an_unknown_candidate_and_auto_without_a_streaming_standby() {
        assert_eq!(refused(healthy(), "nope"), [pair("nope", "candidate")]);
        let probes = vec![
            up(primary("0/5000000", &[])),
            up(standby("0/5000000")),
            up(standby("0/5000000")),
        ];
        assert_eq!(refused(probes, "auto"), [pair("p", "candidate")]);
    }

    #[test]
    fn refuses_the_primary_itself() {
        assert_eq!(
            refused(healthy(), "p"),
            [pair("p", "candidate"), pair("p", "candidate")]
        );
    }

    #[test]
    fn refuses_a_candidate_that_does_not_stream_from_the_primary() {
        let probes = vec![
            up(primary("0/5000000", &["r2"])),
            up(standby("0/5000000")),
            up(standby("0/5000000")),
        ];
        assert_eq!(refused(probes, "r1"), [pair("r1", "candidate")]);
    }

    #[test]
    fn refuses_a_lagging_candidate() {
        let probes = with(healthy(), 1, |s| {
            s.replay_lsn = crate::pg::Lsn::parse("0/1000000")
        });
        assert_eq!(refused(probes, "r1"), [pair("r1", "lag")]);
    }

    #[test]
    fn refuses_paused_replay() {
        let probes = with(healthy(), 1, |s| s.replay_paused = true);
        assert_eq!(refused(probes, "r1"), [pair("r1", "replay")]);
    }

    #[test]
    fn refuses_a_candidate_without_senders_or_slots_for_its_followers() {
        let probes = with(healthy(), 1, |s| s.max_wal_senders = 1);
        assert_eq!(refused(probes, "r1"), [pair("r1", "capacity")]);
    }

    #[test]
    fn refuses_an_old_primary_that_could_not_be_rewound() {
        let probes = with(healthy(), 0, |s| s.rewindable = false);
        assert_eq!(refused(probes, "r1"), [pair("p", "rewind")]);
    }

    #[test]
    fn refuses_a_failing_or_far_behind_archiver() {
        let inv = crate::topology::fixtures::inventory();
        let p = inv.primary();
        let mut a = Archiver {
            mode: "on".into(),
            failed_count: 3,
            last_failed_wal: Some("000000010000000000000003".into()),
            last_failed_time: Some("2026-11-30 14:00:00+00".into()),
            failing: true,
            ..Archiver::default()
        };
        let pr = archiver_problem(p, &a).expect("refused");
        assert!(
            pr.message
                .starts_with("p's WAL archiver is failing (3 failed attempts, the last on 000000010000000000000003"),
            "{}",
            pr.message
        );
        a.failing = false;
        assert!(archiver_problem(p, &a).is_none());
        a.ready = ARCHIVE_BACKLOG_MAX + 1;
        assert!(archiver_problem(p, &a).is_some());
        a.mode = "off".into();
        assert!(archiver_problem(p, &a).is_none());
        // Through the preflight.
        let a = Archiver {
            mode: "on".into(),
            failing: true,
            ..Archiver::default()
        };
        let topo = Topology::discover(&inv, healthy());
        let err = preflight(&topo, &Thresholds::default(), &opts("r1"), Some(&a)).unwrap_err();
        assert!(err.iter().any(|p| p.check == "archiver"), "{err:?}");
    }
}
