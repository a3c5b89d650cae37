//! `pgrepl init` through the local transport: three servers on this machine, no SSH. Also:
//! a restart-only setting change is refused without a terminal and without --yes, and
//! `status` sees a stopped replica.

use crate::harness::{pgrepl, stop_server, LocalLab};

#[test]
fn init_through_the_local_transport() {
    let c = LocalLab::new(3);
    let inv = c.inventory("16MB");
    let inv_s = inv.to_str().unwrap();
    let r = pgrepl(&["-i", inv_s, "init"], &[]);
    r.expect_code(0);
    assert!(!r.all().contains("canary-local-pw"));
    assert_eq!(
        c.psql(
            0,
            "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"
        ),
        "2"
    );
    c.psql(0, "CREATE TABLE l AS SELECT 1 AS x");
    let lsn = c.psql(0, "SELECT pg_current_wal_lsn()");
    for i in 1..3 {
        let mut ok = false;
        for _ in 0..100 {
            if c.psql(i, &format!("SELECT pg_last_wal_replay_lsn() >= '{lsn}'")) == "t" {
                ok = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(ok && c.psql(i, "SELECT x FROM l") == "1");
    }

    // A change to a restart-only setting: without a terminal and --yes, refused at once, nothing restarted.
    let before: Vec<String> = (0..3)
        .map(|i| c.psql(i, "SELECT pg_postmaster_start_time()"))
        .collect();
    let inv = c.inventory("24MB");
    let t0 = std::time::Instant::now();
    let refused = pgrepl(&["-i", inv_s, "init"], &[]);
    refused.expect_code(5);
    assert!(t0.elapsed() < std::time::Duration::from_secs(10));
    assert!(
        refused.stderr.contains("--yes") && refused.stderr.contains("shared_buffers"),
        "{}",
        refused.stderr
    );
    let after: Vec<String> = (0..3)
        .map(|i| c.psql(i, "SELECT pg_postmaster_start_time()"))
        .collect();
    assert_eq!(before, after, "a refused init restarted a server");
    assert!(
        std::fs::read_to_string(c.data_dir(0).join("postgresql.conf"))
            .unwrap()
            .contains("shared_buffers = '16MB'")
    );
    // With --yes: restarted with the new value, and still streaming.
    pgrepl(&["-i", inv.to_str().unwrap(), "init", "--yes"], &[]).expect_code(0);
    for i in 0..3 {
        assert_eq!(c.psql(i, "SHOW shared_buffers"), "24MB");
    }
    assert_eq!(
        c.psql(
            0,
            "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"
        ),
        "2"
    );

    // status sees a stopped replica: degraded (exit 10), the host unreachable, JSON still on stdout.
    stop_server(&c.os_user, &c.data_dir(2));
    let st = pgrepl(&["-i", inv_s, "status", "--format", "json"], &[]);
    st.expect_code(10);
    let v: serde_json::Value = serde_json::from_str(&st.stdout).expect("status JSON");
    assert_eq!(v["healthy"], false);
    assert_eq!(v["hosts"][2]["name"], "c");
    assert_eq!(v["hosts"][2]["reachable"], false);
    assert_eq!(v["replicas"][0]["streaming"], true);
}

/// A replica whose data directory is gone: `check` says init would clone it and keep the rest,
/// and `init` clones only it (the other servers are neither restarted nor reloaded).
#[test]
fn init_reclones_only_a_missing_replica() {
    let c = LocalLab::new(3);
    let inv = c.inventory("16MB");
    let inv_s = inv.to_str().unwrap();
    pgrepl(&["-i", inv_s, "init"], &[]).expect_code(0);
    let before: Vec<String> = (0..2)
        .map(|i| c.psql(i, "SELECT pg_postmaster_start_time()"))
        .collect();
    stop_server(&c.os_user, &c.data_dir(2));
    std::fs::remove_dir_all(c.data_dir(2)).unwrap();

    let check = pgrepl(&["-i", inv_s, "check", "--format", "json"], &[]);
    check.expect_code(0);
    let v: serde_json::Value = serde_json::from_str(&check.stdout).expect("check JSON");
    let would: Vec<&str> = (0..3)
        .map(|i| v["hosts"][i]["init_would"].as_str().unwrap())
        .collect();
    assert_eq!(would, ["keep_primary", "keep_replica", "clone"]);

    let r = pgrepl(&["-i", inv_s, "init"], &[]);
    r.expect_code(0);
    assert!(
        r.stderr.contains("c: cloned from a with pg_basebackup"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("b: cloned"), "{}", r.stderr);
    assert!(
        r.stderr.contains("init: cluster lt is up, 3 change(s)"),
        "{}",
        r.stderr
    );
    let after: Vec<String> = (0..2)
        .map(|i| c.psql(i, "SELECT pg_postmaster_start_time()"))
        .collect();
    assert_eq!(
        before, after,
        "init restarted a server it had no reason to touch"
    );
    assert_eq!(
        c.psql(
            0,
            "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"
        ),
        "2"
    );
}

/// Issue "field faults", case 8: the caller's libpq environment (a CI job's PGPASSWORD for its
/// application, PGHOST, PGSSLMODE, …) never reaches the commands pgrepl runs nor the servers it
/// starts: init, switchover (pg_rewind), rebuild by rewind and by clone all work with it set.
#[test]
fn the_callers_libpq_environment_does_not_leak() {
    let c = LocalLab::new(2);
    let inv = c.inventory("16MB");
    let inv = inv.to_str().unwrap();
    let hostile: &[(&str, &str)] = &[
        ("PGPASSWORD", "the-application-password"),
        ("PGHOST", "/nonexistent"),
        ("PGPORT", "1"),
        ("PGUSER", "nobody"),
        ("PGDATABASE", "nope"),
        ("PGSSLMODE", "require"),
        ("PGSERVICE", "no_such_service"),
        ("PGOPTIONS", "-c statement_timeout=1"),
        ("PGCONNECT_TIMEOUT", "1"),
        ("PGAPPNAME", "not_pgrepl"),
    ];
    pgrepl(&["-i", inv, "init"], hostile).expect_code(0);
    pgrepl(&["-i", inv, "switchover", "b", "--yes"], hostile).expect_code(0);
    pgrepl(&["-i", inv, "switchover", "a", "--yes"], hostile).expect_code(0);
    pgrepl(
        &["-i", inv, "rebuild", "b", "--method", "rewind", "--yes"],
        hostile,
    )
    .expect_code(0);
    pgrepl(
        &["-i", inv, "rebuild", "b", "--method", "clone", "--yes"],
        hostile,
    )
    .expect_code(0);
    pgrepl(&["-i", inv, "status", "--wait", "30"], hostile).expect_code(0);
    // The servers pgrepl started see none of it either.
    assert_eq!(
        c.psql(
            1,
            "SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'"
        ),
        "1"
    );
}

/// Hosts on a loopback address other than 127.0.0.1: their connections to each other arrive
/// from 127.0.0.1 (Linux's choice), which pg_hba.conf admits too, so the clone works.
#[test]
fn hosts_on_another_loopback_address_clone_and_stream() {
    let lab = crate::harness::LocalLab::new(2);
    let inv = lab.inventory_with("16MB", "", "127.0.0.5");
    let r = crate::harness::pgrepl(&["-i", inv.to_str().unwrap(), "init"], &[]);
    r.expect_code(0);
    assert_eq!(
        lab.psql(
            0,
            "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"
        ),
        "1"
    );
}
