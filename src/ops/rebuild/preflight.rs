//! `rebuild`'s preflight, pure and in two stages: from the live `Topology`, the primary to
//! rebuild from (never touching a writable node); then, from what pgrepl found on the host
//! itself (`HostFacts`), the method — pg_rewind when its preconditions hold, a clone otherwise —
//! and the plan of named steps. No I/O; every refusal is unit-tested below.

use std::fmt;

use crate::error::Problem;
use crate::inventory::{Host, Inventory};
use crate::pg::datadir::{self, DirState};
use crate::topology::{Node, Topology};

use super::{Method, Options};

/// What pgrepl found on the host to rebuild, through its transport.
#[derive(Debug, Clone)]
pub struct HostFacts {
    /// Why the host cannot be reached, if it cannot.
    pub unreachable: Option<String>,
    /// What its data directory holds (`None`: could not tell).
    pub dir: Option<DirState>,
    /// Its server runs (`pg_ctl status`).
    pub running: bool,
    /// Why pg_rewind is not possible there (`None`: it is).
    pub rewind_blocker: Option<String>,
}

/// The rebuild pgrepl will carry out. Hosts are those of the inventory as it stands with the
/// live primary as primary (what the configuration is rendered from).
#[derive(Debug, Clone)]
pub struct Plan<'e> {
    /// The host to rebuild.
    pub host: &'e Host,
    /// Its upstream: it streams from there, and its slot lives there.
    pub upstream: &'e Host,
    /// The live primary (pg_rewind's source must be writable).
    pub primary: &'e Host,
    /// Rewind or Clone (never Auto).
    pub method: Method,
    /// Why that method.
    pub reason: String,
    /// A failed rewind falls back to a clone (`--method auto`).
    pub fallback: bool,
    /// Its server runs now: stop it (and prove it down) first.
    pub running: bool,
    /// Keep `<data_dir>.pgrepl-old` after a clone.
    pub keep_old: bool,
}

/// One named step of a rebuild.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Stop the server and prove it down.
    Stop,
    /// Install the password file.
    PasswordFile,
    /// Ensure the replica's slot on its upstream.
    Slot,
    /// pg_rewind against the live primary (dry run first).
    Rewind,
    /// A fresh clone through a staging directory.
    Clone,
    /// Start as a standby and verify it streams with its slot active.
    Join,
    /// Drop slots it kept from its past.
    DropStaleSlots,
    /// Remove the replaced data directory.
    RemoveOldCopy,
}

impl<'e> Plan<'e> {
    /// The steps in order.
    pub fn steps(&self) -> Vec<Step> {
        let mut v = Vec::new();
        if self.running {
            v.push(Step::Stop);
        }
        v.extend([Step::PasswordFile, Step::Slot]);
        v.push(match self.method {
            Method::Rewind => Step::Rewind,
            _ => Step::Clone,
        });
        v.extend([Step::Join, Step::DropStaleSlots]);
        if self.method == Method::Clone && !self.keep_old {
            v.push(Step::RemoveOldCopy);
        }
        v
    }

    /// What the DBA confirms.
    pub fn describe(&self) -> String {
        let (h, up) = (self.host, self.upstream);
        let what = match self.method {
            Method::Rewind => format!(
                "rewind {} on {} to follow {}{}",
                h.data_dir,
                h.name,
                up.name,
                if self.fallback {
                    " (falls back to a fresh clone if the rewind fails)"
                } else {
                    ""
                }
            ),
            _ => format!("replace {} on {} with a fresh clone of {} (the old data is kept in {} until the new replica streams)", h.data_dir, h.name, up.name, datadir::old_dir(&h.data_dir)),
        };
        let server = if self.running {
            "its server will be stopped"
        } else {
            "its server is stopped"
        };
        format!("{what}; {server}")
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Stop => "stop the server and prove it down",
            Step::PasswordFile => "install the password file",
            Step::Slot => "ensure its slot on its upstream",
            Step::Rewind => "pg_rewind from the primary (a dry run first)",
            Step::Clone => "clone through a staging directory",
            Step::Join => "start as a standby; verify it streams",
            Step::DropStaleSlots => "drop stale slots",
            Step::RemoveOldCopy => "remove the old copy",
        })
    }
}

