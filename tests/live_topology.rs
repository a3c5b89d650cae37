//! After a failover the live cluster is the truth (issue "live topology"): real timelines on
//! standbys whose WAL receiver is down, the new primary's files rendered as a primary's, a dying
//! primary fenced, a frozen one stopped only with --force, split-brain advice that keeps the
//! newer primary. Real PostgreSQL and sshd test hosts.

use std::time::Duration;

use crate::harness::{json_doc, spawn_pgrepl, wait_for, Frozen, Lab};

const ROLES: &[(&str, &str, Option<&str>)] = &[
    ("p", "primary", None),
    ("r1", "replica", None),
    ("r2", "replica", None),
];

fn host_timeline(v: &serde_json::Value, name: &str) -> serde_json::Value {
    v["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {v}"))["timeline"]
        .clone()
}

/// Case 4: a standby whose WAL receiver is down reports the timeline it replays, not its last
/// restartpoint's; promote says the timelines as they are.
#[test]
fn a_standby_without_its_wal_receiver_reports_its_real_timeline() {
    let lab = Lab::new(&["p", "r1", "r2"]);
    let inv = lab.init(ROLES);
    lab.psql("p", "CREATE TABLE t(x int); INSERT INTO t VALUES (1)");
    lab.wait_replayed("p", &["r1", "r2"]);
    lab.kill9_postmaster("p");
    let r = lab.pgrepl(&["-i", &inv, "promote", "r1", "--yes", "--format", "json"]);
    r.expect_code(0);
    assert_eq!(json_doc(&r.stdout)["new_timeline"], 2, "{}", r.stderr);
    lab.psql("r1", "INSERT INTO t VALUES (2)");
    lab.wait_replayed("r1", &["r2"]);

    // r2 follows r1 on timeline 2; with r1 gone its WAL receiver stops.
    lab.kill9_postmaster("r1");
    let st = lab.pgrepl(&["-i", &inv, "status", "--format", "json"]);
    let v = json_doc(&st.stdout);
    assert_eq!(host_timeline(&v, "r2"), 2, "{}", st.stdout);

    let r = lab.pgrepl(&["-i", &inv, "promote", "r2", "--yes", "--format", "json"]);
    r.expect_code(0);
    let v = json_doc(&r.stdout);
    assert_eq!(v["old_timeline"], 2, "{}", r.stderr);
    assert_eq!(v["new_timeline"], 3, "{}", r.stderr);
    assert_eq!(lab.psql("r2", "SELECT count(*) FROM t"), "2");
}

/// Cases 1, 2 and 5: after a switchover (inventory not edited), the new primary's files are a
/// primary's; it is then killed, and a promote straight away (its postmaster may still be
/// dying) fences it — the real old primary, not the inventory's — and a rebuild straight after
/// counts the gone server as stopped.
#[test]
fn promote_fences_the_live_old_primary_even_with_a_stale_inventory() {
    let lab = Lab::new(&["p", "r1", "r2"]);
    let inv = lab.init(ROLES);
    // The inventory is left stale on purpose: it still says p is the primary.
    let sw = lab.pgrepl(&[
        "-i",
        &inv,
        "switchover",
        "r1",
        "--yes",
        "--no-write-inventory",
    ]);
    sw.expect_code(0);
    assert!(
        sw.stderr.contains("--no-write-inventory") && sw.stderr.contains("r1: role: primary"),
        "{}",
        sw.stderr
    );
    let conf = std::fs::read_to_string(lab.host("r1").data_dir.join("postgresql.conf")).unwrap();
    assert!(
        !conf.contains("primary_conninfo") && !conf.contains("primary_slot_name"),
        "{conf}"
    );
    assert!(
        conf.contains("this host is the inventory's primary"),
        "{conf}"
    );
    lab.psql("r1", "CREATE TABLE t(x int); INSERT INTO t VALUES (1)");
    lab.wait_replayed("r1", &["p", "r2"]);

    // r1 dies; promote r2 at once, without waiting for the postmaster to be gone.
    let pid = lab.postmaster_pid("r1");
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let r = lab.pgrepl(&["-i", &inv, "promote", "r2", "--yes", "--format", "json"]);
    r.expect_code(0);
    let v = json_doc(&r.stdout);
    assert_eq!(v["unfenced"], serde_json::json!([]), "{}", r.stderr);
    assert!(r.stderr.contains("r1: fenced"), "{}", r.stderr);
    assert!(r.stderr.contains("rebuild r1"), "{}", r.stderr);
    assert!(!r.stderr.contains("rebuild p"), "{}", r.stderr);
    assert!(lab.host("r1").data_dir.join("standby.signal").exists());
    assert_eq!(v["siblings_following"], serde_json::json!(["p"]));

    // A boot script starting r1 again gets a standby, never a second primary.
    lab.start_server("r1");
    assert_eq!(lab.psql("r1", "SELECT pg_is_in_recovery()"), "t");
    lab.stop_server("r1");

    let rb = lab.pgrepl(&["-i", &inv, "rebuild", "r1", "--yes", "--format", "json"]);
    rb.expect_code(0);
    assert_eq!(json_doc(&rb.stdout)["upstream"], "r2", "{}", rb.stderr);
    lab.psql("r2", "INSERT INTO t VALUES (2)");
    lab.wait_replayed("r2", &["p", "r1"]);
    assert_eq!(lab.psql("r1", "SELECT count(*) FROM t"), "2");
    // promote made the inventory true: healthy, with no edit by hand.
    lab.pgrepl(&["-i", &inv, "status", "--wait", "30"])
        .expect_code(0);
}

