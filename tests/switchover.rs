//! `pgrepl switchover` on real clusters over SSH, under a write probe: zero acknowledged writes
//! lost, there and back; refusals that change nothing; a failure after the point of no return.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::Lab;

const ROLES: &[(&str, &str, Option<&str>)] = &[
    ("p", "primary", None),
    ("r1", "replica", None),
    ("r2", "replica", None),
];

/// A lab whose pg_hba admits the write probe from the test runner, with the probe's role and table.
fn lab_with_probe_access() -> (Lab, String) {
    lab_with_probe(false)
}

/// Like [`lab_with_probe_access`]; `durable` keeps fsync on (benchmarks).
pub fn lab_with_probe(durable: bool) -> (Lab, String) {
    let lab = Lab::new(&["p", "r1", "r2"]);
    let rule = format!(
        "{{type: host, database: postgres, user: probe, address: {}/32, method: scram-sha-256}}",
        lab.runner_address()
    );
    let inv = lab.ssh_inventory_full(ROLES, "", durable, &[rule]);
    let inv = inv.to_str().unwrap().to_string();
    lab.pgrepl(&["-i", &inv, "init"]).expect_code(0);
    lab.psql("p", "CREATE ROLE probe LOGIN PASSWORD 'probe-pw'; CREATE TABLE probe_ids(id bigint PRIMARY KEY, at timestamptz DEFAULT clock_timestamp()); GRANT SELECT, INSERT ON probe_ids TO probe");
    (lab, inv)
}

/// The write probe, running; its acknowledged (id, ms) pairs collected as they arrive.
pub struct ProbeRun {
    child: Child,
    pub acked: Arc<Mutex<Vec<(i64, u64)>>>,
}

impl ProbeRun {
    pub fn start(lab: &Lab) -> ProbeRun {
        let hosts: Vec<&str> = lab.hosts.iter().map(|h| h.address.as_str()).collect();
        let conninfo = format!(
            "host={} port=5432 user=probe dbname=postgres target_session_attrs=read-write",
            hosts.join(",")
        );
        ProbeRun::start_with(&conninfo, "probe-pw")
    }

