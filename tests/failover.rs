//! `pgrepl promote` and `pgrepl rebuild` on real clusters over SSH: failover after a crash with
//! every replicated row kept, fencing, refusals that change nothing, rewind and clone rebuilds.

use std::time::{Duration, Instant};

use crate::harness::{json_doc, Frozen, Lab};

const ROLES: &[(&str, &str, Option<&str>)] = &[
    ("p", "primary", None),
    ("r1", "replica", None),
    ("r2", "replica", None),
];

/// Scenarios 1 and 6: crash, promote, the old primary restarted by hand stays read-only, rebuild by rewind.
#[test]
fn failover_after_crash_then_rebuild_the_old_primary_by_rewind() {
    let lab = Lab::new(&["p", "r1", "r2"]);
    let inv = lab.init(ROLES);
    lab.psql(
        "p",
        "CREATE TABLE f(id int PRIMARY KEY); INSERT INTO f SELECT generate_series(1, 5000)",
    );
    lab.wait_replayed("p", &["r1", "r2"]);
    lab.kill9_postmaster("p");

    let r = lab.pgrepl(&["-i", &inv, "promote", "r1", "--yes", "--format", "json"]);
    r.expect_code(0);
    let v = json_doc(&r.stdout);
    assert_eq!(v["promoted"], "r1");
    assert_eq!(v["old_timeline"], 1);
    assert_eq!(v["new_timeline"], 2);
    assert_eq!(v["siblings_following"], serde_json::json!(["r2"]));
    assert!(r.stderr.contains("p: fenced"), "{}", r.stderr);
    assert!(
        r.stderr.contains("p: role: replica; r1: role: primary"),
        "{}",
        r.stderr
    );

    // r1 writable on timeline 2 with every replicated row; r2 streams from it on timeline 2.
    assert_eq!(lab.psql("r1", "SELECT pg_is_in_recovery()"), "f");
    assert_eq!(lab.psql("r1", "SELECT count(*) FROM f"), "5000");
    lab.psql("r1", "INSERT INTO f VALUES (5001)");
    assert_eq!(
        lab.psql(
            "r1",
            "SELECT application_name || ' ' || state FROM pg_stat_replication"
        ),
        "r2 streaming"
    );
    assert_eq!(
        lab.psql("r2", "SELECT received_tli FROM pg_stat_wal_receiver"),
        "2"
    );
    lab.wait_replayed("r1", &["r2"]);
    assert_eq!(lab.psql("r2", "SELECT count(*) FROM f"), "5001");

    // The crashed old primary is fenced. Rebuild it: by rewind (checksums are on; pgrepl completes
    // its crash recovery first), streaming from r1 on its slot.
    assert!(lab.host("p").data_dir.join("standby.signal").exists());
    let rb = lab.pgrepl(&["-i", &inv, "rebuild", "p", "--yes", "--format", "json"]);
    rb.expect_code(0);
    let v = json_doc(&rb.stdout);
    assert_eq!(v["method"], "rewind", "{}", rb.stderr);
    assert_eq!(v["upstream"], "r1");
    assert!(rb.stderr.contains("pg_rewind --dry-run"), "{}", rb.stderr);
    assert!(
        rb.stderr.contains("completed crash recovery"),
        "{}",
        rb.stderr
    );
    assert_eq!(lab.psql("r1", "SELECT string_agg(application_name || ':' || state, ',' ORDER BY application_name) FROM pg_stat_replication"), "p:streaming,r2:streaming");
    assert_eq!(lab.psql("r1", "SELECT string_agg(slot_name || ':' || active, ',' ORDER BY slot_name) FROM pg_replication_slots"), "p:true,r2:true");
    lab.wait_replayed("r1", &["p"]);
    assert_eq!(lab.psql("p", "SELECT count(*) FROM f"), "5001");

    // promote updated the inventory (roles in place): status is healthy with no edit by hand,
    // and init finds nothing to change.
    let text = std::fs::read_to_string(&inv).unwrap();
    let role_of = |host: &str| {
        let at = text.find(&format!("- name: {host}\n")).unwrap();
        let r = text[at..].find("role: ").unwrap() + at + 6;
        text[r..].split_whitespace().next().unwrap().to_string()
    };
    assert_eq!(
        (role_of("p"), role_of("r1"), role_of("r2")),
        ("replica".into(), "primary".into(), "replica".into()),
        "{text}"
    );
    lab.pgrepl(&["-i", &inv, "status", "--wait", "30"])
        .expect_code(0);
    let again = lab.pgrepl(&["-i", &inv, "init"]);
    again.expect_code(0);
    assert!(
        again.stderr.contains("init: no changes"),
        "{}",
        again.stderr
    );
}

