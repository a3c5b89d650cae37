//! Benchmark (ignored in the normal run; `scripts/bench-failover` runs it):
//! - time from `pgrepl promote` starting to the first write the new primary accepts (an outside
//!   writer retries an INSERT every few ms), after a SIGKILL of the primary; median of 3;
//! - `pgrepl rebuild` of the old primary by rewind and by clone, at pgbench scales (70 ≈ 1 GB,
//!   350 ≈ 5 GB; PGREPL_BENCH_SCALES="70 350"), 3 runs each.
//!
//! fsync stays on. Prints figures; asserts nothing about time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::harness::{pg_tool, psql_at, Lab};

const ROLES: &[(&str, &str, Option<&str>)] = &[
    ("p", "primary", None),
    ("r1", "replica", None),
    ("r2", "replica", None),
];

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn kill9(lab: &Lab, host: &str) {
    unsafe { libc::kill(lab.postmaster_pid(host), libc::SIGKILL) };
    let t0 = Instant::now();
    while lab.server_running(host) {
        assert!(t0.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Seconds from promote's start to the first accepted INSERT on `target`.
fn promote_to_first_write(lab: &Lab, inv: &str, target: &str) -> (f64, f64) {
    let h = lab.host(target).clone();
    let os = lab.os_user.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let t0 = Instant::now();
    let writer = std::thread::spawn(move || {
        while !stop2.load(Ordering::Relaxed) {
            let port = h.pg_port.to_string();
            let psql = pg_tool("psql");
            let ok = std::process::Command::new("runuser")
                .args([
                    "-u",
                    &os,
                    "--",
                    &psql,
                    "-X",
                    "-q",
                    "-h",
                    h.socket_dir.to_str().unwrap(),
                    "-p",
                    &port,
                    "-d",
                    "postgres",
                    "-c",
                    "INSERT INTO probe DEFAULT VALUES",
                ])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                return Some(t0.elapsed().as_secs_f64());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    });
    let r = lab.pgrepl(&["-i", inv, "promote", target, "--yes", "--format", "json"]);
    r.expect_code(0);
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    let first = loop {
        if writer.is_finished() {
            break writer.join().unwrap().expect("a write succeeded");
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no write accepted within 60s"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    stop.store(true, Ordering::Relaxed);
    (first, v["seconds_to_writable"].as_f64().unwrap())
}

fn rebuild(lab: &Lab, inv: &str, host: &str, method: &str) -> f64 {
    let t0 = Instant::now();
    let r = lab.pgrepl(&[
        "-i", inv, "rebuild", host, "--method", method, "--yes", "--format", "json",
    ]);
    r.expect_code(0);
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["method"], method, "{}", r.stderr);
    t0.elapsed().as_secs_f64()
}

#[test]
#[ignore = "benchmark: run with scripts/bench-failover"]
fn bench_failover() {
    println!(); // the test harness leaves its "test … ..." line open
                // Promote to first write, median of 3 (a fresh cluster each time).
    let mut firsts = Vec::new();
    let mut internal = Vec::new();
    for i in 0..3 {
        let lab = Lab::new(&["p", "r1", "r2"]);
        let inv = lab.init_with(ROLES, true);
        lab.psql(
            "p",
            "CREATE TABLE probe(id bigserial, at timestamptz DEFAULT now())",
        );
        lab.wait_replayed("p", &["r1", "r2"]);
        kill9(&lab, "p");
        let (first, writable) = promote_to_first_write(&lab, &inv, "r1");
        println!("promote run {}: first accepted write {first:.3}s after pgrepl promote started (pgrepl saw it writable at {writable:.3}s)", i + 1);
        firsts.push(first);
        internal.push(writable);
    }
    println!(
        "promote: median time to first accepted write {:.3}s (pgrepl's own measure: {:.3}s)",
        median(firsts),
        median(internal)
    );

    let scales: Vec<u32> = std::env::var("PGREPL_BENCH_SCALES")
        .unwrap_or_else(|_| "70 350".into())
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect();
    for scale in scales {
        let lab = Lab::new(&["p", "r1", "r2"]);
        let inv = lab.init_with(ROLES, true);
        let p = lab.host("p").clone();
        let t0 = Instant::now();
        let pgbench = pg_tool("pgbench");
        lab.run_on(
            "p",
            &[
                &pgbench,
                "-i",
                "-q",
                "-s",
                &scale.to_string(),
                "-h",
                p.socket_dir.to_str().unwrap(),
                "-p",
                "5432",
                "postgres",
            ],
        );
        let size = psql_at(
            &lab.os_user,
            &p.socket_dir,
            5432,
            "SELECT pg_size_pretty(pg_database_size('postgres'))",
        );
        println!(
            "scale {scale}: pgbench -i took {:.0}s, database {size}",
            t0.elapsed().as_secs_f64()
        );
        lab.wait_replayed("p", &["r1", "r2"]);
        kill9(&lab, "p");
        lab.pgrepl(&["-i", &inv, "promote", "r1", "--yes"])
            .expect_code(0);
        lab.psql("r1", "UPDATE pgbench_branches SET bbalance = bbalance + 1");
        let mut rw = Vec::new();
        let mut cl = Vec::new();
        for i in 0..3 {
            let r = rebuild(&lab, &inv, "p", "rewind");
            println!(
                "scale {scale} run {}: rebuild by rewind {r:.2}s{}",
                i + 1,
                if i == 0 {
                    " (after the failover: diverged)"
                } else {
                    " (already following)"
                }
            );
            rw.push(r);
        }
        for i in 0..3 {
            let c = rebuild(&lab, &inv, "p", "clone");
            println!("scale {scale} run {}: rebuild by clone {c:.2}s", i + 1);
            cl.push(c);
        }
        println!(
            "scale {scale} ({size}): median rebuild by rewind {:.2}s, by clone {:.2}s",
            median(rw),
            median(cl)
        );
    }
}
