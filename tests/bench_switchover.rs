//! Benchmark (ignored in the normal run; `scripts/bench-switchover` runs it): the write probe
//! inserts every 10 ms through `target_session_attrs=read-write` while pgrepl switches over back
//! and forth N times (PGREPL_BENCH_RUNS, default 6). For each run: the longest gap between two
//! acknowledged writes, and the acknowledged ids missing on the new primary; then median and max.
//! fsync stays on. Prints figures; asserts nothing about time.

use crate::switchover::{lab_with_probe, missing_on, ProbeRun};

#[test]
#[ignore = "benchmark: run with scripts/bench-switchover"]
fn bench_switchover() {
    println!(); // the test harness leaves its "test … ..." line open
    let runs: usize = std::env::var("PGREPL_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6);
    let (lab, inv) = lab_with_probe(true);
    let probe = ProbeRun::start(&lab);
    let mut gaps = Vec::new();
    let mut lost_total = 0;
    for i in 0..runs {
        let to = if i % 2 == 0 { "r1" } else { "p" };
        let from_idx = probe.count().saturating_sub(1);
        let r = lab.pgrepl(&["-i", &inv, "switchover", to, "--yes", "--format", "json"]);
        r.expect_code(0);
        let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
        probe.wait_for_acks(50);
        let gap = probe.longest_gap_since(from_idx);
        let lost = missing_on(&lab, to, &probe.ids());
        lost_total += lost;
        println!("switchover run {}: to {to}: longest gap between acknowledged writes {gap:.3}s, acknowledged ids missing {lost} (pgrepl: writes refused for {:.3}s)", i + 1, v["write_gap_seconds"].as_f64().unwrap_or(f64::NAN));
        gaps.push(gap);
    }
    let mut sorted = gaps.clone();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "switchover: {runs} runs, median longest gap {:.3}s, max {:.3}s, acknowledged writes lost {lost_total} of {}",
        sorted[runs / 2],
        sorted[runs - 1],
        probe.count()
    );
}