/// Scenario 2: the primary is alive → refused without --force; nothing changed.
#[test]
fn promote_refuses_while_the_primary_runs() {
    let lab = Lab::new(&["p", "r1", "r2"]);
    let inv = lab.init(ROLES);
    let before = lab.snapshot_all();
    let r = lab.pgrepl(&["-i", &inv, "promote", "r1", "--yes"]);
    r.expect_code(4);
    assert!(
        r.stderr.contains("p [fencing]: p is a running primary"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("--force"), "{}", r.stderr);
    assert_eq!(lab.snapshot_all(), before);
    lab.psql("p", "CREATE TABLE still_writable(x int)");
    assert!(!lab.host("p").data_dir.join("standby.signal").exists());

    // With --force: the primary is stopped and proven down, fenced, then r1 is promoted; its
    // clean shutdown let r1 receive everything, so no bytes are lost.
    lab.psql(
        "p",
        "INSERT INTO still_writable SELECT generate_series(1, 1000)",
    );
    let r = lab.pgrepl(&[
        "-i", &inv, "promote", "r1", "--force", "--yes", "--format", "json",
    ]);
    r.expect_code(0);
    let v = json_doc(&r.stdout);
    assert_eq!(v["bytes_maybe_lost"], 0, "{v}");
    assert!(v["old_primary_last_lsn"].is_string(), "{v}");
    assert!(
        r.stderr.contains("p: stopped PostgreSQL") && r.stderr.contains("p: fenced"),
        "{}",
        r.stderr
    );
    assert!(!lab.server_running("p"));
    assert!(lab.host("p").data_dir.join("standby.signal").exists());
    assert_eq!(
        lab.psql("r1", "SELECT count(*) FROM still_writable"),
        "1000"
    );
    assert_eq!(
        lab.psql(
            "r1",
            "SELECT application_name || ' ' || state FROM pg_stat_replication"
        ),
        "r2 streaming"
    );
}

/// Scenario 3: the target is behind another replica → refused, the better candidate named.
#[test]
fn promote_refuses_a_replica_that_is_behind() {
    let lab = Lab::new(&["p", "r1", "r2"]);
    let inv = lab.init(ROLES);
    let frozen = lab.freeze_walreceiver("r1");
    lab.psql(
        "p",
        "CREATE TABLE lag AS SELECT generate_series(1, 10000) AS g",
    );
    lab.wait_replayed("p", &["r2"]);
    lab.kill9_postmaster("p");
    let r = lab.pgrepl(&["-i", &inv, "promote", "r1", "--yes"]);
    r.expect_code(4);
    assert!(
        r.stderr.contains("r1 [candidate]: r2 has WAL up to"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("promote r2") && r.stderr.contains("--allow-data-loss"),
        "{}",
        r.stderr
    );
    drop(frozen);
    assert_eq!(lab.psql("r1", "SELECT pg_is_in_recovery()"), "t");
    assert!(
        !lab.host("p").data_dir.join("standby.signal").exists(),
        "a refused promote fenced a host"
    );

    // Scenario 6: promote the better candidate; the old primary, started again by hand, comes up
    // read-only (fenced), never as a second primary; rebuild then rewinds it from its clean stop.
    lab.pgrepl(&["-i", &inv, "promote", "r2", "--yes"])
        .expect_code(0);
    lab.start_server("p");
    assert_eq!(lab.psql("p", "SELECT pg_is_in_recovery()"), "t");
    let rb = lab.pgrepl(&["-i", &inv, "rebuild", "p", "--yes", "--format", "json"]);
    rb.expect_code(0);
    assert_eq!(json_doc(&rb.stdout)["method"], "rewind", "{}", rb.stderr);
    assert!(
        !rb.stderr.contains("completed crash recovery"),
        "p was stopped cleanly: {}",
        rb.stderr
    );
}

/// Scenario 4: rebuild without a terminal and without --yes → refused at once; nothing changed.
/// Scenario 5: rebuild forced to clone keeps the old data until the new replica streams.
#[test]
fn rebuild_needs_confirmation_and_clones_through_a_staging_directory() {
    let lab = Lab::new(&["p", "r1", "r2"]);
    let inv = lab.init(ROLES);
    let before = lab.snapshot_all();
    let t0 = Instant::now();
    let r = lab.pgrepl(&["-i", &inv, "rebuild", "r2"]);
    r.expect_code(5);
    assert!(t0.elapsed() < Duration::from_secs(15));
    assert!(r.stderr.contains("--yes"), "{}", r.stderr);
    assert_eq!(lab.snapshot_all(), before);

    // Never against the live primary.
    let r = lab.pgrepl(&["-i", &inv, "rebuild", "p", "--yes"]);
    r.expect_code(4);
    assert!(r.stderr.contains("accepts writes"), "{}", r.stderr);

    lab.psql("r2", "SELECT 1");
    let marker = lab.host("r2").data_dir.join("pgrepl-test-marker");
    std::fs::write(&marker, "old copy").unwrap();
    let r = lab.pgrepl(&[
        "-i",
        &inv,
        "rebuild",
        "r2",
        "--method",
        "clone",
        "--keep-old",
        "--yes",
        "--format",
        "json",
    ]);
    r.expect_code(0);
    assert_eq!(json_doc(&r.stdout)["method"], "clone");
    let old = lab.host("r2").data_dir.with_extension("pgrepl-old");
    assert_eq!(
        std::fs::read_to_string(old.join("pgrepl-test-marker")).unwrap(),
        "old copy"
    );
    assert!(!marker.exists(), "the new copy came from the primary");
    assert!(!lab
        .host("r2")
        .data_dir
        .with_extension("pgrepl-new")
        .exists());
    assert_eq!(lab.psql("p", "SELECT string_agg(application_name || ':' || state, ',' ORDER BY application_name) FROM pg_stat_replication"), "r1:streaming,r2:streaming");
    // Without --keep-old the old copy goes once the replica streams.
    lab.pgrepl(&["-i", &inv, "rebuild", "r2", "--method", "clone", "--yes"])
        .expect_code(0);
    assert!(!old.exists());
    lab.pgrepl(&["-i", &inv, "status", "--wait", "30"])
        .expect_code(0);
}

/// Scenario 6, second half: the old primary was unreachable during the promote (frozen host),
/// so it could not be fenced; when it comes back writable, status says split-brain and rebuild
/// refuses to touch it until the DBA stops it.
#[test]
fn an_unfenceable_old_primary_is_split_brain_and_rebuild_refuses_it() {
    let lab = Lab::new(&["p", "r1", "r2"]);
    let inv = lab.init(ROLES);
    let pm = Frozen::new(lab.postmaster_pid("p"));
    let sshd = Frozen::new(lab.sshd_pid("p"));
    let r = lab.pgrepl(&["-i", &inv, "promote", "r1", "--yes", "--format", "json"]);
    r.expect_code(0);
    assert_eq!(json_doc(&r.stdout)["unfenced"], serde_json::json!(["p"]));
    drop(sshd);
    drop(pm);
    let st = lab.pgrepl(&["-i", &inv, "status", "--format", "json"]);
    st.expect_code(11);
    assert!(st.stdout.contains("split_brain"), "{}", st.stdout);
    let rb = lab.pgrepl(&["-i", &inv, "rebuild", "p", "--yes"]);
    rb.expect_code(4);
    assert!(
        rb.stderr.contains("accepts writes") && rb.stderr.contains("stop it first"),
        "{}",
        rb.stderr
    );
    // Once the DBA stops it, rebuild brings it back.
    lab.stop_server("p");
    lab.pgrepl(&["-i", &inv, "rebuild", "p", "--yes"])
        .expect_code(0);
    assert_eq!(lab.psql("p", "SELECT pg_is_in_recovery()"), "t");
}
