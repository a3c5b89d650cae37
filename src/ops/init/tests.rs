//! Unit tests of `init`'s preflight and plan, without a server: the facts are built by hand.

#[cfg(test)]
use std::collections::BTreeMap;

use crate::error::Problem;
use crate::inventory::Inventory;
use crate::pg::datadir::DirState;
use crate::steps::facts::HostFacts;

use super::plan::{HostPlan, InitPlan, InitStep};
use super::preflight;

const FLAT: &str = "cluster: c\npostgres: {version: 15}\nreplication: {password_env: X}\nhosts:\n  - {name: p, address: 10.0.0.1, role: primary}\n  - {name: r1, address: 10.0.0.2, role: replica}\n  - {name: r2, address: 10.0.0.3, role: replica}\n";

const CASCADE: &str = "cluster: c\npostgres: {version: 15}\nreplication: {password_env: X}\nhosts:\n  - {name: p, address: 10.0.0.1, role: primary}\n  - {name: r1, address: 10.0.0.2, role: replica}\n  - {name: r2, address: 10.0.0.3, role: replica, upstream: r1}\n";

fn inv() -> Inventory {
    parse(FLAT)
}

fn parse(text: &str) -> Inventory {
    crate::inventory::parse(text, std::path::Path::new("i.yml")).unwrap()
}

fn pg(standby: bool) -> DirState {
    DirState::PgData {
        major: Some(15),
        standby,
    }
}

/// A reachable host with PostgreSQL 15 binaries; running when it has a system identifier.
fn fact(name: &str, dir: DirState, sysid: Option<&str>) -> HostFacts {
    HostFacts {
        name: name.into(),
        reach: Some(Ok("local".into())),
        binaries: Some(Ok(15)),
        data_dir: Some(dir),
        running: sysid.is_some(),
        system_identifier: sysid.map(Into::into),
        in_recovery: None,
        ..HostFacts::default()
    }
}

fn fresh() -> Vec<HostFacts> {
    vec![
        fact("p", DirState::Empty, None),
        fact(
            "r1",
            DirState::Absent {
                parent_writable: true,
            },
            None,
        ),
        fact("r2", DirState::Empty, None),
    ]
}

fn healthy() -> Vec<HostFacts> {
    let mut f = vec![
        fact("p", pg(false), Some("7")),
        fact("r1", pg(true), Some("7")),
        fact("r2", pg(true), Some("7")),
    ];
    f[0].in_recovery = Some(false);
    f[1].in_recovery = Some(true);
    f[2].in_recovery = Some(true);
    f
}

/// The only problem preflight finds (it must find exactly one).
fn refusal(inv: &Inventory, facts: &[HostFacts]) -> Problem {
    let e = preflight(inv, facts).unwrap_err();
    assert_eq!(e.len(), 1, "{e:?}");
    e.into_iter().next().unwrap()
}