/// Stage 1: the live primary to rebuild `o.host` from. Refuses a writable target, no other
/// writable node, or more than one.
pub fn source<'t, 'i>(topo: &'t Topology<'i>, o: &Options) -> Result<&'t Node<'i>, Vec<Problem>> {
    let inv_path = topo.inv.file.display().to_string();
    let writable: Vec<&Node<'i>> = topo.writable().collect();
    let mut problems = Vec::new();
    if let Some(t) = writable.iter().find(|n| n.name() == o.host) {
        let h = t.host;
        problems.push(Problem::new(
            &o.host,
            "target",
            format!(
                "{} accepts writes: rebuild never touches a writable node{}",
                o.host,
                if writable.len() > 1 {
                    " (and more than one node accepts writes: split-brain)"
                } else {
                    ""
                }
            ),
            format!(
                "if {} is a stale primary, stop it first: {}; then re-run rebuild",
                o.host,
                crate::health::fixes::Fixes::new(topo.inv).pg_ctl_stop(h)
            ),
        ));
    }
    let others: Vec<&Node<'i>> = writable
        .into_iter()
        .filter(|n| n.name() != o.host)
        .collect();
    match others.as_slice() {
        [p] if problems.is_empty() => return Ok(p),
        [_] => {}
        [] => problems.push(Problem::new(
            &o.host,
            "primary",
            "no other node accepts writes: there is nothing to rebuild from".into(),
            format!("promote a replica first: pgrepl -i {inv_path} promote <replica>"),
        )),
        many => problems.push(Problem::new(
            &o.host,
            "primary",
            format!(
                "several nodes accept writes ({}): split-brain",
                many.iter().map(|n| n.name()).collect::<Vec<_>>().join(", ")
            ),
            "stop every writable node but one first (pgrepl status shows how)".into(),
        )),
    }
    Err(problems)
}

