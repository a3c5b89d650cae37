//! Replication modes on real clusters over SSH (issue "replication modes"): synchronous quorum
//! with safe failover under a write probe, a synchronous cluster with every standby down,
//! switchover there and back keeping the rule, a delayed replica never chosen, and a replica
//! whose slot was invalidated coming back through the WAL archive without a clone.

use std::time::{Duration, Instant};

use crate::harness::{json_doc, Lab};
use crate::switchover::{missing_on, ProbeRun};

const ROLES: &[(&str, &str, Option<&str>)] = &[
    ("p", "primary", None),
    ("r1", "replica", None),
    ("r2", "replica", None),
];

/// The lab's inventory with `replication_extra` under `replication:`, `host_extra` (name →
/// lines) under hosts, `top` appended; the probe's role admitted from the runner.
fn inventory(lab: &Lab, replication_extra: &str, host_extra: &[(&str, &str)], top: &str) -> String {
    let rule = format!(
        "{{type: host, database: postgres, user: probe, address: {}/32, method: scram-sha-256}}",
        lab.runner_address()
    );
    let path = lab.ssh_inventory_full(ROLES, "", false, &[rule]);
    let mut text = std::fs::read_to_string(&path).unwrap();
    text = text.replace(
        "replication:\n  user: replicator\n",
        &format!("replication:\n  user: replicator\n{replication_extra}"),
    );
    for (name, lines) in host_extra {
        let at = format!("  - name: {name}\n");
        let i = text.find(&at).unwrap() + at.len();
        let j = text[i..].find("    role: ").unwrap() + i;
        let end = text[j..].find('\n').unwrap() + j + 1;
        text.insert_str(end, lines);
    }
    text.push_str(top);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

fn with_probe_table(lab: &Lab) {
    lab.psql("p", "CREATE ROLE probe LOGIN PASSWORD 'probe-pw'; CREATE TABLE probe_ids(id bigint PRIMARY KEY, at timestamptz DEFAULT clock_timestamp()); GRANT SELECT, INSERT ON probe_ids TO probe");
}

const ANY1: &str = "  synchronous: {method: any, count: 1}\n";

/// Synchronous quorum ANY 1 over r1, r2; the probe writing; kill -9 of the primary; the
/// candidate pgrepl accepts is promoted: no acknowledged write is lost. The other standby is
/// refused when it is behind.
#[test]
fn any_1_kill9_promote_loses_no_acknowledged_write() {
    let lab = Lab::new(&["p", "r1", "r2"]);
    let inv = inventory(&lab, ANY1, &[], "");
    let r = lab.pgrepl(&["-i", &inv, "init"]);
    r.expect_code(0);
    assert!(
        r.stderr
            .contains("synchronous replication enabled: ANY 1 (\"r1\", \"r2\")"),
        "{}",
        r.stderr
    );
    assert_eq!(
        lab.psql("p", "SHOW synchronous_standby_names"),
        "ANY 1 (\"r1\", \"r2\")"
    );
    assert_eq!(
        lab.psql("r1", "SHOW synchronous_standby_names"),
        "ANY 1 (\"p\", \"r2\")"
    );
    assert_eq!(
        lab.psql(
            "p",
            "SELECT string_agg(sync_state, ',' ORDER BY application_name) FROM pg_stat_replication"
        ),
        "quorum,quorum"
    );
    with_probe_table(&lab);
    let probe = ProbeRun::start(&lab);
    probe.wait_for_acks(200);
    lab.kill9_postmaster("p");
    let acked = probe.ids();

    // Whichever standby pgrepl proves complete is promoted; the other one is refused (exit 4)
    // when it is behind.
    let mut r = lab.pgrepl(&["-i", &inv, "promote", "r1", "--yes"]);
    let mut new = "r1";
    if r.code == 4 {
        assert!(
            r.stderr.contains("r2 has more WAL than r1") || r.stderr.contains("promote r2"),
            "{}",
            r.stderr
        );
        r = lab.pgrepl(&["-i", &inv, "promote", "r2", "--yes"]);
        new = "r2";
    }
    r.expect_code(0);
    assert_eq!(
        missing_on(&lab, new, &acked),
        0,
        "acknowledged writes lost after promoting {new}"
    );
    // The rule is in force on the new primary at once (the other standby follows it).
    let other = if new == "r1" { "r2" } else { "r1" };
    assert_eq!(
        lab.psql(new, "SHOW synchronous_standby_names"),
        format!("ANY 1 (\"p\", \"{other}\")")
    );
    drop(probe);
}

/// With one synchronous standby stopped before the crash, neither remaining standby can be
/// proven complete: promote refuses (exit 4, naming the rule) and goes ahead only with
/// --allow-data-loss.
#[test]
fn promote_refuses_a_candidate_not_provably_complete() {
    let lab = Lab::new(&["p", "r1", "r2"]);
    let inv = inventory(&lab, ANY1, &[], "");
    lab.pgrepl(&["-i", &inv, "init"]).expect_code(0);
    lab.psql("p", "CREATE TABLE t(id int); INSERT INTO t VALUES (1)");
    lab.stop_server("r2");
    lab.kill9_postmaster("p");
    let r = lab.pgrepl(&["-i", &inv, "promote", "r1", "--yes"]);
    r.expect_code(4);
    assert!(
        r.stderr
            .contains("only 1 of the 2 synchronous standbys of p"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("--allow-data-loss"), "{}", r.stderr);
    assert_eq!(
        lab.psql("r1", "SELECT pg_is_in_recovery()"),
        "t",
        "nothing changed"
    );
    lab.pgrepl(&["-i", &inv, "promote", "r1", "--yes", "--allow-data-loss"])
        .expect_code(0);
    assert_eq!(lab.psql("r1", "SELECT pg_is_in_recovery()"), "f");
}

/// Every synchronous standby down: status is critical (sync_standbys_missing) and names the
/// fix; an init that must create a role on the primary meanwhile does not hang (pgrepl's own
/// commits are local) and brings the standbys back.
#[test]
fn every_synchronous_standby_down_is_critical_and_nothing_hangs() {
    let lab = Lab::new(&["p", "r1", "r2"]);
    let inv = inventory(&lab, ANY1, &[], "");
    lab.pgrepl(&["-i", &inv, "init"]).expect_code(0);
    lab.stop_server("r1");
    lab.stop_server("r2");
    let r = lab.pgrepl(&["-i", &inv, "status", "--format", "json"]);
    r.expect_code(11);
    let v = json_doc(&r.stdout);
    let f: Vec<&serde_json::Value> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "sync_standbys_missing")
        .collect();
    assert_eq!(f.len(), 1, "{v}");
    assert_eq!(f[0]["severity"], "critical");
    assert!(
        f[0]["message"]
            .as_str()
            .unwrap()
            .contains("0 of the 1 synchronous standbys"),
        "{v}"
    );

    // A new application role: CREATE ROLE on a primary whose rule no standby meets.
    let mut text = std::fs::read_to_string(&inv).unwrap();
    text.push_str("roles:\n  - {name: app, password_env: APP_PW}\n");
    std::fs::write(&inv, text).unwrap();
    let t0 = Instant::now();
    let r = crate::harness::pgrepl(&["-i", &inv, "init", "--yes"], &[("APP_PW", "app-secret")]);
    r.expect_code(0);
    assert!(
        t0.elapsed() < Duration::from_secs(120),
        "init took {:?}",
        t0.elapsed()
    );
    assert!(r.stderr.contains("created role app"), "{}", r.stderr);
    lab.pgrepl(&["-i", &inv, "status", "--wait", "30"])
        .expect_code(0);
}

/// A switchover there and back under the probe and ANY 1: nothing lost, and the rule holds on
/// the new primary (its commits are acknowledged by a standby in the quorum).
#[test]
fn switchover_there_and_back_keeps_the_synchronous_rule() {
    let lab = Lab::new(&["p", "r1", "r2"]);
    let inv = inventory(&lab, ANY1, &[], "");
    lab.pgrepl(&["-i", &inv, "init"]).expect_code(0);
    with_probe_table(&lab);
    let probe = ProbeRun::start(&lab);
    lab.pgrepl(&["-i", &inv, "switchover", "r1", "--yes"])
        .expect_code(0);
    probe.wait_for_acks(100);
    assert_eq!(
        lab.psql("r1", "SHOW synchronous_standby_names"),
        "ANY 1 (\"p\", \"r2\")"
    );
    crate::harness::wait_for(
        "a quorum standby streams from r1",
        Duration::from_secs(30),
        || {
            lab.psql("r1", "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'quorum' AND state = 'streaming'") != "0"
        },
    );
    lab.pgrepl(&["-i", &inv, "switchover", "p", "--yes"])
        .expect_code(0);
    probe.wait_for_acks(100);
    let acked = probe.ids();
    assert_eq!(missing_on(&lab, "p", &acked), 0);
    assert_eq!(
        lab.psql("p", "SHOW synchronous_standby_names"),
        "ANY 1 (\"r1\", \"r2\")"
    );
}

/// A delayed replica (apply_delay) is skipped by `switchover --to auto`, left out of
/// no_primary's advice, and refused by promote without --allow-delayed; status shows its delay.
#[test]
fn a_delayed_replica_is_never_chosen() {
    let lab = Lab::new(&["p", "r1", "r2"]);
    let inv = inventory(&lab, "", &[("r1", "    apply_delay: 1h\n")], "");
    lab.pgrepl(&["-i", &inv, "init"]).expect_code(0);
    assert_eq!(lab.psql("r1", "SHOW recovery_min_apply_delay"), "1h");
    let r = lab.pgrepl(&[
        "-i",
        &inv,
        "switchover",
        "--to",
        "auto",
        "--dry-run",
        "--format",
        "json",
    ]);
    r.expect_code(0);
    assert_eq!(json_doc(&r.stdout)["new_primary"], "r2", "{}", r.stdout);
    let r = lab.pgrepl(&["-i", &inv, "status", "--format", "json"]);
    let v = json_doc(&r.stdout);
    let r1 = v["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["host"] == "r1")
        .cloned()
        .unwrap();
    assert_eq!(r1["apply_delay_seconds"], 3600, "{v}");
    assert!(lab.pgrepl(&["-i", &inv, "status"]).stdout.contains("3600s"));
    lab.psql("p", "CREATE TABLE d(id int); INSERT INTO d VALUES (1)");
    lab.kill9_postmaster("p");
    let r = lab.pgrepl(&["-i", &inv, "status", "--format", "json"]);
    let v = json_doc(&r.stdout);
    let np = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "no_primary")
        .cloned()
        .unwrap_or_default();
    assert!(
        np["fix"].as_str().unwrap_or("").contains("promote r2"),
        "{v}"
    );
    let r = lab.pgrepl(&["-i", &inv, "promote", "r1", "--yes"]);
    r.expect_code(4);
    assert!(
        r.stderr
            .contains("r1 is a delayed replica (apply_delay 3600s)"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("--allow-delayed"), "{}", r.stderr);
}

/// Archiving to a directory; a replica stopped while its slot is invalidated
/// (max_slot_wal_keep_size 1MB) comes back through restore_command with no clone.
#[test]
fn a_replica_past_its_lost_slot_catches_up_from_the_archive() {
    let lab = Lab::new(&["p", "r1", "r2"]);
    let archive = lab.dir.join("archive");
    std::fs::create_dir_all(&archive).unwrap();
    crate::harness::sh(&[
        "chown",
        &format!("{}:", lab.os_user),
        archive.to_str().unwrap(),
    ]);
    let a = archive.display();
    let top = format!("archive:\n  command: 'test ! -f {a}/%f && cp %p {a}/%f'\n  restore_command: 'cp {a}/%f %p'\n");
    let inv = inventory(&lab, "", &[], &top);
    lab.pgrepl(&["-i", &inv, "init"]).expect_code(0);
    assert_eq!(lab.psql("p", "SHOW archive_mode"), "on");
    assert!(lab.psql("r1", "SHOW restore_command").contains("cp "));
    // Slots keep almost no WAL from here on (set after the clones, which stream through them).
    let inv_text = std::fs::read_to_string(&inv).unwrap().replace(
        "    max_wal_size: 128MB\n",
        "    max_wal_size: 128MB\n    max_slot_wal_keep_size: 1MB\n    wal_keep_size: '0'\n",
    );
    std::fs::write(&inv, inv_text).unwrap();
    lab.pgrepl(&["-i", &inv, "init"]).expect_code(0);
    lab.stop_server("r1");
    lab.psql("p", "CREATE TABLE big(x text)");
    for _ in 0..4 {
        lab.psql("p", "INSERT INTO big SELECT repeat('x', 1000) FROM generate_series(1, 20000); SELECT pg_switch_wal()");
    }
    lab.psql("p", "CHECKPOINT");
    crate::harness::wait_for("r1's slot invalidated", Duration::from_secs(60), || {
        lab.psql(
            "p",
            "SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'r1'",
        ) == "lost"
    });
    let r = lab.pgrepl(&["-i", &inv, "init", "--format", "json"]);
    r.expect_code(0);
    let changes = json_doc(&r.stdout)["changes"].to_string();
    assert!(!changes.contains("clone"), "{changes}");
    lab.pgrepl(&["-i", &inv, "status", "--wait", "60"])
        .expect_code(0);
    lab.wait_replayed("p", &["r1"]);
    assert_eq!(lab.psql("r1", "SELECT count(*) FROM big"), "80000");
}