/// Case 7: a primary whose postmaster is frozen (SIGSTOP) while its host answers over SSH is
/// never taken for dead: promote refuses (also with --yes) and names --force; with --force it
/// kills the postmaster, proves it down and fences it before promoting.
#[test]
fn a_frozen_primary_is_stopped_only_with_force() {
    let lab = Lab::new(&["p", "r1", "r2"]);
    let inv = lab.init(ROLES);
    let frozen = Frozen::new(lab.postmaster_pid("p"));
    let before = lab.snapshot(&["r1", "r2"]);
    let r = lab.pgrepl(&["-i", &inv, "promote", "r1", "--yes"]);
    r.expect_code(4);
    assert!(
        r.stderr.contains("p [fencing]") && r.stderr.contains("does not answer"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("--force"), "{}", r.stderr);
    assert_eq!(lab.snapshot(&["r1", "r2"]), before);
    assert_eq!(lab.psql("r1", "SELECT pg_is_in_recovery()"), "t");

    let r = lab.pgrepl(&[
        "-i", &inv, "promote", "r1", "--force", "--yes", "--format", "json",
    ]);
    r.expect_code(0);
    assert_eq!(
        json_doc(&r.stdout)["unfenced"],
        serde_json::json!([]),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("SIGKILL"), "{}", r.stderr);
    assert!(r.stderr.contains("p: fenced"), "{}", r.stderr);
    drop(frozen);
    assert!(!lab.server_running("p"));
    assert!(lab.host("p").data_dir.join("standby.signal").exists());
    assert_eq!(lab.psql("r1", "SELECT pg_is_in_recovery()"), "f");
}

/// Case 8: a switchover fences the old primary before it promotes the candidate, and one
/// interrupted between the stop and the promotion starts the old primary again (it never leaves
/// the cluster without a writable node); the re-run it names then completes.
#[test]
fn an_interrupted_switchover_rolls_back_before_the_promotion() {
    let lab = Lab::new(&["p", "r1", "r2"]);
    let inv = lab.init(ROLES);
    // r1 receives WAL but applies commits an hour late: the switchover waits for it to replay
    // past the old primary's shutdown checkpoint.
    lab.psql("r1", "ALTER SYSTEM SET recovery_min_apply_delay = '1h'");
    lab.psql("r1", "SELECT pg_reload_conf()");
    lab.psql("p", "CREATE TABLE t(x int); INSERT INTO t VALUES (1)");
    let sw = spawn_pgrepl(&["-i", &inv, "switchover", "r1", "--yes"]);
    let signal = lab.host("p").data_dir.join("standby.signal");
    wait_for("p stopped and fenced", Duration::from_secs(60), || {
        !lab.server_running("p") && signal.exists()
    });
    sw.signal(libc::SIGTERM);
    let r = sw.wait();
    r.expect_code(130);
    assert!(r.stderr.contains("p is the primary again"), "{}", r.stderr);
    assert_eq!(lab.psql("p", "SELECT pg_is_in_recovery()"), "f");
    assert!(!signal.exists());
    assert_eq!(lab.psql("r1", "SELECT pg_is_in_recovery()"), "t");
    lab.psql("p", "INSERT INTO t VALUES (2)");

    // The re-run finishes the job once r1 can catch up.
    lab.psql("r1", "ALTER SYSTEM RESET recovery_min_apply_delay");
    lab.psql("r1", "SELECT pg_reload_conf()");
    lab.pgrepl(&["-i", &inv, "switchover", "r1", "--yes"])
        .expect_code(0);
    assert_eq!(lab.psql("r1", "SELECT count(*) FROM t"), "2");
    assert!(signal.exists(), "the old primary is a standby now");
}

/// Case 3: a cascading replica whose upstream was the primary that failed follows the new
/// primary in the same promote, though the inventory (left stale) still describes an older
/// topology; the inventory is then made true, and the failed node is rebuilt.
#[test]
fn a_cascade_from_the_failed_primary_follows_the_new_one() {
    let lab = Lab::new(&["p", "r1", "r2"]);
    let inv = lab.init(&[
        ("p", "primary", None),
        ("r1", "replica", None),
        ("r2", "replica", Some("r1")),
    ]);
    lab.pgrepl(&[
        "-i",
        &inv,
        "switchover",
        "r1",
        "--yes",
        "--no-write-inventory",
    ])
    .expect_code(0);
    lab.psql("r1", "CREATE TABLE t(x int); INSERT INTO t VALUES (1)");
    lab.wait_replayed("r1", &["p", "r2"]);
    lab.kill9_postmaster("r1");

    let r = lab.pgrepl(&["-i", &inv, "promote", "p", "--yes", "--format", "json"]);
    r.expect_code(0);
    assert_eq!(
        json_doc(&r.stdout)["siblings_following"],
        serde_json::json!(["r2"]),
        "{}",
        r.stderr
    );
    assert_eq!(
        lab.psql(
            "p",
            "SELECT application_name || ':' || state FROM pg_stat_replication"
        ),
        "r2:streaming"
    );
    let text = std::fs::read_to_string(&inv).unwrap();
    assert!(
        text.contains("upstream: p") && !text.contains("upstream: r1"),
        "{text}"
    );

    lab.pgrepl(&["-i", &inv, "rebuild", "r1", "--yes"])
        .expect_code(0);
    lab.pgrepl(&["-i", &inv, "status", "--wait", "30"])
        .expect_code(0);
    assert_eq!(lab.psql("r1", "SELECT count(*) FROM t"), "1");
}

/// Fix commands run as printed: a stale slot's fix, pasted into a shell as is, reaches the host
/// through the inventory's ssh settings and drops the slot.
#[test]
fn a_fix_line_works_when_pasted() {
    let lab = Lab::new(&["p", "r1"]);
    let inv = lab.init(&[("p", "primary", None), ("r1", "replica", None)]);
    lab.psql(
        "p",
        "SELECT pg_create_physical_replication_slot('stray', true)",
    );
    lab.psql("p", "CREATE TABLE t(x int); INSERT INTO t VALUES (1)");
    let st = lab.pgrepl(&["-i", &inv, "status", "--format", "json"]);
    let v = json_doc(&st.stdout);
    let fix = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "slot_inactive")
        .unwrap_or_else(|| panic!("{v}"))["fix"]
        .as_str()
        .unwrap()
        .to_string();
    let cmd = fix
        .strip_prefix("drop it if unused: ")
        .unwrap_or_else(|| panic!("{fix}"));
    assert!(cmd.starts_with("pgrepl -i "), "{cmd}");
    // Pasted as is (no terminal to confirm on here, so with --yes), with pgrepl on PATH.
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_pgrepl"))
        .parent()
        .unwrap()
        .display()
        .to_string();
    let out = std::process::Command::new("sh")
        .args(["-c", &format!("{cmd} --yes")])
        .env("PATH", format!("{bin}:{}", std::env::var("PATH").unwrap()))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        lab.psql(
            "p",
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'stray'"
        ),
        "0"
    );
    lab.pgrepl(&["-i", &inv, "status", "--wait", "30"])
        .expect_code(0);
}

