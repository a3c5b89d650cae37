//! `pgrepl status` against real clusters over SSH: healthy output in all three formats checked
//! by real validators; a stopped replica; a frozen walreceiver; a frozen postmaster; two
//! writable nodes.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::{promtool_check, validate_json, Frozen, Lab};

fn schema() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/status.schema.json")
}

fn json(lab: &Lab, inv: &str, extra: &[&str], code: i32) -> serde_json::Value {
    let mut args = vec!["-i", inv, "status", "--format", "json"];
    args.extend_from_slice(extra);
    let r = lab.pgrepl(&args);
    r.expect_code(code);
    validate_json(&r.stdout, &schema());
    serde_json::from_str(&r.stdout).unwrap()
}

/// The findings but notices (`tls_off` on a build without SSL: see tests/tls.rs).
fn codes(v: &serde_json::Value) -> Vec<(String, String, String)> {
    crate::harness::findings_beyond_notice(v)
        .into_iter()
        .map(|f| {
            (
                f["severity"].as_str().unwrap().to_string(),
                f["code"].as_str().unwrap().to_string(),
                f["host"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn replica<'a>(v: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    v["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["host"] == name)
        .unwrap_or_else(|| panic!("no replica {name} in {v}"))
}

const ROLES: &[(&str, &str, Option<&str>)] = &[
    ("p", "primary", None),
    ("r1", "replica", None),
    ("r2", "replica", None),
];

#[test]
fn healthy_cluster_in_every_format() {
    let lab = Lab::new(&["p", "r1", "r2"]);
    let inv = lab.init(ROLES);
    lab.psql("p", "CREATE TABLE h AS SELECT 1 AS x");
    let v = json(&lab, &inv, &["--wait", "30"], 0);
    assert_eq!(v["healthy"], true);
    assert_eq!(v["primary"], "p");
    assert!(crate::harness::findings_beyond_notice(&v).is_empty(), "{v}");
    let sysid = lab.psql("p", "SELECT system_identifier FROM pg_control_system()");
    for h in v["hosts"].as_array().unwrap() {
        assert_eq!(h["reachable"], true);
        assert_eq!(h["timeline"], 1);
        assert_eq!(h["system_identifier"], sysid.as_str());
        assert!(h["server_version"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}.", crate::harness::pg_version())));
    }
    for r in ["r1", "r2"] {
        let rv = replica(&v, r);
        assert_eq!(rv["upstream"], "p");
        assert_eq!(rv["state"], "streaming");
        assert_eq!(rv["sync_state"], "async");
        assert!(
            rv["behind_bytes"].as_u64().unwrap() < 16 << 20,
            "after --wait, {r} is within the lag threshold: {rv}"
        );
    }
    // The primary writes WAL of its own now and then (running-xacts records), so "caught up" is
    // polled, not assumed: pgrepl must report 0 bytes behind once the replicas have replayed all.
    crate::harness::wait_for(
        "both replicas 0 bytes behind",
        std::time::Duration::from_secs(20),
        || {
            let w = json(&lab, &inv, &[], 0);
            ["r1", "r2"]
                .iter()
                .all(|r| replica(&w, r)["behind_bytes"] == 0)
        },
    );
    let slots = v["slots"].as_array().unwrap();
    assert_eq!(slots.len(), 2);
    assert!(slots
        .iter()
        .all(|s| s["active"] == true && s["host"] == "p" && s["wal_status"] == "reserved"));

    let prom = lab.pgrepl(&["-i", &inv, "status", "--format", "prometheus"]);
    prom.expect_code(0);
    promtool_check(&prom.stdout);
    for line in [
        "pgrepl_up{cluster=",
        "pgrepl_replica_behind_bytes{cluster=",
        "pgrepl_slot_retained_bytes{cluster=",
        "pgrepl_findings{cluster=",
    ] {
        assert!(
            prom.stdout.contains(line),
            "{line} missing:\n{}",
            prom.stdout
        );
    }
    assert!(
        prom.stdout.contains(&format!(
            "pgrepl_is_primary{{cluster=\"it{}\",host=\"p\"}} 1",
            lab.id
        )),
        "{}",
        prom.stdout
    );

    let text = lab.pgrepl(&["-i", &inv, "status"]);
    text.expect_code(0);
    assert!(
        text.stdout
            .starts_with(&format!("cluster it{}: OK", lab.id)),
        "{}",
        text.stdout
    );
    assert!(
        !text.stdout.contains('\x1b'),
        "no colors without a terminal"
    );
    let watch = lab.pgrepl(&["-i", &inv, "status", "--watch"]);
    watch.expect_code(1);
    assert!(watch.stderr.contains("--wait"), "{}", watch.stderr);
}

#[test]
fn stopped_replica_frozen_walreceiver_and_frozen_postmaster() {
    let lab = Lab::new(&["p", "r1", "r2"]);
    let inv = lab.init(ROLES);

    // A frozen walreceiver: the replica falls further behind while the primary writes.
    let frozen = lab.freeze_walreceiver("r1");
    lab.psql(
        "p",
        "CREATE TABLE big AS SELECT g, repeat('x', 100) AS pad FROM generate_series(1, 20000) g",
    );
    let a = json(&lab, &inv, &["--lag-warning-bytes", "1kB"], 10);
    lab.psql(
        "p",
        "INSERT INTO big SELECT g, repeat('y', 100) FROM generate_series(1, 20000) g",
    );
    let b = json(&lab, &inv, &["--lag-warning-bytes", "1kB"], 10);
    let (ba, bb) = (
        replica(&a, "r1")["behind_bytes"].as_u64().unwrap(),
        replica(&b, "r1")["behind_bytes"].as_u64().unwrap(),
    );
    assert!(
        ba > 0 && bb > ba,
        "behind_bytes must grow while the walreceiver is frozen: {ba} then {bb}"
    );
    assert!(
        codes(&b).contains(&("warning".into(), "lag".into(), "r1".into())),
        "{:?}",
        codes(&b)
    );
    drop(frozen);
    json(&lab, &inv, &["--wait", "60"], 0);

    // A stopped replica: unreachable, its slot inactive and retaining WAL after writes.
    lab.stop_server("r2");
    lab.psql(
        "p",
        "INSERT INTO big SELECT g, repeat('z', 100) FROM generate_series(1, 20000) g",
    );
    let v = json(&lab, &inv, &[], 10);
    assert_eq!(v["severity"], "warning");
    let c = codes(&v);
    assert!(
        c.contains(&("warning".into(), "unreachable".into(), "r2".into())),
        "{c:?}"
    );
    let slot = v["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "r2")
        .unwrap();
    assert_eq!(slot["active"], false);
    assert!(
        slot["retained_bytes"].as_i64().unwrap() > 1_000_000,
        "{slot}"
    );
    assert!(
        c.contains(&("warning".into(), "slot_inactive".into(), "p".into())),
        "{c:?}"
    );
    let fix = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "slot_inactive")
        .unwrap()["fix"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(fix.contains("pg_ctl start"), "{fix}");
    lab.start_server("r2");
    json(&lab, &inv, &["--wait", "60"], 0);

    // A frozen postmaster: the call returns after the per-host timeout (not hanging), the
    // host is unreachable, the others are reported in full.
    let pm = Frozen::new(lab.postmaster_pid("r1"));
    let t0 = Instant::now();
    let v = json(&lab, &inv, &["--host-timeout", "2"], 10);
    let took = t0.elapsed();
    assert!(
        took < Duration::from_secs(2 + 8),
        "status took {took:?} with a 2 s per-host timeout"
    );
    let r1 = v["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "r1")
        .unwrap();
    assert_eq!(r1["reachable"], false);
    assert!(
        r1["error"].as_str().unwrap().contains("timeouts.status"),
        "{r1}"
    );
    assert_eq!(replica(&v, "r2")["streaming"], true);
    drop(pm);
}

#[test]
fn two_writable_nodes_are_split_brain() {
    let lab = Lab::new(&["p", "r1", "r2"]);
    let inv = lab.init(ROLES);
    lab.psql("r2", "SELECT pg_promote(true, 60)");
    let v = json(&lab, &inv, &[], 11);
    assert_eq!(v["severity"], "critical");
    assert_eq!(v["primary"], serde_json::Value::Null);
    let f = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "split_brain")
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(f["severity"], "critical");
    assert!(f["message"].as_str().unwrap().contains("p, r2"), "{f}");
    // What the old primary wrote since r2 left timeline 1 is said (read from r2's history).
    assert!(
        f["message"].as_str().unwrap().contains("; p wrote ")
            && f["message"].as_str().unwrap().contains("after the fork at"),
        "{f}"
    );
    // The newer primary (r2, timeline 2) is kept; the old one is stopped and rebuilt.
    let fix = f["fix"].as_str().unwrap();
    assert!(fix.starts_with("keep r2 (timeline 2"), "{f}");
    assert!(
        fix.contains("pg_ctl stop") && fix.contains(&lab.host("p").address),
        "{f}"
    );
    assert!(!fix.contains(&lab.host("r2").address), "{f}");
    // r1 still streams from p, so it replayed p's writes after the fork: rebuilt too.
    assert!(
        fix.contains("rebuild p; and the standbys that replayed their writes: ")
            && fix.ends_with("rebuild r1"),
        "{f}"
    );
    let r2 = v["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "r2")
        .unwrap();
    assert_eq!(r2["role"], "primary");
    assert_eq!(r2["timeline"], 2);
    let prom = lab.pgrepl(&["-i", &inv, "status", "--format", "prometheus"]);
    prom.expect_code(11);
    promtool_check(&prom.stdout);
    assert!(
        prom.stdout.contains(&format!(
            "pgrepl_findings{{cluster=\"it{}\",severity=\"critical\"}} 1",
            lab.id
        )),
        "{}",
        prom.stdout
    );
}
