//! The pure model of what pgrepl found on the hosts and what `init` will do with each of them.
//! No I/O: the facts come in from `ops`, the plan or the list of problems goes out.

use std::collections::BTreeMap;

use crate::error::Problem;
use crate::inventory::{Inventory, Role};
use crate::pg::datadir::DirState;

/// What preflight learned about one host.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct HostFacts {
    pub name: String,
    /// How the host was reached (`ssh postgres@…`, `local`), or why it could not be.
    pub reach: Option<Result<String, String>>,
    /// Major version of the installed server binaries, or why it is unknown.
    pub binaries: Option<Result<u32, String>>,
    pub data_dir: Option<DirState>,
    pub running: bool,
    pub system_identifier: Option<String>,
    pub in_recovery: Option<bool>,
}

/// What `init` does with one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
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

fn problem(host: &str, check: &str, message: String, hint: Option<String>) -> Problem {
    Problem {
        host: host.to_string(),
        check: check.to_string(),
        message,
        hint,
    }
}

/// Decides what init does on each host, or lists every problem that stops it.
pub fn plan_init(
    inv: &Inventory,
    facts: &[HostFacts],
) -> Result<BTreeMap<String, HostPlan>, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut plan = BTreeMap::new();
    let by_name: BTreeMap<&str, &HostFacts> = facts.iter().map(|f| (f.name.as_str(), f)).collect();

    for f in facts {
        let h = inv
            .host(&f.name)
            .expect("facts are gathered for inventory hosts");
        match &f.reach {
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                problems.push(problem(
                    &h.name,
                    "reachable",
                    e.clone(),
                    Some(format!(
                        "check that {} is up and that you can log in: ssh -p {} {}@{}",
                        h.name, h.ssh_port, inv.ssh.user, h.ssh_host
                    )),
                ));
                continue;
            }
            None => continue,
        }
        match &f.binaries {
            Some(Ok(v)) if *v == inv.version => {}
            Some(Ok(v)) => problems.push(problem(
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
            Some(Err(e)) => problems.push(problem(
                &h.name,
                "binaries",
                format!("no PostgreSQL server binaries in {}: {e}", h.bin_dir),
                Some(format!(
                    "install postgresql-{} (apt-get install postgresql-{}) or set bin_dir",
                    inv.version, inv.version
                )),
            )),
            None => {}
        }
        if let Some(DirState::PgData { major: Some(m), .. }) = &f.data_dir {
            if *m != inv.version {
                problems.push(problem(
                    &h.name,
                    "data_dir",
                    format!(
                        "{} holds a PostgreSQL {m} cluster, the inventory says {}",
                        h.data_dir, inv.version
                    ),
                    Some("upgrade it with pg_upgrade first, or point data_dir elsewhere".into()),
                ));
            }
        }
    }

    let primary = inv.primary();
    let pf = by_name.get(primary.name.as_str()).copied();
    let mut primary_sysid: Option<&str> = None;
    let mut primary_is_new = false;
    if let Some(pf) = pf.filter(|f| matches!(f.reach, Some(Ok(_)))) {
        match &pf.data_dir {
            Some(d) if d.is_blank() => {
                plan.insert(primary.name.clone(), HostPlan::Initdb);
                primary_is_new = true;
            }
            Some(DirState::PgData { standby: false, .. }) if pf.in_recovery != Some(true) => {
                plan.insert(primary.name.clone(), HostPlan::KeepPrimary);
                primary_sysid = pf.system_identifier.as_deref();
            }
            Some(DirState::PgData { .. }) => problems.push(problem(
                &primary.name,
                "data_dir",
                format!("{} is a standby, but the inventory makes {} the primary", primary.data_dir, primary.name),
                Some("mark the live primary role: primary in the inventory (pgrepl status shows who it is)".into()),
            )),
            Some(other) => problems.push(dir_problem(&primary.name, &primary.data_dir, other)),
            None => {}
        }
    }

    for r in inv.replicas() {
        let Some(rf) = by_name
            .get(r.name.as_str())
            .copied()
            .filter(|f| matches!(f.reach, Some(Ok(_))))
        else {
            continue;
        };
        match &rf.data_dir {
            Some(d) if d.is_blank() => {
                plan.insert(r.name.clone(), HostPlan::Clone);
            }
            Some(DirState::PgData { standby, .. }) => {
                let same = !primary_is_new
                    && *standby
                    && rf.system_identifier.is_some()
                    && rf.system_identifier.as_deref() == primary_sysid;
                if same {
                    plan.insert(r.name.clone(), HostPlan::KeepReplica);
                } else {
                    let what = if !standby {
                        "a server that is not a standby".to_string()
                    } else if primary_is_new {
                        "a standby, but the primary is about to be created new".to_string()
                    } else {
                        format!(
                            "a standby of another cluster (system identifier {}, the primary's is {})",
                            rf.system_identifier.as_deref().unwrap_or("unknown"),
                            primary_sysid.unwrap_or("unknown")
                        )
                    };
                    problems.push(problem(
                        &r.name,
                        "data_dir",
                        format!("{} holds {what}; init never overwrites it", r.data_dir),
                        Some(format!(
                            "if its data is not needed, rebuild it as a replica (the old data is kept until the copy streams): pgrepl -i {} rebuild {}",
                            inv.file.display(),
                            r.name
                        )),
                    ));
                }
            }
            Some(other) => problems.push(dir_problem(&r.name, &r.data_dir, other)),
            None => {}
        }
    }

    if problems.is_empty() {
        Ok(plan)
    } else {
        Err(problems)
    }
}