/// Case 9: after a crash of a primary whose replicas lagged, promote reads the old primary's
/// end of WAL (its host is reachable) and says how many bytes the new timeline does not have.
#[test]
fn promote_reports_what_a_crash_lost() {
    let lab = Lab::new(&["p", "r1", "r2"]);
    let inv = lab.init(ROLES);
    lab.psql("p", "CREATE TABLE t(x int); INSERT INTO t VALUES (0)");
    lab.wait_replayed("p", &["r1", "r2"]);
    // The replicas are down while p takes writes; p then crashes; they come back.
    lab.stop_server("r1");
    lab.stop_server("r2");
    lab.psql("p", "INSERT INTO t SELECT generate_series(1, 50000)");
    for i in 0..5 {
        lab.psql("p", &format!("INSERT INTO t VALUES ({i})"));
    }
    lab.kill9_postmaster("p");
    lab.start_server("r1");
    lab.start_server("r2");
    let r = lab.pgrepl(&[
        "-i",
        &inv,
        "promote",
        "r1",
        "--yes",
        "--allow-data-loss",
        "--format",
        "json",
    ]);
    r.expect_code(0);
    let v = json_doc(&r.stdout);
    let lost = v["bytes_maybe_lost"]
        .as_u64()
        .unwrap_or_else(|| panic!("{v}"));
    assert!(lost > 100_000, "{v}");
    assert!(v["old_primary_last_lsn"].is_string(), "{v}");
    assert!(
        r.stderr.contains(&format!("{lost} bytes may be lost")),
        "{}",
        r.stderr
    );

    // The rewind of the old primary says what it discards and keeps that WAL aside.
    let rb = lab.pgrepl(&[
        "-i", &inv, "rebuild", "p", "--method", "rewind", "--yes", "--format", "json",
    ]);
    rb.expect_code(0);
    let v = json_doc(&rb.stdout);
    let discarded = v["discarded_bytes"]
        .as_u64()
        .unwrap_or_else(|| panic!("{v}"));
    assert!(discarded > 100_000, "{v}");
    // Six commits at least (the big insert and five single rows), with the last one's time.
    let txns = v["discarded_transactions"]
        .as_u64()
        .unwrap_or_else(|| panic!("{v}"));
    assert!(txns >= 6, "{v}");
    assert!(v["last_discarded_commit"].is_string(), "{v}");
    assert!(
        rb.stderr
            .contains(&format!("({txns} committed transactions, the last at ")),
        "{}",
        rb.stderr
    );
    let kept = std::path::PathBuf::from(
        v["discarded_wal_kept_in"]
            .as_str()
            .unwrap_or_else(|| panic!("{v}")),
    );
    assert!(
        std::fs::read_dir(&kept).unwrap().count() > 0,
        "{}",
        kept.display()
    );
    lab.pgrepl(&["-i", &inv, "status", "--wait", "30"])
        .expect_code(0);
}

