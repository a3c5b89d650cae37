//! Benchmark (ignored in the normal run; `scripts/bench-status` runs it): wall time of
//! `pgrepl status` over SSH for 3 hosts, for 12 hosts, and for 3 hosts with one postmaster
//! frozen (SIGSTOP). Prints every figure and the medians; asserts nothing about time.

use std::time::Instant;

use crate::harness::{pgrepl, Frozen, Lab, LocalLab};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// (busy, total) jiffies of all CPUs, from /proc/stat.
fn cpu() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/stat").unwrap();
    let v: Vec<u64> = s
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let idle = v[3] + v.get(4).copied().unwrap_or(0);
    let total: u64 = v.iter().take(8).sum();
    (total - idle, total)
}

/// Runs `f` `runs` times; returns the wall times and the machine's mean CPU use meanwhile (0-1).
fn timed(runs: usize, mut f: impl FnMut()) -> (Vec<f64>, f64) {
    let (b0, t0c) = cpu();
    let t = (0..runs)
        .map(|_| {
            let t0 = Instant::now();
            f();
            t0.elapsed().as_secs_f64()
        })
        .collect();
    let (b1, t1c) = cpu();
    (t, (b1 - b0) as f64 / (t1c - t0c).max(1) as f64)
}

fn time_status(
    lab: &Lab,
    inv: &str,
    runs: usize,
    extra: &[&str],
    code: i32,
    what: &str,
) -> Vec<f64> {
    let mut args = vec!["-i", inv, "status", "--format", "json"];
    args.extend_from_slice(extra);
    let (t, busy) = timed(runs, || {
        lab.pgrepl(&args).expect_code(code);
    });
    println!(
        "{what}: runs {:?} (machine CPU busy {:.0}%)",
        t.iter().map(|s| format!("{s:.3}")).collect::<Vec<_>>(),
        busy * 100.0
    );
    t
}

#[test]
#[ignore = "benchmark: run with scripts/bench-status"]
fn bench_status() {
    println!(); // the test harness leaves its "test … ..." line open
    let runs: usize = std::env::var("PGREPL_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let names3 = ["p", "r1", "r2"];
    let lab = Lab::new(&names3);
    let roles: Vec<(&str, &str, Option<&str>)> = names3
        .iter()
        .enumerate()
        .map(|(i, n)| (*n, if i == 0 { "primary" } else { "replica" }, None))
        .collect();
    let inv = lab.init(&roles);
    let t3 = time_status(&lab, &inv, runs, &[], 0, "ssh 3 hosts");
    let frozen = Frozen::new(lab.postmaster_pid("r1"));
    let tf = time_status(
        &lab,
        &inv,
        runs.min(5),
        &["--host-timeout", "2"],
        10,
        "ssh 3 hosts, r1's postmaster frozen, --host-timeout 2",
    );
    drop(frozen);
    drop(lab);

    let names12: Vec<String> = (0..12)
        .map(|i| {
            if i == 0 {
                "p".to_string()
            } else {
                format!("r{i}")
            }
        })
        .collect();
    let refs: Vec<&str> = names12.iter().map(String::as_str).collect();
    let lab = Lab::new(&refs);
    let roles: Vec<(&str, &str, Option<&str>)> = refs
        .iter()
        .enumerate()
        .map(|(i, n)| (*n, if i == 0 { "primary" } else { "replica" }, None))
        .collect();
    let inv = lab.init(&roles);
    let t12 = time_status(&lab, &inv, runs, &[], 0, "ssh 12 hosts");

    drop(lab);
    let (m3, m12, mf) = (median(t3), median(t12), median(tf));
    println!("median status wall time over ssh: 3 hosts {m3:.3}s, 12 hosts {m12:.3}s (ratio {:.2}), 3 hosts with one frozen {mf:.3}s (per-host timeout 2s)", m12 / m3);

    // The same through the local transport (loopback, no ssh handshakes).
    let mut local = Vec::new();
    for n in [3usize, 12] {
        let c = LocalLab::new(n);
        let inv = c.inventory("16MB");
        let inv = inv.to_str().unwrap();
        pgrepl(&["-i", inv, "init"], &[]).expect_code(0);
        let (t, busy) = timed(runs, || {
            pgrepl(&["-i", inv, "status", "--format", "json"], &[]).expect_code(0);
        });
        println!(
            "local {n} hosts: runs {:?} (machine CPU busy {:.0}%)",
            t.iter().map(|s| format!("{s:.3}")).collect::<Vec<_>>(),
            busy * 100.0
        );
        local.push(median(t));
    }
    println!("median status wall time over the local transport: 3 hosts {:.3}s, 12 hosts {:.3}s (ratio {:.2})", local[0], local[1], local[1] / local[0]);
}