    /// The probe writing through `conninfo` (a router's endpoint, say) with `password`.
    pub fn start_with(conninfo: &str, password: &str) -> ProbeRun {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pgrepl-write-probe"))
            .args([conninfo, "300"])
            .env("PGREPL_PROBE_PASSWORD", password)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let acked = Arc::new(Mutex::new(Vec::new()));
        let a2 = acked.clone();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                let mut w = line.split_whitespace();
                if let (Some(Ok(id)), Some(Ok(ms))) =
                    (w.next().map(str::parse), w.next().map(str::parse))
                {
                    a2.lock().unwrap().push((id, ms));
                }
            }
        });
        let p = ProbeRun { child, acked };
        p.wait_for_acks(20);
        p
    }

    pub fn count(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// Waits (bounded) until `n` more writes are acknowledged.
    pub fn wait_for_acks(&self, n: usize) {
        let target = self.count() + n;
        let t0 = Instant::now();
        while self.count() < target {
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "the write probe got no acknowledgement for 60s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The longest gap between two acknowledged writes, in seconds.
    pub fn longest_gap(&self) -> f64 {
        self.longest_gap_since(0)
    }

    /// The longest gap between two acknowledged writes from the `from`-th on, in seconds.
    pub fn longest_gap_since(&self, from: usize) -> f64 {
        let a = self.acked.lock().unwrap();
        a[from.min(a.len())..]
            .windows(2)
            .map(|w| w[1].1.saturating_sub(w[0].1))
            .max()
            .unwrap_or(0) as f64
            / 1000.0
    }

    /// Writes that failed (ids the probe skipped) among those after the `from`-th acknowledged.
    pub fn errors_since(&self, from: usize) -> i64 {
        let a = self.acked.lock().unwrap();
        a[from.min(a.len())..]
            .windows(2)
            .map(|w| w[1].0 - w[0].0 - 1)
            .sum()
    }

    pub fn ids(&self) -> Vec<i64> {
        self.acked.lock().unwrap().iter().map(|(i, _)| *i).collect()
    }
}

impl Drop for ProbeRun {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Acknowledged ids missing on `host`.
pub fn missing_on(lab: &Lab, host: &str, ids: &[i64]) -> usize {
    missing_in(lab, host, "postgres", ids)
}

/// Acknowledged ids missing on `host` in database `db`.
pub fn missing_in(lab: &Lab, host: &str, db: &str, ids: &[i64]) -> usize {
    let present: std::collections::HashSet<i64> = lab
        .psql_db(host, db, "SELECT id FROM probe_ids")
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect();
    ids.iter().filter(|i| !present.contains(i)).count()
}

fn streams_from(lab: &Lab, primary: &str) -> String {
    lab.psql(primary, "SELECT string_agg(application_name || ':' || state, ',' ORDER BY application_name) FROM pg_stat_replication")
}

#[test]
fn switchover_there_and_back_under_writes_loses_nothing() {
    let (lab, inv) = lab_with_probe_access();
    let probe = ProbeRun::start(&lab);

    let dry = lab.pgrepl(&["-i", &inv, "switchover", "r1", "--dry-run"]);
    dry.expect_code(0);
    assert!(
        dry.stdout.contains("2. stop p (fast)") && dry.stdout.contains("pg_ctl stop"),
        "{}",
        dry.stdout
    );
    assert!(!dry.all().contains(&lab.password));
    assert_eq!(
        lab.psql("p", "SELECT pg_is_in_recovery()"),
        "f",
        "a dry run changed nothing"
    );

    let r = lab.pgrepl(&["-i", &inv, "switchover", "r1", "--yes", "--format", "json"]);
    r.expect_code(0);
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["new_primary"], "r1");
    for step in [
        "1. CHECKPOINT",
        "2. stopped (fast)",
        "3. shutdown checkpoint",
        "4. received and replayed",
        "5. promoted",
    ] {
        assert!(r.stderr.contains(step), "{step} missing: {}", r.stderr);
    }
    probe.wait_for_acks(30);
    assert_eq!(streams_from(&lab, "r1"), "p:streaming,r2:streaming");
    for h in ["p", "r2"] {
        assert_eq!(
            lab.psql(h, "SELECT received_tli FROM pg_stat_wal_receiver"),
            "2",
            "{h}"
        );
    }
    let ids = probe.ids();
    assert_eq!(
        missing_on(&lab, "r1", &ids),
        0,
        "acknowledged writes lost in the switchover to r1"
    );
    let gap1 = probe.longest_gap();

    // And back.
    let back = lab.pgrepl(&["-i", &inv, "switchover", "p", "--yes"]);
    back.expect_code(0);
    probe.wait_for_acks(30);
    assert_eq!(streams_from(&lab, "p"), "r1:streaming,r2:streaming");
    for h in ["r1", "r2"] {
        assert_eq!(
            lab.psql(h, "SELECT received_tli FROM pg_stat_wal_receiver"),
            "3",
            "{h}"
        );
    }
    let ids = probe.ids();
    assert_eq!(
        missing_on(&lab, "p", &ids),
        0,
        "acknowledged writes lost in the switchover back to p"
    );
    println!(
        "write probe: {} acknowledged, longest gap {gap1:.3}s then {:.3}s",
        ids.len(),
        probe.longest_gap()
    );
}

#[test]
fn switchover_refusals_change_nothing() {
    let lab = Lab::new(&["p", "r1", "r2"]);
    let inv = lab.init(ROLES);
    let before = lab.snapshot_all();

    // --to auto picks the most caught-up replica streaming from the primary (a dry run).
    let auto = lab.pgrepl(&["-i", &inv, "switchover", "--to", "auto", "--dry-run"]);
    auto.expect_code(0);
    assert!(
        auto.stderr.contains("switchover --to auto: r")
            && auto.stdout.contains("switchover p -> r"),
        "{}{}",
        auto.stdout,
        auto.stderr
    );

    // Replay paused on the candidate.
    lab.psql("r1", "SELECT pg_wal_replay_pause()");
    let r = lab.pgrepl(&["-i", &inv, "switchover", "r1", "--yes"]);
    r.expect_code(4);
    assert!(
        r.stderr.contains("r1 [replay]: WAL replay is paused"),
        "{}",
        r.stderr
    );
    lab.psql("r1", "SELECT pg_wal_replay_resume()");
    assert_eq!(lab.snapshot_all(), before);

    // The candidate lags (its walreceiver frozen while the primary writes).
    let frozen = lab.freeze_walreceiver("r1");
    lab.psql(
        "p",
        "CREATE TABLE lag AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 200000) g",
    );
    let r = lab.pgrepl(&["-i", &inv, "switchover", "r1", "--yes"]);
    r.expect_code(4);
    assert!(r.stderr.contains("r1 [lag]"), "{}", r.stderr);
    drop(frozen);
    lab.wait_replayed("p", &["r1"]);
    assert_eq!(lab.snapshot_all(), before);

    // A sibling unreachable.
    lab.stop_server("r2");
    let r = lab.pgrepl(&["-i", &inv, "switchover", "r1", "--yes"]);
    r.expect_code(4);
    assert!(r.stderr.contains("r2 [reachable]"), "{}", r.stderr);
    lab.start_server("r2");
    // Still the same primary, still writable, nothing restarted (r2 was restarted by the test).
    let after = lab.snapshot_all();
    assert_eq!(after[0], before[0]);
    assert_eq!(after[1], before[1]);
    lab.psql("p", "CREATE TABLE still_writable(x int)");

    // No terminal and no --yes: refused at once.
    let r = lab.pgrepl(&["-i", &inv, "switchover", "r1"]);
    r.expect_code(5);
}

#[test]
fn failure_after_the_point_of_no_return_is_incomplete_and_rebuild_completes_it() {
    let lab = Lab::new(&["p", "r1", "r2"]);
    let inv = lab.init(ROLES);
    // The old primary will not start again: a broken setting in a file pgrepl does not manage.
    let auto = lab.host("p").data_dir.join("postgresql.auto.conf");
    let mut text = std::fs::read_to_string(&auto).unwrap();
    text.push_str("shared_buffers = 'not a size'\n");
    std::fs::write(&auto, text).unwrap();
    let r = lab.pgrepl(&["-i", &inv, "switchover", "r1", "--yes"]);
    r.expect_code(7);
    assert!(
        r.stderr.contains("switchover incomplete")
            && r.stderr.contains("r1: primary (accepts writes)"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("rebuild p"), "{}", r.stderr);
    lab.psql("r1", "CREATE TABLE new_primary_writable(x int)");
    let st = lab.pgrepl(&["-i", &inv, "status", "--format", "json"]);
    assert_ne!(st.code, 0);
    assert!(
        st.stdout.contains("\"primary\": \"r1\"") && st.stdout.contains("unreachable"),
        "{}",
        st.stdout
    );
    lab.pgrepl(&["-i", &inv, "rebuild", "p", "--yes"])
        .expect_code(0);
    assert_eq!(streams_from(&lab, "r1"), "p:streaming,r2:streaming");
}

/// A 1+1 cluster whose primary archives WAL with `archive_command`; timeouts.start 5 s.
fn archiving_lab(command: &str) -> (Lab, String) {
    let lab = Lab::new(&["p", "r1"]);
    let roles = &[("p", "primary", None), ("r1", "replica", None)];
    let extra = format!("    archive_mode: 'on'\n    archive_command: '{command}'\n");
    let inv = lab.ssh_inventory_with(roles, &extra, false);
    let text = std::fs::read_to_string(&inv).unwrap();
    std::fs::write(
        &inv,
        text.replace("  streaming: 60\n", "  streaming: 60\n  start: 5\n"),
    )
    .unwrap();
    let inv = inv.to_str().unwrap().to_string();
    lab.pgrepl(&["-i", &inv, "init"]).expect_code(0);
    (lab, inv)
}

/// Issue "field faults", case 6: a primary whose archiver fails would hold its clean shutdown
/// up; the switchover refuses before stopping anything and says why.
#[test]
fn a_failing_archiver_refuses_the_switchover() {
    let (lab, inv) = archiving_lab("false");
    lab.psql("p", "CREATE TABLE t(x int); SELECT pg_switch_wal()");
    let t0 = Instant::now();
    while lab.psql("p", "SELECT failed_count > 0 FROM pg_stat_archiver") != "t" {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the archiver never failed"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let before = lab.psql("p", "SELECT pg_postmaster_start_time()");
    let r = lab.pgrepl(&["-i", &inv, "switchover", "r1", "--yes"]);
    r.expect_code(4);
    assert!(
        r.stderr.contains("p's WAL archiver is failing") && r.stderr.contains("archive_command"),
        "{}",
        r.stderr
    );
    assert_eq!(lab.psql("p", "SELECT pg_postmaster_start_time()"), before);
}

/// Case 6, the stop: an archive_command that hangs holds the fast shutdown up after its
/// checkpoint; past timeouts.start the switchover sees the checkpoint written, stops what is
/// left, and completes (it neither hangs nor exits 7).
#[test]
fn a_stuck_archiver_does_not_hold_the_switchover_up() {
    let (lab, inv) = archiving_lab("sleep 120");
    lab.psql(
        "p",
        "CREATE TABLE t(x int); INSERT INTO t VALUES (1); SELECT pg_switch_wal()",
    );
    lab.wait_replayed("p", &["r1"]);
    let r = lab.pgrepl(&["-i", &inv, "switchover", "r1", "--yes"]);
    r.expect_code(0);
    assert!(r.stderr.contains("did not end within 5s"), "{}", r.stderr);
    assert_eq!(lab.psql("r1", "SELECT pg_is_in_recovery()"), "f");
    assert_eq!(lab.psql("r1", "SELECT count(*) FROM t"), "1");
    lab.pgrepl(&["-i", &inv, "status", "--wait", "30"])
        .expect_code(0);
}

/// The same held-up shutdown in init's restart (a restart-only setting changed while the
/// archiver hangs): the primary is stopped for good and started, never left shutting down.
#[test]
fn a_stuck_archiver_does_not_hold_an_init_restart_up() {
    let (lab, inv) = archiving_lab("sleep 120");
    lab.psql(
        "p",
        "CREATE TABLE t(x int); INSERT INTO t VALUES (1); SELECT pg_switch_wal()",
    );
    let text = std::fs::read_to_string(&inv).unwrap();
    std::fs::write(
        &inv,
        text.replace("    shared_buffers: 16MB\n", "    shared_buffers: 24MB\n"),
    )
    .unwrap();
    lab.pgrepl(&["-i", &inv, "init", "--yes"]).expect_code(0);
    assert_eq!(lab.psql("p", "SELECT pg_is_in_recovery()"), "f");
    assert_eq!(lab.psql("p", "SHOW shared_buffers"), "24MB");
    lab.pgrepl(&["-i", &inv, "status", "--wait", "30"])
        .expect_code(0);
}
