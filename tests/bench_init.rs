//! Benchmark (ignored in the normal run; `scripts/bench-init` runs it): wall time of
//! `pgrepl init` for a primary and two empty replicas over SSH, on fresh test hosts each run.
//! Prints every run and the median; asserts nothing about time.

use std::time::Instant;

use crate::harness::Lab;

#[test]
#[ignore = "benchmark: run with scripts/bench-init"]
fn bench_init_over_ssh() {
    println!(); // the test harness leaves its "test … ..." line open
    let runs: usize = std::env::var("PGREPL_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let mut secs = Vec::new();
    for i in 0..runs {
        let lab = Lab::new(&["pg1", "pg2", "pg3"]);
        let inv = lab.ssh_inventory_with(
            &[
                ("pg1", "primary", None),
                ("pg2", "replica", None),
                ("pg3", "replica", None),
            ],
            "",
            true,
        );
        let t0 = Instant::now();
        let r = lab.pgrepl(&["-i", inv.to_str().unwrap(), "init"]);
        r.expect_code(0);
        if std::env::var_os("PGREPL_BENCH_VERBOSE").is_some() {
            eprintln!("{}", r.stderr);
        }
        let s = t0.elapsed().as_secs_f64();
        println!(
            "run {}: pgrepl init (primary + 2 replicas over ssh): {s:.2}s",
            i + 1
        );
        secs.push(s);
    }
    secs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "median of {runs}: {:.2}s (min {:.2}s, max {:.2}s)",
        secs[runs / 2],
        secs[0],
        secs[runs - 1]
    );
}
