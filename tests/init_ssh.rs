//! `pgrepl init` over SSH against real test hosts: a primary and two replicas, each replica
//! cloned by pg_basebackup run on its own host through its own sshd.

use crate::harness::{Lab, Mode};

fn start_times(lab: &Lab, hosts: &[&str]) -> Vec<String> {
    hosts
        .iter()
        .map(|h| lab.psql(h, "SELECT pg_postmaster_start_time()"))
        .collect()
}

#[test]
fn init_over_ssh_builds_a_streaming_cluster_and_rerun_changes_nothing() {
    let lab = Lab::new(&["pg1", "pg2", "pg3"]);
    let inv = lab.ssh_inventory(
        &[
            ("pg1", "primary", None),
            ("pg2", "replica", None),
            ("pg3", "replica", None),
        ],
        "",
    );
    let inv = inv.to_str().unwrap();

    let check = lab.pgrepl(&["-i", inv, "check", "--format", "json"]);
    check.expect_code(0);
    let v: serde_json::Value =
        serde_json::from_str(&check.stdout).expect("check --format json prints one JSON document");
    assert_eq!(v["hosts"][0]["init_would"], "initdb");
    assert_eq!(v["hosts"][1]["init_would"], "clone");

    let first = lab.pgrepl(&["-i", inv, "init"]);
    first.expect_code(0);
    assert!(
        first
            .stderr
            .contains("pg2: cloned from pg1 with pg_basebackup"),
        "{}",
        first.stderr
    );

    // Data flows: a row written on the primary is read back on both replicas.
    lab.psql("pg1", "CREATE TABLE t(id int); INSERT INTO t VALUES (42)");
    let lsn = lab.psql("pg1", "SELECT pg_current_wal_lsn()");
    for r in ["pg2", "pg3"] {
        let mut ok = false;
        for _ in 0..100 {
            if lab.psql(r, &format!("SELECT pg_last_wal_replay_lsn() >= '{lsn}'")) == "t" {
                ok = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(ok, "{r} did not replay {lsn}");
        assert_eq!(lab.psql(r, "SELECT id FROM t"), "42");
        assert_eq!(lab.psql(r, "SELECT pg_is_in_recovery()"), "t");
    }

    // Each replica streams from its own address (in netns mode only its own pg_hba line admits it),
    // on its slot, and the slots are active.
    let senders = lab.psql("pg1", "SELECT application_name || ' ' || host(client_addr) || ' ' || state FROM pg_stat_replication ORDER BY 1");
    if lab.mode == Mode::Netns {
        let want = format!(
            "pg2 {} streaming\npg3 {} streaming",
            lab.host("pg2").address,
            lab.host("pg3").address
        );
        assert_eq!(senders, want);
    } else {
        assert_eq!(
            senders.lines().filter(|l| l.ends_with("streaming")).count(),
            2,
            "{senders}"
        );
    }
    assert_eq!(lab.psql("pg1", "SELECT string_agg(slot_name || ':' || active, ',' ORDER BY slot_name) FROM pg_replication_slots"), "pg2:true,pg3:true");

    // The replication role is LOGIN REPLICATION only, with a SCRAM verifier.
    assert_eq!(
        lab.psql("pg1", "SELECT rolcanlogin::text || rolreplication::text || rolsuper::text || rolcreatedb::text || rolcreaterole::text || left(rolpassword, 13) FROM pg_authid WHERE rolname = 'replicator'"),
        "truetruefalsefalsefalseSCRAM-SHA-256"
    );
    // pg_hba: no trust on any network line, on every host; the server parsed every line.
    for h in ["pg1", "pg2", "pg3"] {
        let hba = std::fs::read_to_string(lab.host(h).data_dir.join("pg_hba.conf")).unwrap();
        assert!(hba.starts_with("# managed by pgrepl"));
        for line in hba.lines().filter(|l| l.starts_with("host")) {
            assert!(!line.contains("trust"), "{h}: {line}");
        }
        assert_eq!(lab.psql(h, "SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL OR (type <> 'local' AND auth_method IN ('trust', 'password'))"), "0");
        if lab.mode == Mode::Netns {
            // The bridge (where the test runner sits) is not admitted: only the hosts are.
            assert!(!hba.contains(&format!("198.18.{}.1/", lab.id)), "{hba}");
        }
    }
    // The password is nowhere but in the 0600 password files.
    for r in ["pg2", "pg3"] {
        let auto =
            std::fs::read_to_string(lab.host(r).data_dir.join("postgresql.auto.conf")).unwrap();
        let conf = std::fs::read_to_string(lab.host(r).data_dir.join("postgresql.conf")).unwrap();
        assert!(!auto.contains(&lab.password) && !conf.contains(&lab.password));
        assert!(
            conf.contains("passfile=") && !conf.contains("password="),
            "{conf}"
        );
        let passfile = format!("{}.pgpass", lab.host(r).data_dir.display());
        let meta = std::fs::metadata(&passfile).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(meta.mode() & 0o777, 0o600, "{passfile}");
    }
    assert!(
        !first.all().contains(&lab.password),
        "the password appeared in pgrepl's output"
    );
    for h in ["pg1", "pg2", "pg3"] {
        let log = std::fs::read_to_string(format!("{}.log", lab.host(h).data_dir.display()))
            .unwrap_or_default();
        assert!(
            !log.contains(&lab.password),
            "{h}: the password reached the server log"
        );
    }

    // A second init changes nothing and restarts nothing.
    let before = start_times(&lab, &["pg1", "pg2", "pg3"]);
    let second = lab.pgrepl(&["-i", inv, "init", "-v"]);
    second.expect_code(0);
    assert!(
        second.stderr.contains("init: no changes"),
        "{}",
        second.stderr
    );
    assert_eq!(start_times(&lab, &["pg1", "pg2", "pg3"]), before);

    // status: everyone streaming, JSON on stdout only.
    let st = lab.pgrepl(&["-i", inv, "status", "--format", "json"]);
    st.expect_code(0);
    let v: serde_json::Value = serde_json::from_str(&st.stdout).expect("status JSON");
    let hosts = v["hosts"].as_array().unwrap();
    assert_eq!(hosts[0]["role"], "primary");
    for h in &hosts[1..] {
        assert_eq!(h["role"], "replica");
    }
    for r in v["replicas"].as_array().unwrap() {
        assert_eq!(r["streaming"], true);
        assert_eq!(r["upstream"], "pg1");
    }
    assert_eq!(v["replicas"].as_array().unwrap().len(), 2);
    let text = lab.pgrepl(&["-i", inv, "status"]);
    text.expect_code(0);
    assert_eq!(
        text.stdout
            .lines()
            .filter(|l| l.contains(" replica ") && l.contains(" yes "))
            .count(),
        2,
        "{}",
        text.stdout
    );
}

#[test]
fn cascading_replica_streams_from_its_upstream() {
    let lab = Lab::new(&["p", "r1", "r2"]);
    let inv = lab.ssh_inventory(
        &[
            ("p", "primary", None),
            ("r1", "replica", None),
            ("r2", "replica", Some("r1")),
        ],
        "",
    );
    lab.pgrepl(&["-i", inv.to_str().unwrap(), "init"])
        .expect_code(0);
    // r2 is served by r1's WAL sender on r1's slot, not by the primary.
    assert_eq!(
        lab.psql(
            "r1",
            "SELECT application_name || ' ' || state FROM pg_stat_replication"
        ),
        "r2 streaming"
    );
    assert_eq!(
        lab.psql(
            "r1",
            "SELECT slot_name || ':' || active FROM pg_replication_slots"
        ),
        "r2:true"
    );
    assert_eq!(
        lab.psql(
            "p",
            "SELECT string_agg(application_name, ',') FROM pg_stat_replication"
        ),
        "r1"
    );
    lab.psql("p", "CREATE TABLE c AS SELECT 7 AS v");
    let lsn = lab.psql("p", "SELECT pg_current_wal_lsn()");
    let mut seen = false;
    for _ in 0..200 {
        if lab.psql("r2", &format!("SELECT pg_last_wal_replay_lsn() >= '{lsn}'")) == "t" {
            seen = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(seen, "r2 did not replay the primary's write through r1");
    assert_eq!(lab.psql("r2", "SELECT v FROM c"), "7");
    let st = lab.pgrepl(&["-i", inv.to_str().unwrap(), "status", "--format", "json"]);
    st.expect_code(0);
    let v: serde_json::Value = serde_json::from_str(&st.stdout).unwrap();
    let r2 = v["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["host"] == "r2")
        .unwrap();
    assert_eq!(r2["upstream"], "r1");
    assert_eq!(r2["inventory_upstream"], "r1");
    assert_eq!(r2["streaming"], true);
}

#[test]
fn init_refuses_foreign_data_before_any_change() {
    let lab = Lab::new(&["pg1", "pg2"]);
    let inv = lab.ssh_inventory(&[("pg1", "primary", None), ("pg2", "replica", None)], "");
    // pg2's data directory holds something that is not a replica of this primary.
    let d = &lab.host("pg2").data_dir;
    std::fs::create_dir_all(d).unwrap();
    std::fs::write(d.join("precious.txt"), "keep me").unwrap();
    let r = lab.pgrepl(&["-i", inv.to_str().unwrap(), "init"]);
    r.expect_code(4);
    assert!(
        r.stderr.contains("pg2 [data_dir]") && r.stderr.contains("never overwrites"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("next: move them aside"), "{}", r.stderr);
    assert_eq!(
        std::fs::read_to_string(d.join("precious.txt")).unwrap(),
        "keep me"
    );
    assert!(
        !lab.host("pg1").data_dir.exists(),
        "preflight failed, yet the primary was created"
    );

    // rebuild refuses such a directory too: the files are not its to replace.
    std::fs::rename(d, lab.dir.join("pg2-precious")).unwrap();
    lab.pgrepl(&["-i", inv.to_str().unwrap(), "init"])
        .expect_code(0);
    lab.stop_server("pg2");
    std::fs::rename(d, lab.dir.join("pg2-real")).unwrap();
    std::fs::rename(lab.dir.join("pg2-precious"), d).unwrap();
    let r = lab.pgrepl(&["-i", inv.to_str().unwrap(), "rebuild", "pg2", "--yes"]);
    r.expect_code(4);
    assert!(
        r.stderr
            .contains("not a PostgreSQL data directory; rebuild never replaces them"),
        "{}",
        r.stderr
    );
    assert_eq!(
        std::fs::read_to_string(d.join("precious.txt")).unwrap(),
        "keep me"
    );
    assert!(!d.with_extension("pgrepl-old").exists());
}

#[test]
fn unknown_host_key_is_refused_unless_accept_new_is_asked_for() {
    let lab = Lab::new(&["pg1"]);
    let inv = lab.ssh_inventory(&[("pg1", "primary", None)], "");
    let inv = inv.to_str().unwrap();
    std::fs::write(&lab.known_hosts, "").unwrap();
    let r = lab.pgrepl(&["-i", inv, "check"]);
    r.expect_code(4);
    assert!(
        r.stderr.contains("pg1 [reachable]") && r.stderr.contains("host key"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("known_hosts"),
        "the error must say how to trust the key: {}",
        r.stderr
    );
    assert_eq!(
        std::fs::read_to_string(&lab.known_hosts).unwrap(),
        "",
        "strict mode recorded a key"
    );
    // Trust on first use, only when asked: the key is recorded, and the check passes.
    lab.pgrepl(&["-i", inv, "check", "--accept-new-host-keys"])
        .expect_code(0);
    assert!(std::fs::read_to_string(&lab.known_hosts)
        .unwrap()
        .contains("ssh-ed25519"));
    lab.pgrepl(&["-i", inv, "check"]).expect_code(0);
}
