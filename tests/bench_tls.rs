//! Benchmark (ignored in the normal run; `scripts/bench-tls` runs it): what TLS costs, each
//! figure beside the same measurement without TLS in the same run. Under the write probe (every
//! 10 ms, fsync on): the longest gap between acknowledged writes during switchovers, TLS on and
//! `tls: off`; during `tls renew` and `tls renew --ca` (with their wall time); and the wall time
//! of `init` (primary + 2 replicas over SSH). Medians of PGREPL_BENCH_RUNS (default 4). Prints
//! figures; asserts only that no acknowledged write is lost.

use std::time::Instant;

use crate::harness::{use_tls_build, Lab};
use crate::switchover::{missing_on, ProbeRun};

const ROLES: &[(&str, &str, Option<&str>)] = &[
    ("p", "primary", None),
    ("r1", "replica", None),
    ("r2", "replica", None),
];

/// A lab with the probe's access, TLS on or off; the wall time of its init.
fn lab(tls: bool) -> (Lab, String, f64) {
    let lab = Lab::new(&["p", "r1", "r2"]);
    let rule = format!(
        "{{type: host, database: postgres, user: probe, address: {}/32, method: scram-sha-256}}",
        lab.runner_address()
    );
    let inv = lab.ssh_inventory_full(ROLES, "", true, &[rule]);
    if !tls {
        let text = std::fs::read_to_string(&inv).unwrap();
        std::fs::write(&inv, format!("{text}tls: off\n")).unwrap();
    }
    let inv = inv.to_str().unwrap().to_string();
    let t0 = Instant::now();
    lab.pgrepl(&["-i", &inv, "init"]).expect_code(0);
    let secs = t0.elapsed().as_secs_f64();
    lab.psql("p", "CREATE ROLE probe LOGIN PASSWORD 'probe-pw'; CREATE TABLE probe_ids(id bigint PRIMARY KEY, at timestamptz DEFAULT clock_timestamp()); GRANT SELECT, INSERT ON probe_ids TO probe");
    (lab, inv, secs)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// The longest write gap of each of `runs` switchovers back and forth.
fn switchover_gaps(lab: &Lab, inv: &str, probe: &ProbeRun, runs: usize) -> Vec<f64> {
    (0..runs)
        .map(|i| {
            let to = if i % 2 == 0 { "r1" } else { "p" };
            let from = probe.count().saturating_sub(1);
            lab.pgrepl(&["-i", inv, "switchover", to, "--yes"])
                .expect_code(0);
            probe.wait_for_acks(50);
            probe.longest_gap_since(from)
        })
        .collect()
}

#[test]
#[ignore = "benchmark: run with scripts/bench-tls"]
fn bench_tls() {
    println!(); // the test harness leaves its "test … ..." line open
    let major = use_tls_build();
    let runs: usize = std::env::var("PGREPL_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    println!("PostgreSQL {major}, {runs} runs each");
    let mut init = [Vec::new(), Vec::new()];
    let mut gaps = [Vec::new(), Vec::new()];
    for (k, tls) in [(0, false), (1, true)] {
        for _ in 0..runs.min(3) {
            init[k].push(lab(tls).2);
        }
        let (lab, inv, _) = lab(tls);
        let probe = ProbeRun::start(&lab);
        gaps[k] = switchover_gaps(&lab, &inv, &probe, runs);
        let acked = probe.ids();
        drop(probe);
        assert_eq!(
            missing_on(
                &lab,
                if runs.is_multiple_of(2) { "p" } else { "r1" },
                &acked
            ),
            0
        );
        if tls {
            renewals(&lab, &inv, runs);
        }
    }
    let (i0, i1) = (median(init[0].clone()), median(init[1].clone()));
    println!(
        "init (primary + 2 replicas over ssh): tls off {i0:.2}s, TLS on {i1:.2}s (×{:.2})",
        i1 / i0
    );
    let (g0, g1) = (median(gaps[0].clone()), median(gaps[1].clone()));
    println!(
        "switchover, longest write gap: tls off {g0:.3}s, TLS on {g1:.3}s (×{:.2})",
        g1 / g0
    );
}

/// `tls renew` and `tls renew --ca` under the probe: wall time and longest write gap, beside the
/// probe's own longest gap over as long with nothing happening.
fn renewals(lab: &Lab, inv: &str, runs: usize) {
    let probe = ProbeRun::start(lab);
    for args in [&["tls", "renew"][..], &["tls", "renew", "--ca"]] {
        let (mut walls, mut gaps, mut idle) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            let from = probe.count().saturating_sub(1);
            let t0 = Instant::now();
            let mut argv = vec!["-i", inv];
            argv.extend_from_slice(args);
            lab.pgrepl(&argv).expect_code(0);
            let wall = t0.elapsed();
            walls.push(wall.as_secs_f64());
            gaps.push(probe.longest_gap_since(from));
            let from = probe.count().saturating_sub(1);
            std::thread::sleep(wall); // the baseline: the probe alone for as long
            idle.push(probe.longest_gap_since(from));
        }
        println!(
            "pgrepl {}: wall {:.2}s; longest write gap {:.3}s (probe alone over as long: {:.3}s)",
            args.join(" "),
            median(walls),
            median(gaps),
            median(idle)
        );
    }
    let acked = probe.ids();
    drop(probe);
    assert_eq!(missing_on(lab, "p", &acked), 0);
}
