//! Benchmark (ignored in the normal run; `scripts/bench-routers` runs it): three write probes
//! insert every 10 ms at once — through a PgBouncer write route, through HAProxy's write port,
//! and through a libpq multi-host string (the baseline, same run) — while pgrepl switches over
//! back and forth N times (PGREPL_BENCH_RUNS, default 6), then fails over twice (kill -9 of the
//! primary, promote, rebuild). Per probe and run: writes that failed (client-visible errors),
//! acknowledged writes missing on the new primary, the longest stall between two acknowledged
//! writes; then medians, and each router's median stall as a ratio to the baseline's. For
//! promote: from the start of `pgrepl promote` to the first write acknowledged through each
//! route. fsync stays on. Prints figures; asserts only that nothing acknowledged was lost.

use std::time::Instant;

use crate::harness::{json_doc, pgrepl, Lab};
use crate::switchover::{missing_in, ProbeRun};

/// (probe name, database, connection string): each probe has a database of its own.
fn probes(lab: &Lab) -> Vec<(&'static str, &'static str, String)> {
    let rt = &lab.host("rt").address;
    let hosts: Vec<&str> = lab
        .hosts
        .iter()
        .filter(|h| h.name != "rt")
        .map(|h| h.address.as_str())
        .collect();
    vec![
        (
            "pgbouncer",
            "app",
            format!("host={rt} port=6432 user=app dbname=app"),
        ),
        (
            "haproxy",
            "app2",
            format!("host={rt} port=5435 user=app dbname=app2"),
        ),
        (
            "libpq",
            "app3",
            format!(
                "host={} port=5432 user=app dbname=app3 target_session_attrs=read-write",
                hosts.join(",")
            ),
        ),
    ]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

#[test]
#[ignore = "benchmark: run with scripts/bench-routers"]
fn bench_routers() {
    println!();
    let runs: usize = std::env::var("PGREPL_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6);
    let lab = Lab::new(&["p", "r1", "r2", "rt"]);
    let roles = [
        ("p", "primary", None),
        ("r1", "replica", None),
        ("r2", "replica", None),
    ];
    let inv = lab.ssh_inventory_with(&roles, "", true);
    let rt = lab.host("rt").address.clone();
    let mut text = std::fs::read_to_string(&inv).unwrap();
    text.push_str(&format!(
        "roles:\n  - {{name: app, password_file: {pw}, clients: [{runner}/32]}}\ndatabases:\n  - name: app\n  - name: app2\n  - name: app3\nrouters:\n  - {{name: pgb, kind: pgbouncer, address: {rt}, dir: '{d}/routers/{{router}}', ports: {{write: 6432, read: 6433}}}}\n  - {{name: ha, kind: haproxy, address: {rt}, dir: '{d}/routers/{{router}}', ports: {{write: 5435, read: 5436, stats: 8404}}}}\n",
        pw = lab.password_file.display(),
        runner = lab.runner_address(),
        d = lab.dir.display()
    ));
    std::fs::write(&inv, text).unwrap();
    std::fs::create_dir_all(lab.dir.join("routers")).unwrap();
    crate::harness::sh(&[
        "chown",
        &format!("{}:", lab.os_user),
        lab.dir.join("routers").to_str().unwrap(),
    ]);
    let inv = inv.to_str().unwrap();
    lab.pgrepl(&["-i", inv, "init"]).expect_code(0);
    for db in ["app", "app2", "app3"] {
        lab.psql_db("p", db, "CREATE TABLE probe_ids(id bigint PRIMARY KEY, at timestamptz DEFAULT clock_timestamp()); ALTER TABLE probe_ids OWNER TO app");
    }
    let started = Instant::now();
    let running: Vec<(&str, &str, ProbeRun)> = probes(&lab)
        .into_iter()
        .map(|(n, db, c)| (n, db, ProbeRun::start_with(&c, &lab.password)))
        .collect();

    let mut stalls: Vec<Vec<f64>> = vec![Vec::new(); running.len()];
    let (mut errors, mut lost) = (vec![0i64; running.len()], vec![0usize; running.len()]);
    for i in 0..runs {
        let to = if i % 2 == 0 { "r1" } else { "p" };
        let from: Vec<usize> = running
            .iter()
            .map(|(_, _, p)| p.count().saturating_sub(1))
            .collect();
        let r = lab.pgrepl(&["-i", inv, "switchover", to, "--yes", "--format", "json"]);
        r.expect_code(0);
        let gap = json_doc(&r.stdout)["write_gap_seconds"]
            .as_f64()
            .unwrap_or(f64::NAN);
        let mut line = format!(
            "routers switchover run {}: to {to}: pgrepl's write gap {gap:.3}s",
            i + 1
        );
        for (k, (name, db, p)) in running.iter().enumerate() {
            p.wait_for_acks(50);
            let (stall, err, miss) = (
                p.longest_gap_since(from[k]),
                p.errors_since(from[k]),
                missing_in(&lab, to, db, &p.ids()),
            );
            stalls[k].push(stall);
            errors[k] += err;
            lost[k] += miss;
            line.push_str(&format!(
                "; {name}: stall {stall:.3}s, errors {err}, lost {miss}"
            ));
        }
        println!("{line}");
    }
    let base = median(stalls[2].clone());
    for (k, (name, _, _)) in running.iter().enumerate() {
        let m = median(stalls[k].clone());
        println!("routers switchover: {name}: {runs} runs, median longest stall {m:.3}s ({:.2}x libpq's {base:.3}s), max {:.3}s, client-visible errors {}, acknowledged writes lost {}", m / base, stalls[k].iter().cloned().fold(0.0, f64::max), errors[k], lost[k]);
        assert_eq!(lost[k], 0, "{name} lost acknowledged writes");
    }

    // Failover: kill -9 of the primary, promote the other, rebuild; twice (there and back).
    let mut primary = if runs % 2 == 1 { "r1" } else { "p" };
    for _ in 0..2 {
        let target = if primary == "p" { "r1" } else { "p" };
        lab.kill9_postmaster(primary);
        let t0 = started.elapsed().as_millis() as u64;
        let r = pgrepl(
            &["-i", inv, "promote", target, "--yes", "--format", "json"],
            &[],
        );
        r.expect_code(0);
        let writable = json_doc(&r.stdout)["seconds_to_writable"]
            .as_f64()
            .unwrap_or(f64::NAN);
        let mut line = format!("routers promote {target} after kill -9 of {primary}: writable {writable:.3}s after pgrepl started");
        for (name, _, p) in &running {
            p.wait_for_acks(20);
            let first = p
                .acked
                .lock()
                .unwrap()
                .iter()
                .find(|(_, ms)| *ms >= t0)
                .map(|(_, ms)| ms - t0);
            line.push_str(&format!(
                "; {name}: first write {:.3}s after pgrepl started",
                first.unwrap_or(u64::MAX) as f64 / 1000.0
            ));
        }
        println!("{line}");
        lab.pgrepl(&["-i", inv, "rebuild", primary, "--yes"])
            .expect_code(0);
        primary = target;
    }
}
