//! The pure preflight of `init` (and all of `check`): from the inventory and the facts gathered
//! on every host, either every problem that stops `init` (each with its host, check and next
//! command) or the plan. No I/O; it never overwrites data: a data directory is initdb'd or
//! cloned into only when it is absent or empty.

use std::collections::BTreeMap;

use crate::error::Problem;
use crate::inventory::{Host, Inventory};
use crate::pg::datadir::DirState;
use crate::steps::facts::HostFacts;

use super::hostchecks;
use super::plan::{HostPlan, InitPlan};

/// What the replicas are checked against: the primary as preflight found it.
#[derive(Debug, Clone, Copy, Default)]
struct PrimaryFound<'f> {
    /// Its data directory is blank: it is about to be created, no replica can belong to it yet.
    is_new: bool,
    /// The system identifier of the existing primary, when known.
    system_identifier: Option<&'f str>,
}

/// Decides what `init` does on each host and in which order, or lists every problem that stops
/// it: per host (reachable, server binaries of the inventory's version, data directory of that
/// major), then the primary's data directory, then each replica's, in inventory order.
///
/// `facts` holds one entry per inventory host (as `steps::facts::gather` returns them).
pub fn preflight(inv: &Inventory, facts: &[HostFacts]) -> Result<InitPlan, Vec<Problem>> {
    let mut problems: Vec<Problem> = facts
        .iter()
        .filter_map(|f| Some(host_problems(inv, inv.host(&f.name)?, f)))
        .chain(
            facts
                .iter()
                .filter_map(|f| Some(hostchecks::dirs_problems(inv, inv.host(&f.name)?, f))),
        )
        .flatten()
        .collect();
    problems.extend(hostchecks::settings_problems(inv, facts));
    problems.extend(hostchecks::hba_name_problems(inv, facts));
    let by_name: BTreeMap<&str, &HostFacts> = facts.iter().map(|f| (f.name.as_str(), f)).collect();
    let reached = |name: &str| {
        by_name
            .get(name)
            .copied()
            .filter(|f| matches!(f.reach, Some(Ok(_))))
    };
    let mut hosts = BTreeMap::new();
    let primary = inv.primary();
    let mut found = PrimaryFound::default();
    if let Some(pf) = reached(&primary.name) {
        match decide_primary(primary, pf) {
            Ok((plan, f)) => {
                hosts.insert(primary.name.clone(), plan);
                found = f;
            }
            Err(p) => problems.push(p),
        }
    }
    for r in inv.replicas() {
        let Some(rf) = reached(&r.name) else {
            continue;
        };
        match decide_replica(inv, r, rf, found) {
            Ok(plan) => {
                hosts.insert(r.name.clone(), plan);
            }
            Err(p) => problems.push(p),
        }
    }
    for h in &inv.hosts {
        if !hosts.contains_key(&h.name) && !problems.iter().any(|p| p.host == h.name) {
            problems.push(problem(
                &h.name,
                "reachable",
                format!("no facts were gathered from {}", h.name),
                None,
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let running = inv
        .hosts
        .iter()
        .filter(|h| by_name.get(h.name.as_str()).is_some_and(|f| f.running))
        .map(|h| h.name.clone())
        .collect();
    Ok(InitPlan::build(inv, hosts, running))
}

pub(super) fn problem(host: &str, check: &str, message: String, hint: Option<String>) -> Problem {
    Problem {
        host: host.to_string(),
        check: check.to_string(),
        message,
        hint,
    }
}

/// The checks of one host on its own: reachable (else nothing more is checked), server
/// binaries of the inventory's version, a data directory of the inventory's major.
fn host_problems(inv: &Inventory, h: &Host, f: &HostFacts) -> Vec<Problem> {
    match &f.reach {
        Some(Ok(_)) => {}
        Some(Err(e)) => {
            return vec![problem(
                &h.name,
                "reachable",
                e.clone(),
                Some(format!(
                    "check that {} is up and that you can log in: ssh -p {} {}@{}",
                    h.name, h.ssh_port, inv.ssh.user, h.ssh_host
                )),
            )]
        }
        None => return Vec::new(),
    }
    binaries_problem(inv, h, f)
        .into_iter()
        .chain(major_problem(inv, h, f))
        .collect()
}

/// Server binaries missing, or of another major than the inventory's.
fn binaries_problem(inv: &Inventory, h: &Host, f: &HostFacts) -> Option<Problem> {
    match f.binaries.as_ref()? {
        Ok(v) if *v == inv.version => None,
        Ok(v) => Some(problem(
            &h.name,
            "binaries",
            format!(
                "{}/postgres is PostgreSQL {v}, the inventory says {}",
                h.bin_dir, inv.version
            ),
            Some(format!(
                "install PostgreSQL {} or set postgres.bin_dir / hosts[].bin_dir",
                inv.version
            )),
        )),
        Err(e) => Some(problem(
            &h.name,
            "binaries",
            format!("no PostgreSQL server binaries in {}: {e}", h.bin_dir),
            Some(format!(
                "install postgresql-{} (apt-get install postgresql-{}) or set bin_dir",
                inv.version, inv.version
            )),
        )),
    }
}

/// A data directory of another major than the inventory's.
fn major_problem(inv: &Inventory, h: &Host, f: &HostFacts) -> Option<Problem> {
    let Some(DirState::PgData { major: Some(m), .. }) = &f.data_dir else {
        return None;
    };
    (*m != inv.version).then(|| {
        problem(
            &h.name,
            "data_dir",
            format!(
                "{} holds a PostgreSQL {m} cluster, the inventory says {}",
                h.data_dir, inv.version
            ),
            Some("upgrade it with pg_upgrade first, or point data_dir elsewhere".into()),
        )
    })
}

/// The primary: initdb into a blank data directory, keep a primary (not a standby, not in
/// recovery); anything else is refused.
fn decide_primary<'f>(h: &Host, f: &'f HostFacts) -> Result<(HostPlan, PrimaryFound<'f>), Problem> {
    match &f.data_dir {
        Some(d) if d.is_blank() => Ok((
            HostPlan::Initdb,
            PrimaryFound {
                is_new: true,
                system_identifier: None,
            },
        )),
        Some(DirState::PgData { standby: false, .. }) if f.in_recovery != Some(true) => Ok((
            HostPlan::KeepPrimary,
            PrimaryFound {
                is_new: false,
                system_identifier: f.system_identifier.as_deref(),
            },
        )),
        Some(DirState::PgData { .. }) => Err(problem(
            &h.name,
            "data_dir",
            format!(
                "{} is a standby, but the inventory makes {} the primary",
                h.data_dir, h.name
            ),
            Some(
                "mark the live primary role: primary in the inventory (pgrepl status shows who it is)"
                    .into(),
            ),
        )),
        Some(other) => Err(dir_problem(&h.name, &h.data_dir, other)),
        None => Err(unknown_dir_problem(h)),
    }
}

/// A replica: clone into a blank data directory, keep a standby of this primary (same system
/// identifier); any other data is refused, with the `rebuild` command as the way out.
fn decide_replica(
    inv: &Inventory,
    r: &Host,
    f: &HostFacts,
    primary: PrimaryFound<'_>,
) -> Result<HostPlan, Problem> {
    let standby = match &f.data_dir {
        Some(d) if d.is_blank() => return Ok(HostPlan::Clone),
        Some(DirState::PgData { standby, .. }) => *standby,
        Some(other) => return Err(dir_problem(&r.name, &r.data_dir, other)),
        None => return Err(unknown_dir_problem(r)),
    };
    let same = !primary.is_new
        && standby
        && f.system_identifier.is_some()
        && f.system_identifier.as_deref() == primary.system_identifier;
    if same {
        return Ok(HostPlan::KeepReplica);
    }
    let what = if !standby {
        "a server that is not a standby".to_string()
    } else if primary.is_new {
        "a standby, but the primary is about to be created new".to_string()
    } else {
        format!(
            "a standby of another cluster (system identifier {}, the primary's is {})",
            f.system_identifier.as_deref().unwrap_or("unknown"),
            primary.system_identifier.unwrap_or("unknown")
        )
    };
    Err(problem(
        &r.name,
        "data_dir",
        format!("{} holds {what}; init never overwrites it", r.data_dir),
        Some(format!(
            "if its data is not needed, rebuild it as a replica (the old data is kept until the copy streams): pgrepl -i {} rebuild {}",
            inv.file.display(),
            r.name
        )),
    ))
}

/// A data directory that is neither blank nor PostgreSQL's: what is wrong and how to fix it.
fn dir_problem(host: &str, dir: &str, state: &DirState) -> Problem {
    let (message, hint) = match state {
        DirState::Absent { .. } => (
            format!("{dir} does not exist and the directory that holds it is not writable by the PostgreSQL OS user (pgrepl keeps its password file, server log, lock and clone staging there)"),
            format!("create that directory for the OS user: install -d -o postgres -m 0750 {}", parent_of(dir)),
        ),
        DirState::NotADirectory => (
            format!("{dir} exists and is not a directory"),
            "point data_dir at a directory".into(),
        ),
        DirState::Unreadable => (
            format!("{dir} cannot be read by the PostgreSQL OS user"),
            format!("chown -R postgres {dir}; chmod 0700 {dir}"),
        ),
        _ => (
            format!("{dir} holds files that are not a PostgreSQL data directory; init never overwrites them"),
            format!("move them aside (mv {dir} {dir}.old) or point data_dir elsewhere"),
        ),
    };
    problem(host, "data_dir", message, Some(hint))
}

/// The probe of the data directory answered something pgrepl does not understand.
fn unknown_dir_problem(h: &Host) -> Problem {
    problem(
        &h.name,
        "data_dir",
        format!("cannot tell what {} holds", h.data_dir),
        Some(format!("look at it on {}: ls -la {}", h.name, h.data_dir)),
    )
}

/// The directory that holds `path` (`/` for a top-level one).
pub(super) fn parent_of(path: &str) -> &str {
    match path.trim_end_matches('/').rsplit_once('/') {
        Some(("", _)) | None => "/",
        Some((p, _)) => p,
    }
}
