//! What PostgreSQL 18 changes, on real 18 servers over SSH (CI runs the full suite on 18): an
//! `oauth` pg_hba line that the server loads; `idle_replication_slot_timeout` warned about by
//! `check`, a slot it invalidated reported by `status` for what it is, and re-created by `init`.
//! On an older major (a developer's default 15) there is nothing of 18 to test: it says so.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::{json_doc, pg_version, validate_json, Lab};

const ROLES: &[(&str, &str, Option<&str>)] = &[
    ("p", "primary", None),
    ("r1", "replica", None),
    ("r2", "replica", None),
];

/// True (and a note on stderr) when the suite runs a major below 18.
fn below_18() -> bool {
    let v = pg_version();
    if v < 18 {
        eprintln!("PostgreSQL {v}: nothing of 18 to test (CI runs this on 18)");
    }
    v < 18
}

/// `check --format json`: exit 0, its warnings.
fn check_warnings(lab: &Lab, inv: &str) -> Vec<serde_json::Value> {
    let c = lab.pgrepl(&["-i", inv, "check", "--format", "json"]);
    c.expect_code(0);
    let w = json_doc(&c.stdout)["warnings"].as_array().unwrap().clone();
    for x in &w {
        let line = format!(
            "{} [{}]: {}",
            x["host"].as_str().unwrap(),
            x["check"].as_str().unwrap(),
            x["message"].as_str().unwrap()
        );
        assert!(
            c.stderr.contains(&line),
            "{line} not on stderr: {}",
            c.stderr
        );
    }
    w
}

#[test]
fn oauth_line_loads_and_a_slot_invalidated_by_idle_timeout_is_reported_and_recreated() {
    if below_18() {
        return;
    }
    let lab = Lab::new(&["p", "r1", "r2"]);
    let oauth = "{type: host, database: all, user: all, address: 10.0.0.0/8, method: oauth, options: {issuer: 'https://issuer.example.com', scope: openid email}}".to_string();
    let inv = lab.ssh_inventory_full(
        ROLES,
        "    oauth_validator_libraries: pgrepl_test_validator\n",
        false,
        &[oauth],
    );
    let inv = inv.to_str().unwrap().to_string();
    lab.pgrepl(&["-i", &inv, "init"]).expect_code(0);
    for h in ["p", "r1", "r2"] {
        assert_eq!(
            lab.psql(h, "SELECT count(*) FROM pg_hba_file_rules WHERE auth_method = 'oauth' AND error IS NULL AND 'issuer=https://issuer.example.com' = ANY(options) AND 'scope=openid email' = ANY(options)"),
            "1",
            "{h}"
        );
    }
    assert_eq!(check_warnings(&lab, &inv), Vec::<serde_json::Value>::new());

    // The timeout set on the live primary (not in the inventory): check names the host.
    lab.psql("p", "ALTER SYSTEM SET idle_replication_slot_timeout = '1s'");
    lab.psql("p", "SELECT pg_reload_conf()");
    lab.stop_server("r1");
    let w = check_warnings(&lab, &inv);
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0]["host"], "p");
    assert!(
        w[0]["message"]
            .as_str()
            .unwrap()
            .contains("idle_replication_slot_timeout = 1s"),
        "{w:?}"
    );

    // r1's slot, idle over a second, is invalidated at the next checkpoint.
    let start = Instant::now();
    loop {
        lab.psql("p", "CHECKPOINT");
        let s = lab.psql("p", "SELECT wal_status || ':' || coalesce(invalidation_reason, '') FROM pg_replication_slots WHERE slot_name = 'r1'");
        if s == "lost:idle_timeout" {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "r1's slot: {s}");
        std::thread::sleep(Duration::from_millis(300));
    }

    // status: slot_lost says why, and the fix is a plain rebuild, not a clone.
    let st = lab.pgrepl(&["-i", &inv, "status", "--format", "json"]);
    st.expect_code(11);
    validate_json(
        &st.stdout,
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/status.schema.json"),
    );
    let v = json_doc(&st.stdout);
    let lost: Vec<_> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "slot_lost")
        .collect();
    assert_eq!(lost.len(), 1, "{v}");
    assert!(
        lost[0]["message"]
            .as_str()
            .unwrap()
            .contains("idle_replication_slot_timeout"),
        "{v}"
    );
    let fix = lost[0]["fix"].as_str().unwrap();
    assert!(
        fix.contains("rebuild r1") && !fix.contains("--method clone"),
        "{fix}"
    );
    let slot = v["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["host"] == "p" && s["name"] == "r1")
        .unwrap();
    assert_eq!(slot["invalidation_reason"], "idle_timeout");
    assert_eq!(slot["safe_wal_size"], serde_json::Value::Null);
    let table = lab.pgrepl(&["-i", &inv, "status"]);
    table.expect_code(11);
    let row = table
        .stdout
        .lines()
        .find(|l| l.starts_with("r1 ") && l.contains(" lost "))
        .unwrap_or_else(|| panic!("{}", table.stdout));
    assert!(row.ends_with(" -"), "SAFE_WAL_SIZE of a lost slot: {row}");

    // init re-creates the slot and r1 streams again, well before timeouts.streaming (60 s).
    lab.psql("p", "ALTER SYSTEM RESET idle_replication_slot_timeout");
    lab.psql("p", "SELECT pg_reload_conf()");
    lab.start_server("r1");
    let t0 = Instant::now();
    let again = lab.pgrepl(&["-i", &inv, "init"]);
    again.expect_code(0);
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "init took {:?}",
        t0.elapsed()
    );
    assert!(
        again
            .stderr
            .contains("p: dropped slot r1, which idle_replication_slot_timeout had invalidated"),
        "{}",
        again.stderr
    );
    assert!(
        again
            .stderr
            .contains("p: created physical replication slot r1 for r1"),
        "{}",
        again.stderr
    );
    assert_eq!(
        lab.psql("p", "SELECT string_agg(slot_name || ':' || active || ':' || wal_status, ',' ORDER BY slot_name) FROM pg_replication_slots"),
        "r1:true:reserved,r2:true:reserved"
    );
    lab.pgrepl(&["-i", &inv, "status", "--wait", "30"])
        .expect_code(0);
}