/// init and check plan from the live primary once the cluster exists: after a switchover that
/// left the inventory stale, init converges the cluster as it is (nothing to change) and makes
/// the inventory true; status is then healthy.
#[test]
fn init_after_a_failover_plans_from_the_live_primary() {
    let lab = Lab::new(&["p", "r1", "r2"]);
    let inv = lab.init(ROLES);
    lab.pgrepl(&[
        "-i",
        &inv,
        "switchover",
        "r1",
        "--yes",
        "--no-write-inventory",
    ])
    .expect_code(0);
    lab.pgrepl(&["-i", &inv, "check"]).expect_code(0);
    let r = lab.pgrepl(&["-i", &inv, "init"]);
    r.expect_code(0);
    assert!(
        r.stderr.contains("r1 is the live primary") && r.stderr.contains("init: no changes"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("updated"), "{}", r.stderr);
    assert_eq!(lab.psql("r1", "SELECT pg_is_in_recovery()"), "f");
    lab.pgrepl(&["-i", &inv, "status", "--wait", "30"])
        .expect_code(0);
}

/// Stale slots: a replica re-pointed in the inventory (`upstream:` changed) follows its new
/// upstream after `init`, and its slot on the old upstream is dropped (it would retain WAL there
/// for nobody).
#[test]
fn init_drops_the_slot_a_repointed_replica_left_behind() {
    let lab = Lab::new(&["p", "r1", "r2"]);
    let inv = lab.init(&[
        ("p", "primary", None),
        ("r1", "replica", None),
        ("r2", "replica", Some("r1")),
    ]);
    assert_eq!(
        lab.psql(
            "r1",
            "SELECT string_agg(slot_name, ',') FROM pg_replication_slots"
        ),
        "r2"
    );
    let inv2 = lab.ssh_inventory(ROLES, "");
    assert_eq!(inv2.to_str().unwrap(), inv);
    let r = lab.pgrepl(&["-i", &inv, "init"]);
    r.expect_code(0);
    assert!(
        r.stderr.contains("r1: dropped stale slot r2"),
        "{}",
        r.stderr
    );
    assert_eq!(
        lab.psql("r1", "SELECT count(*) FROM pg_replication_slots"),
        "0"
    );
    assert_eq!(
        lab.psql("p", "SELECT string_agg(application_name || ':' || state, ',' ORDER BY application_name) FROM pg_stat_replication"),
        "r1:streaming,r2:streaming"
    );
}

/// Stale slots: a renamed `slot:` and a replica removed from the inventory leave slots on the
/// primary that no one uses; `init` drops the inactive ones (it knows them from its record), keeps
/// an active one and names the command; `slot drop` refuses a slot in use, drops with --force.
#[test]
fn init_drops_the_slots_of_renamed_and_removed_replicas() {
    let lab = Lab::new(&["p", "r1", "r2"]);
    let inv = lab.init(ROLES);
    let slots_on_p = || {
        lab.psql(
            "p",
            "SELECT string_agg(slot_name || ':' || active, ',' ORDER BY slot_name) FROM pg_replication_slots",
        )
    };
    assert_eq!(slots_on_p(), "r1:true,r2:true");

    // r1's slot is renamed; r2 leaves the inventory while its server still streams.
    let text = std::fs::read_to_string(&inv).unwrap();
    let r2 = text.find("  - name: r2\n").expect("r2 in the inventory");
    let mut edited = text[..r2].to_string();
    edited = edited.replacen("  - name: r1\n", "  - name: r1\n    slot: r1_new\n", 1);
    std::fs::write(&inv, edited).unwrap();
    let r = lab.pgrepl(&["-i", &inv, "init", "--yes"]);
    r.expect_code(0);
    assert!(
        r.stderr
            .contains("p: dropped stale slot r1 (made for r1, which does not use it on p now)"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("kept slot r2, which was made for r2, no longer in the inventory,")
            && r.stderr.contains("slot drop p r2"),
        "{}",
        r.stderr
    );
    assert_eq!(slots_on_p(), "r1_new:true,r2:true");

    // In use: refused without --force (exit 4), whatever --yes says.
    let r = lab.pgrepl(&["-i", &inv, "slot", "drop", "p", "r1_new", "--yes"]);
    r.expect_code(4);
    assert!(
        r.stderr.contains("r1 follows p with slot r1_new"),
        "{}",
        r.stderr
    );
    lab.pgrepl(&["-i", &inv, "slot", "drop", "p", "r2", "--yes"])
        .expect_code(4);
    // Destructive: no terminal and no --yes is a refusal (exit 5).
    lab.pgrepl(&["-i", &inv, "slot", "drop", "p", "r2", "--force"])
        .expect_code(5);

    // Once r2 is down, init drops its slot; the record on p keeps only r1_new.
    lab.stop_server("r2");
    let r = lab.pgrepl(&["-i", &inv, "init", "--yes"]);
    r.expect_code(0);
    assert!(
        r.stderr.contains(
            "p: dropped stale slot r2 (made for r2, which is no longer in the inventory)"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(slots_on_p(), "r1_new:true");
    let data = lab.hosts[0].data_dir.display().to_string();
    let record = lab.run_on("p", &["cat", &format!("{data}.pgrepl-slots")]);
    assert!(
        record
            .lines()
            .filter(|l| !l.starts_with('#'))
            .eq(["r1_new r1"]),
        "{record}"
    );

    // --force ends the WAL sender and drops the slot; init gives r1 its slot back.
    let r = lab.pgrepl(&[
        "-i", &inv, "slot", "drop", "p", "r1_new", "--force", "--yes",
    ]);
    r.expect_code(0);
    assert_eq!(slots_on_p(), "");
    lab.pgrepl(&["-i", &inv, "slot", "drop", "p", "r1_new", "--yes"])
        .expect_code(0);
    lab.pgrepl(&["-i", &inv, "init", "--yes"]).expect_code(0);
    lab.pgrepl(&["-i", &inv, "status", "--wait", "30"])
        .expect_code(0);
    assert_eq!(slots_on_p(), "r1_new:true");
}

/// Issue "field faults", case 11: a host whose name is not a valid slot name (here the primary,
/// `Postgres-Video-Master`) gets a valid derived slot, so it can become a replica after a
/// switchover and be rebuilt.
#[test]
fn host_names_that_are_not_slot_names_get_valid_slots() {
    let lab = Lab::new(&["Postgres-Video-Master", "replica-2"]);
    let inv = lab.init(&[
        ("Postgres-Video-Master", "primary", None),
        ("replica-2", "replica", None),
    ]);
    assert_eq!(
        lab.psql(
            "Postgres-Video-Master",
            "SELECT string_agg(slot_name || ':' || active, ',') FROM pg_replication_slots"
        ),
        "replica_2:true"
    );
    lab.pgrepl(&["-i", &inv, "switchover", "replica-2", "--yes"])
        .expect_code(0);
    assert_eq!(
        lab.psql(
            "replica-2",
            "SELECT string_agg(slot_name || ':' || active, ',') FROM pg_replication_slots"
        ),
        "postgres_video_master:true"
    );
    lab.pgrepl(&[
        "-i",
        &inv,
        "rebuild",
        "Postgres-Video-Master",
        "--method",
        "clone",
        "--yes",
    ])
    .expect_code(0);
    lab.pgrepl(&["-i", &inv, "status", "--wait", "30"])
        .expect_code(0);
}

/// Case 8, the kind: a switchover interrupted (SIGINT) at any point — during the stop, after the
/// shutdown checkpoint was read, after the promotion — leaves exactly one node that accepts
/// writes, and what it prints finishes the job (the same command before the promotion, the
/// commands it names after), to a healthy cluster.
#[test]
fn an_interrupted_switchover_always_leaves_one_primary_and_says_how_to_finish() {
    let lab = Lab::new(&["p", "r1", "r2"]);
    let inv = lab.init(ROLES);
    lab.psql("p", "CREATE TABLE t(x int); INSERT INTO t VALUES (1)");
    let writable =
        |h: &str| lab.server_running(h) && lab.psql(h, "SELECT NOT pg_is_in_recovery()") == "t";
    for marker in ["1. CHECKPOINT", "3. shutdown checkpoint", "5. promoted"] {
        let primary = ["p", "r1", "r2"].into_iter().find(|h| writable(h)).unwrap();
        let to = if primary == "r1" { "r2" } else { "r1" };
        let sw = spawn_pgrepl(&["-i", &inv, "switchover", to, "--yes"]);
        wait_for(marker, Duration::from_secs(60), || {
            sw.stderr_so_far().contains(marker)
        });
        sw.signal(libc::SIGINT);
        let r = sw.wait();
        r.expect_code(130);
        let primaries: Vec<&str> = ["p", "r1", "r2"]
            .into_iter()
            .filter(|h| writable(h))
            .collect();
        assert_eq!(
            primaries.len(),
            1,
            "after {marker}: {primaries:?}\n{}",
            r.stderr
        );
        // What it says finishes the job.
        if let Some(next) = r
            .stderr
            .lines()
            .find_map(|l| l.trim().strip_prefix("next: finish the switchover: "))
        {
            let cmd = next.split(" (").next().unwrap();
            for part in cmd.split(" && ") {
                let argv: Vec<&str> = part.split_whitespace().skip(1).collect();
                lab.pgrepl(&argv).expect_code(0);
            }
        } else {
            assert!(r.stderr.contains("re-run the same command"), "{}", r.stderr);
            lab.pgrepl(&["-i", &inv, "switchover", to, "--yes"])
                .expect_code(0);
        }
        lab.pgrepl(&["-i", &inv, "status", "--wait", "60"])
            .expect_code(0);
        assert_eq!(lab.psql(to, "SELECT count(*) FROM t"), "1");
    }
}