fn dir_problem(host: &str, dir: &str, state: &DirState) -> Problem {
    let (message, hint) = match state {
        DirState::Absent { .. } => (format!("{dir} does not exist and its parent is not writable by the PostgreSQL OS user"), format!("create it: install -d -o postgres -m 0700 {dir}")),
        DirState::NotADirectory => (format!("{dir} exists and is not a directory"), "point data_dir at a directory".into()),
        DirState::Unreadable => (format!("{dir} cannot be read by the PostgreSQL OS user"), format!("chown -R postgres {dir}; chmod 0700 {dir}")),
        _ => (format!("{dir} holds files that are not a PostgreSQL data directory; init never overwrites them"), format!("move them aside (mv {dir} {dir}.old) or point data_dir elsewhere")),
    };
    problem(host, "data_dir", message, Some(hint))
}

/// Is a given role the live one? (`in_recovery` false means primary.)
pub fn live_role(in_recovery: Option<bool>) -> Option<Role> {
    in_recovery.map(|r| if r { Role::Replica } else { Role::Primary })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv() -> Inventory {
        crate::inventory::parse(
            "cluster: c\npostgres: {version: 15}\nreplication: {password_env: X}\nhosts:\n  - {name: p, address: 10.0.0.1, role: primary}\n  - {name: r1, address: 10.0.0.2, role: replica}\n  - {name: r2, address: 10.0.0.3, role: replica}\n",
            std::path::Path::new("i.yml"),
        )
        .unwrap()
    }

    fn fact(name: &str, dir: DirState, sysid: Option<&str>) -> HostFacts {
        HostFacts {
            name: name.into(),
            reach: Some(Ok("local".into())),
            binaries: Some(Ok(15)),
            data_dir: Some(dir),
            running: sysid.is_some(),
            system_identifier: sysid.map(Into::into),
            in_recovery: None,
        }
    }

    #[test]
    fn fresh_cluster() {
        let f = vec![
            fact("p", DirState::Empty, None),
            fact(
                "r1",
                DirState::Absent {
                    parent_writable: true,
                },
                None,
            ),
            fact("r2", DirState::Empty, None),
        ];
        let p = plan_init(&inv(), &f).unwrap();
        assert_eq!(p["p"], HostPlan::Initdb);
        assert_eq!(p["r1"], HostPlan::Clone);
    }

    #[test]
    fn existing_cluster_is_kept() {
        let pg = |standby| DirState::PgData {
            major: Some(15),
            standby,
        };
        let f = vec![
            fact("p", pg(false), Some("7")),
            fact("r1", pg(true), Some("7")),
            fact("r2", DirState::Empty, None),
        ];
        let p = plan_init(&inv(), &f).unwrap();
        assert_eq!(
            (p["p"], p["r1"], p["r2"]),
            (
                HostPlan::KeepPrimary,
                HostPlan::KeepReplica,
                HostPlan::Clone
            )
        );
    }

    #[test]
    fn foreign_data_is_never_overwritten_and_all_problems_are_listed() {
        let pg = |standby| DirState::PgData {
            major: Some(15),
            standby,
        };
        let mut r2 = fact("r2", DirState::Other, None);
        r2.binaries = Some(Ok(14));
        let f = vec![
            fact("p", pg(false), Some("7")),
            fact("r1", pg(true), Some("8")),
            r2,
        ];
        let e = plan_init(&inv(), &f).unwrap_err();
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e.iter().any(|p| p.host == "r1"
            && p.message.contains("another cluster")
            && p.hint.as_deref().unwrap().contains("rebuild r1")));
        assert!(e.iter().any(|p| p.host == "r2" && p.check == "binaries"));
        assert!(e.iter().any(|p| p.host == "r2" && p.check == "data_dir"));
    }

    #[test]
    fn unreachable_host_is_a_problem() {
        let mut r1 = fact("r1", DirState::Empty, None);
        r1.reach = Some(Err("connection refused".into()));
        let f = vec![
            fact("p", DirState::Empty, None),
            r1,
            fact("r2", DirState::Empty, None),
        ];
        let e = plan_init(&inv(), &f).unwrap_err();
        assert_eq!(e[0].check, "reachable");
    }
}