/// The plan as one word per step (a wave's replica steps inside brackets), without the TLS
/// steps (every host's first: [`tls_files_come_before_each_hosts_configuration`]).
fn outline(plan: &InitPlan) -> Vec<String> {
    fn word(s: &InitStep) -> String {
        match s {
            InitStep::TlsFiles { host } => format!("tls {host}"),
            InitStep::Initdb { host } => format!("initdb {host}"),
            InitStep::Configure {
                host,
                running,
                restart,
            } => format!(
                "{} {host}{}",
                if *running { "apply" } else { "start" },
                if restart.is_empty() { "" } else { " (restart)" }
            ),
            InitStep::PasswordFile { host } => format!("passfile {host}"),
            InitStep::Roles { primary, .. } => format!("roles {primary}"),
            InitStep::Routers { names } => format!("routers {}", names.join(",")),
            InitStep::Slots { upstream, replicas } => {
                let r: Vec<String> = replicas
                    .iter()
                    .map(|s| format!("{}{}", s.slot, if s.clone { "*" } else { "" }))
                    .collect();
                format!("slots {upstream}: {}", r.join(" "))
            }
            InitStep::Wave { number, replicas } => {
                let lanes: Vec<String> = replicas
                    .iter()
                    .map(|l| {
                        l.steps
                            .iter()
                            .filter(|s| !matches!(s, InitStep::TlsFiles { .. }))
                            .map(word)
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .collect();
                format!("wave {number} [{}]", lanes.join(" | "))
            }
            InitStep::Clone { host, upstream } => format!("clone {host} from {upstream}"),
            InitStep::VerifyStreaming { primary, replicas } => {
                format!("verify {primary} {replicas}")
            }
        }
    }
    plan.steps
        .iter()
        .filter(|s| !matches!(s, InitStep::TlsFiles { .. }))
        .map(word)
        .collect()
}

#[test]
fn tls_files_come_before_each_hosts_configuration() {
    let inv = crate::inventory::parse(
        "cluster: c\npostgres: {version: 15}\nreplication: {password_env: X}\nhosts:\n  - {name: p, address: 10.0.0.1, role: primary}\n  - {name: r1, address: 10.0.0.2, role: replica}\n",
        std::path::Path::new("i.yml"),
    )
    .unwrap();
    let hosts = [("p", HostPlan::Initdb), ("r1", HostPlan::Clone)]
        .into_iter()
        .map(|(h, p)| (h.to_string(), p))
        .collect();
    let plan = InitPlan::build(&inv, hosts, Vec::new());
    let text = plan.to_string();
    let at = |s: &str| text.find(s).unwrap_or_else(|| panic!("{s} not in\n{text}"));
    assert!(at("p: TLS files") < at("p: install configuration files"));
    assert!(at("r1: TLS files") < at("r1: clone from p"));
    let mut off = inv.clone();
    off.tls = crate::inventory::Tls::Off;
    let hosts = [("p", HostPlan::Initdb), ("r1", HostPlan::Clone)]
        .into_iter()
        .map(|(h, p)| (h.to_string(), p))
        .collect();
    assert!(!InitPlan::build(&off, hosts, Vec::new())
        .to_string()
        .contains("TLS"));
}

// --- refusals ---

#[test]
fn unreachable_host_is_refused_and_not_checked_further() {
    let mut f = fresh();
    f[1].reach = Some(Err("connection refused".into()));
    f[1].binaries = Some(Ok(14));
    let p = refusal(&inv(), &f);
    assert_eq!((p.host.as_str(), p.check.as_str()), ("r1", "reachable"));
    assert_eq!(p.message, "connection refused");
    assert!(
        p.hint
            .as_deref()
            .unwrap()
            .starts_with("check that r1 is up and that you can log in: ssh -p 22 "),
        "{p:?}"
    );
}

#[test]
fn binaries_of_another_version_are_refused() {
    let mut f = fresh();
    f[0].binaries = Some(Ok(14));
    let p = refusal(&inv(), &f);
    assert_eq!((p.host.as_str(), p.check.as_str()), ("p", "binaries"));
    assert!(
        p.message
            .ends_with("/postgres is PostgreSQL 14, the inventory says 15"),
        "{}",
        p.message
    );
    assert_eq!(
        p.hint.as_deref(),
        Some("install PostgreSQL 15 or set postgres.bin_dir / hosts[].bin_dir")
    );
}

#[test]
fn missing_binaries_are_refused() {
    let mut f = fresh();
    f[2].binaries = Some(Err("No such file or directory".into()));
    let p = refusal(&inv(), &f);
    assert_eq!((p.host.as_str(), p.check.as_str()), ("r2", "binaries"));
    assert!(p.message.starts_with("no PostgreSQL server binaries in "));
    assert!(p.message.ends_with(": No such file or directory"));
    assert_eq!(
        p.hint.as_deref(),
        Some("install postgresql-15 (apt-get install postgresql-15) or set bin_dir")
    );
}

#[test]
fn data_dir_of_another_major_is_refused() {
    let mut f = healthy();
    f[1].data_dir = Some(DirState::PgData {
        major: Some(14),
        standby: true,
    });
    let p = refusal(&inv(), &f);
    assert_eq!((p.host.as_str(), p.check.as_str()), ("r1", "data_dir"));
    assert!(p
        .message
        .ends_with(" holds a PostgreSQL 14 cluster, the inventory says 15"));
    assert!(p.hint.as_deref().unwrap().contains("pg_upgrade"));
}

#[test]
fn primary_data_dir_that_is_a_standby_is_refused() {
    let mut f = healthy();
    f[0].data_dir = Some(pg(true));
    let e = preflight(&inv(), &f).unwrap_err();
    // With no primary of this cluster, its standbys are refused as well (after it).
    assert_eq!(e.len(), 3, "{e:?}");
    assert!(e[1].message.contains("the primary's is unknown"), "{e:?}");
    let p = &e[0];
    assert_eq!((p.host.as_str(), p.check.as_str()), ("p", "data_dir"));
    assert!(
        p.message
            .ends_with(" is a standby, but the inventory makes p the primary"),
        "{}",
        p.message
    );
    assert!(p.hint.as_deref().unwrap().contains("role: primary"));
}

#[test]
fn primary_in_recovery_is_refused_even_without_standby_signal() {
    let mut f = healthy();
    f[0].in_recovery = Some(true);
    let p = &preflight(&inv(), &f).unwrap_err()[0];
    assert_eq!((p.host.as_str(), p.check.as_str()), ("p", "data_dir"));
    assert!(p.message.contains("is a standby"));
}

#[test]
fn data_dirs_that_are_not_postgresql_are_refused_with_their_fix() {
    let cases = [
        (
            DirState::Other,
            "holds files that are not a PostgreSQL data directory; init never overwrites them",
            "move them aside (mv ",
        ),
        (
            DirState::Absent {
                parent_writable: false,
            },
            "does not exist and the directory that holds it is not writable by the PostgreSQL OS user (pgrepl keeps its password file, server log, lock and clone staging there)",
            "create that directory for the OS user: install -d -o postgres -m 0750 /var/lib/postgresql/15",
        ),
        (
            DirState::NotADirectory,
            "exists and is not a directory",
            "point data_dir at a directory",
        ),
        (
            DirState::Unreadable,
            "cannot be read by the PostgreSQL OS user",
            "chown -R postgres ",
        ),
    ];
    for (state, message, hint) in cases {
        for host in [0, 2] {
            let mut f = fresh();
            f[host].data_dir = Some(state.clone());
            let p = refusal(&inv(), &f);
            assert_eq!(p.host, f[host].name);
            assert_eq!(p.check, "data_dir");
            assert!(p.message.ends_with(message), "{state:?}: {}", p.message);
            assert!(p.hint.as_deref().unwrap().starts_with(hint), "{p:?}");
        }
    }
}

#[test]
fn data_dir_that_cannot_be_told_is_refused() {
    let mut f = fresh();
    f[1].data_dir = None;
    let p = refusal(&inv(), &f);
    assert_eq!((p.host.as_str(), p.check.as_str()), ("r1", "data_dir"));
    assert!(p.message.starts_with("cannot tell what "));
}

#[test]
fn replica_of_another_cluster_is_refused_with_rebuild() {
    let mut f = healthy();
    f[1].system_identifier = Some("8".into());
    let p = refusal(&inv(), &f);
    assert_eq!((p.host.as_str(), p.check.as_str()), ("r1", "data_dir"));
    assert!(
        p.message.ends_with(
            " holds a standby of another cluster (system identifier 8, the primary's is 7); init never overwrites it"
        ),
        "{}",
        p.message
    );
    assert_eq!(
        p.hint.as_deref(),
        Some("if its data is not needed, rebuild it as a replica (the old data is kept until the copy streams): pgrepl -i i.yml rebuild r1")
    );
}

#[test]
fn replica_with_unknown_system_identifier_is_refused() {
    let mut f = healthy();
    f[2].system_identifier = None;
    let p = refusal(&inv(), &f);
    assert_eq!(p.host, "r2");
    assert!(p
        .message
        .contains("(system identifier unknown, the primary's is 7)"));
}

#[test]
fn replica_that_is_not_a_standby_is_refused() {
    let mut f = healthy();
    f[2].data_dir = Some(pg(false));
    let p = refusal(&inv(), &f);
    assert_eq!(p.host, "r2");
    assert!(p
        .message
        .ends_with(" holds a server that is not a standby; init never overwrites it"));
}

#[test]
fn standby_beside_a_new_primary_is_refused() {
    let mut f = fresh();
    f[1] = fact("r1", pg(true), Some("7"));
    let p = refusal(&inv(), &f);
    assert_eq!(p.host, "r1");
    assert!(p
        .message
        .contains("a standby, but the primary is about to be created new"));
}

#[test]
fn host_without_facts_is_refused_not_skipped() {
    let mut f = fresh();
    f[2].reach = None;
    let p = refusal(&inv(), &f);
    assert_eq!((p.host.as_str(), p.check.as_str()), ("r2", "reachable"));
}

#[test]
fn every_problem_is_listed_in_order() {
    let mut f = healthy();
    f[0].binaries = Some(Ok(14));
    f[1].system_identifier = Some("8".into());
    f[2] = fact("r2", DirState::Other, None);
    f[2].binaries = Some(Ok(14));
    let e = preflight(&inv(), &f).unwrap_err();
    let got: Vec<(&str, &str)> = e
        .iter()
        .map(|p| (p.host.as_str(), p.check.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("p", "binaries"),
            ("r2", "binaries"),
            ("r1", "data_dir"),
            ("r2", "data_dir")
        ]
    );
}

// --- plans ---

#[test]
fn fresh_cluster_plan() {
    let plan = preflight(&inv(), &fresh()).unwrap();
    assert_eq!(
        plan.hosts,
        BTreeMap::from([
            ("p".to_string(), HostPlan::Initdb),
            ("r1".to_string(), HostPlan::Clone),
            ("r2".to_string(), HostPlan::Clone),
        ])
    );
    assert!(plan.running.is_empty());
    assert_eq!(
        outline(&plan),
        [
            "initdb p",
            "start p",
            "passfile p",
            "roles p",
            "slots p: r1* r2*",
            "wave 1 [passfile r1, clone r1 from p, start r1 | passfile r2, clone r2 from p, start r2]",
            "verify p 2",
        ]
    );
}

#[test]
fn healthy_cluster_rerun_plan_keeps_everything() {
    let plan = preflight(&inv(), &healthy()).unwrap();
    assert_eq!(plan.running, ["p", "r1", "r2"]);
    assert!(plan
        .hosts
        .values()
        .all(|p| matches!(p, HostPlan::KeepPrimary | HostPlan::KeepReplica)));
    assert_eq!(
        outline(&plan),
        [
            "apply p",
            "passfile p",
            "roles p",
            "slots p: r1 r2",
            "wave 1 [passfile r1, apply r1 | passfile r2, apply r2]",
            "verify p 2",
        ]
    );
    assert_eq!(plan.restart_prompt(), None);
}

#[test]
fn cluster_with_one_replica_missing_clones_only_it() {
    let mut f = healthy();
    f[2] = fact("r2", DirState::Empty, None);
    let plan = preflight(&inv(), &f).unwrap();
    assert_eq!(plan.hosts["r2"], HostPlan::Clone);
    assert_eq!(plan.running, ["p", "r1"]);
    assert_eq!(
        outline(&plan),
        [
            "apply p",
            "passfile p",
            "roles p",
            "slots p: r1 r2*",
            "wave 1 [passfile r1, apply r1 | passfile r2, clone r2 from p, start r2]",
            "verify p 2",
        ]
    );
}

#[test]
fn stopped_servers_are_started_not_reloaded() {
    let mut f = healthy();
    for x in &mut f {
        x.running = false;
        x.in_recovery = None;
    }
    let plan = preflight(&inv(), &f).unwrap();
    assert!(plan.running.is_empty());
    assert_eq!(outline(&plan)[0], "start p");
    assert_eq!(
        outline(&plan)[4],
        "wave 1 [passfile r1, start r1 | passfile r2, start r2]"
    );
}

#[test]
fn cascading_replicas_come_in_waves_with_slots_on_their_upstream() {
    let plan = preflight(&parse(CASCADE), &fresh()).unwrap();
    assert_eq!(
        outline(&plan)[4..],
        [
            "slots p: r1*",
            "wave 1 [passfile r1, clone r1 from p, start r1]",
            "slots r1: r2*",
            "wave 2 [passfile r2, clone r2 from r1, start r2]",
            "verify p 2",
        ]
    );
}

#[test]
fn restarts_reach_their_configure_steps_and_the_prompt() {
    let mut plan = preflight(&inv(), &healthy()).unwrap();
    plan.set_restarts(BTreeMap::from([
        ("r2".to_string(), vec!["shared_buffers".to_string()]),
        (
            "p".to_string(),
            vec!["max_connections".to_string(), "shared_buffers".to_string()],
        ),
        ("r1".to_string(), vec![]),
    ]));
    assert_eq!(
        outline(&plan),
        [
            "apply p (restart)",
            "passfile p",
            "roles p",
            "slots p: r1 r2",
            "wave 1 [passfile r1, apply r1 | passfile r2, apply r2 (restart)]",
            "verify p 2",
        ]
    );
    assert_eq!(
        plan.restart_prompt().as_deref(),
        Some("restart running servers whose restart-only settings changed: p (max_connections, shared_buffers); r2 (shared_buffers)")
    );
}

#[test]
fn plan_displays_one_line_per_step() {
    let inv = inv();
    let mut f = healthy();
    f[2] = fact("r2", DirState::Empty, None);
    let mut plan = preflight(&inv, &f).unwrap();
    plan.set_restarts(BTreeMap::from([(
        "r1".to_string(),
        vec!["shared_buffers".to_string()],
    )]));
    let (ru, wu, mu) = (&inv.replication_user, &inv.rewind_user, &inv.monitor_user);
    let (s1, s2) = (&inv.host("r1").unwrap().slot, &inv.host("r2").unwrap().slot);
    let tls =
        "TLS files (CA bundle, server certificate and key; issued when missing or no longer valid)";
    assert_eq!(
        plan.to_string(),
        format!(
            "p: {tls}\n\
             p: install configuration files, reload if any changed\n\
             p: password file\n\
             p: roles {ru} (LOGIN REPLICATION), {wu} (LOGIN), {mu} (LOGIN, pg_monitor)\n\
             p: replication slots {s1} for r1, {s2} for r2\n\
             wave 1, in parallel:\n\
             \x20 r1: {tls}\n\
             \x20 r1: password file\n\
             \x20 r1: install configuration files, restart PostgreSQL (shared_buffers)\n\
             \x20 r2: {tls}\n\
             \x20 r2: password file\n\
             \x20 r2: clone from p (pg_basebackup into a staging directory)\n\
             \x20 r2: install configuration files, start PostgreSQL\n\
             p: verify 2 replica(s) streaming, every slot active\n"
        )
    );
    let fresh = preflight(&inv, &fresh()).unwrap().to_string();
    assert!(
        fresh.starts_with(
            "p: initdb (data checksums on)\np: TLS files (CA bundle, server certificate and key; issued when missing or no longer valid)\np: install configuration files, start PostgreSQL\n"
        ),
        "{fresh}"
    );
}

/// Raised hot-standby settings: the standbys that can restart first are moved before the
/// primary's configuration step, out of their waves.
#[test]
fn standbys_first_moves_their_configure_before_the_primary() {
    let inv = inv();
    let hosts: BTreeMap<String, HostPlan> = [
        ("p".to_string(), HostPlan::KeepPrimary),
        ("r1".to_string(), HostPlan::KeepReplica),
        ("r2".to_string(), HostPlan::KeepReplica),
    ]
    .into();
    let running = vec!["p".to_string(), "r1".to_string(), "r2".to_string()];
    let mut plan = InitPlan::build(&inv, hosts, running);
    let all = ["p", "r1", "r2"].map(|h| (h.to_string(), vec!["max_connections".to_string()]));
    plan.set_restarts(all.into());
    plan.standbys_first(&["r1".to_string()].into());
    let text = plan.to_string();
    let r1 = text
        .find("r1: install configuration files, restart")
        .unwrap();
    let p = text
        .find("p: install configuration files, restart")
        .unwrap();
    let r2 = text
        .find("r2: install configuration files, restart")
        .unwrap();
    assert!(r1 < p && p < r2, "{text}");
    assert_eq!(
        text.matches("r1: install configuration").count(),
        1,
        "{text}"
    );
}