/// Stage 2: the plan, from the inventory with the live primary as primary (`eff`), the live
/// topology and what pgrepl found on the host. Refuses an unqueryable upstream, an unreachable
/// host, a data directory holding foreign files, and `--method rewind` when pg_rewind is not
/// possible.
pub fn plan<'e>(
    eff: &'e Inventory,
    topo: &Topology<'_>,
    facts: &HostFacts,
    o: &Options,
) -> Result<Plan<'e>, Vec<Problem>> {
    let inv_path = eff.file.display().to_string();
    let refuse = |host: &str, check: &str, message: String, hint: String| {
        Err(vec![Problem::new(host, check, message, hint)])
    };
    let (Some(h), Some(primary)) = (
        eff.host(&o.host),
        eff.hosts
            .iter()
            .find(|h| h.role == crate::inventory::Role::Primary),
    ) else {
        return refuse(
            &o.host,
            "host",
            format!("{} is not a host of {inv_path}", o.host),
            "pgrepl status shows the hosts".into(),
        );
    };
    let up = eff.upstream_of(h).unwrap_or(primary);
    if !topo.find(&up.name).is_some_and(|n| n.reachable()) {
        return refuse(
            &up.name,
            "upstream",
            format!("{}'s upstream {} cannot be queried", h.name, up.name),
            format!("pgrepl -i {inv_path} status"),
        );
    }
    if let Some(e) = &facts.unreachable {
        return refuse(
            &h.name,
            "reachable",
            e.clone(),
            "rebuild needs to reach the host itself".into(),
        );
    }
    if matches!(
        facts.dir,
        Some(DirState::Other | DirState::NotADirectory | DirState::Unreadable)
    ) {
        return refuse(&h.name, "data_dir", format!("{} holds files that are not a PostgreSQL data directory; rebuild never replaces them", h.data_dir), format!("move them aside yourself (mv {dir} {dir}.saved on {}), then re-run rebuild", h.name, dir = h.data_dir));
    }
    let (method, reason) = match (o.method, &facts.rewind_blocker) {
        (Method::Clone, _) => (Method::Clone, "--method clone".to_string()),
        (Method::Rewind, Some(b)) => {
            return refuse(
                &h.name,
                "rewind",
                format!("pg_rewind is not possible: {b}"),
                format!("pgrepl -i {inv_path} rebuild {} --method clone", h.name),
            );
        }
        (_, None) => (
            Method::Rewind,
            "data checksums or wal_log_hints are on and the data directory is intact".to_string(),
        ),
        (Method::Auto, Some(b)) => (Method::Clone, format!("pg_rewind is not possible: {b}")),
    };
    Ok(Plan {
        host: h,
        upstream: up,
        primary,
        method,
        reason,
        fallback: o.method == Method::Auto,
        running: facts.running,
        keep_old: o.keep_old,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::fixtures::*;
    use crate::topology::Probe;

    fn opts(host: &str, method: Method) -> Options {
        Options {
            host: host.into(),
            method,
            keep_old: false,
        }
    }

    fn facts() -> HostFacts {
        HostFacts {
            unreachable: None,
            dir: Some(DirState::PgData {
                major: Some(15),
                standby: false,
            }),
            running: false,
            rewind_blocker: None,
        }
    }

    fn checks(r: Vec<Problem>) -> Vec<(String, String)> {
        r.into_iter().map(|p| (p.host, p.check)).collect()
    }

    fn pair(h: &str, c: &str) -> (String, String) {
        (h.into(), c.into())
    }

    fn stage1(probes: Vec<Probe>, host: &str) -> Vec<(String, String)> {
        let inv = inventory();
        let topo = Topology::discover(&inv, probes);
        checks(source(&topo, &opts(host, Method::Auto)).expect_err("refused"))
    }

    type Checks = Vec<(String, String)>;

    fn stage2(f: HostFacts, o: Options, up_reachable: bool) -> Result<(Method, Vec<Step>), Checks> {
        let inv = inventory();
        let probes = vec![
            if up_reachable {
                up(primary("0/5000000", &["r2"]))
            } else {
                down("gone")
            },
            down("stopped"),
            up(standby("0/5000000")),
        ];
        let topo = Topology::discover(&inv, probes);
        let eff = inv.with_primary("p");
        plan(&eff, &topo, &f, &o)
            .map(|p| (p.method, p.steps()))
            .map_err(checks)
    }

    #[test]
    fn never_touches_a_writable_node() {
        let probes = vec![
            up(primary("0/5000000", &[])),
            up(primary("0/5000000", &[])),
            up(standby("0/5000000")),
        ];
        assert_eq!(stage1(probes, "r1"), [pair("r1", "target")]);
        let probes = vec![
            up(primary("0/5000000", &[])),
            up(standby("0/5000000")),
            up(standby("0/5000000")),
        ];
        assert_eq!(
            stage1(probes, "p"),
            [pair("p", "target"), pair("p", "primary")]
        );
    }

    #[test]
    fn refuses_without_exactly_one_other_primary() {
        let probes = vec![
            down("gone"),
            up(standby("0/5000000")),
            up(standby("0/5000000")),
        ];
        assert_eq!(stage1(probes, "r1"), [pair("r1", "primary")]);
        let probes = vec![
            up(primary("0/5000000", &[])),
            down("gone"),
            up(primary("0/5000000", &[])),
        ];
        assert_eq!(stage1(probes, "r1"), [pair("r1", "primary")]);
    }

    #[test]
    fn refuses_an_unqueryable_upstream_or_an_unreachable_host() {
        let got = stage2(facts(), opts("r1", Method::Auto), false).unwrap_err();
        assert_eq!(got, [pair("p", "upstream")]);
        let f = HostFacts {
            unreachable: Some("ssh: connection refused".into()),
            ..facts()
        };
        assert_eq!(
            stage2(f, opts("r1", Method::Auto), true).unwrap_err(),
            [pair("r1", "reachable")]
        );
    }

    #[test]
    fn never_replaces_foreign_files() {
        for dir in [
            DirState::Other,
            DirState::NotADirectory,
            DirState::Unreadable,
        ] {
            let f = HostFacts {
                dir: Some(dir),
                ..facts()
            };
            assert_eq!(
                stage2(f, opts("r1", Method::Clone), true).unwrap_err(),
                [pair("r1", "data_dir")]
            );
        }
    }

    #[test]
    fn rewind_when_possible_clone_otherwise() {
        let (m, steps) = stage2(facts(), opts("r1", Method::Auto), true).unwrap();
        assert_eq!(m, Method::Rewind);
        assert_eq!(
            steps,
            [
                Step::PasswordFile,
                Step::Slot,
                Step::Rewind,
                Step::Join,
                Step::DropStaleSlots
            ]
        );
        let blocked = HostFacts {
            rewind_blocker: Some("no checksums".into()),
            running: true,
            ..facts()
        };
        let (m, steps) = stage2(blocked.clone(), opts("r1", Method::Auto), true).unwrap();
        assert_eq!(m, Method::Clone);
        assert_eq!(steps.first(), Some(&Step::Stop));
        assert_eq!(steps.last(), Some(&Step::RemoveOldCopy));
        assert_eq!(
            stage2(blocked, opts("r1", Method::Rewind), true).unwrap_err(),
            [pair("r1", "rewind")]
        );
        let (m, _) = stage2(facts(), opts("r1", Method::Clone), true).unwrap();
        assert_eq!(m, Method::Clone);
    }
}
