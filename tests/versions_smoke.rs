//! The smoke run CI repeats on every supported PostgreSQL major besides the one the full suite
//! runs on (`scripts/test` runs it once per major, with `PGREPL_TEST_PG_BIN` and
//! `PGREPL_TEST_PG_VERSION` naming the binaries): one cluster of three real hosts over SSH taken
//! through init, a re-run that changes nothing, status in every format, a switchover there and
//! back, kill -9 of the primary and promote, and rebuild by rewind and by clone.

use std::path::Path;

use crate::harness::{json_doc, pg_version, promtool_check, validate_json, Lab};

const ROLES: &[(&str, &str, Option<&str>)] = &[
    ("p", "primary", None),
    ("r1", "replica", None),
    ("r2", "replica", None),
];

/// `application_name:state` of `primary`'s WAL senders, in name order.
fn streams_from(lab: &Lab, primary: &str) -> String {
    lab.psql(primary, "SELECT string_agg(application_name || ':' || state, ',' ORDER BY application_name) FROM pg_stat_replication")
}

/// `status` in JSON (validated against the schema), the table and Prometheus text (promtool),
/// each exit 0 once the cluster is healthy, with `primary` the primary.
fn status_all_formats(lab: &Lab, inv: &str, primary: &str) {
    let r = lab.pgrepl(&["-i", inv, "status", "--format", "json", "--wait", "30"]);
    r.expect_code(0);
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/status.schema.json");
    validate_json(&r.stdout, &schema);
    let v = json_doc(&r.stdout);
    assert_eq!(v["healthy"], true, "{v}");
    assert_eq!(v["primary"], primary, "{v}");
    for h in v["hosts"].as_array().unwrap() {
        let version = h["server_version"].as_str().unwrap();
        assert!(
            version.starts_with(&format!("{}.", pg_version())),
            "{version}"
        );
    }
    let t = lab.pgrepl(&["-i", inv, "status"]);
    t.expect_code(0);
    assert!(
        t.stdout.contains("HOST") && t.stdout.contains("SLOT"),
        "{}",
        t.stdout
    );
    let prom = lab.pgrepl(&["-i", inv, "status", "--format", "prometheus"]);
    prom.expect_code(0);
    promtool_check(&prom.stdout);
    assert!(
        prom.stdout.contains(&format!(
            "pgrepl_is_primary{{cluster=\"it{}\",host=\"{primary}\"}} 1",
            lab.id
        )),
        "{}",
        prom.stdout
    );
}

#[test]
fn init_status_switchover_failover_rebuild_on_this_major() {
    let lab = Lab::new(&["p", "r1", "r2"]);
    let inv = lab.init(ROLES);
    assert_eq!(
        lab.psql(
            "p",
            "SELECT current_setting('server_version_num')::int / 10000"
        ),
        pg_version().to_string(),
        "the servers run the major the environment names"
    );
    assert_eq!(streams_from(&lab, "p"), "r1:streaming,r2:streaming");
    lab.psql(
        "p",
        "CREATE TABLE s(id int PRIMARY KEY); INSERT INTO s SELECT generate_series(1, 1000)",
    );
    lab.wait_replayed("p", &["r1", "r2"]);

    // Re-run: nothing changes, nothing restarts.
    let before = lab.snapshot_all();
    let again = lab.pgrepl(&["-i", &inv, "init"]);
    again.expect_code(0);
    assert!(
        again.stderr.contains("init: no changes"),
        "{}",
        again.stderr
    );
    assert_eq!(lab.snapshot_all(), before);

    status_all_formats(&lab, &inv, "p");

    // Switchover there and back.
    lab.pgrepl(&["-i", &inv, "switchover", "r1", "--yes"])
        .expect_code(0);
    assert_eq!(lab.psql("r1", "SELECT pg_is_in_recovery()"), "f");
    assert_eq!(streams_from(&lab, "r1"), "p:streaming,r2:streaming");
    lab.psql("r1", "INSERT INTO s VALUES (1001)");
    lab.pgrepl(&["-i", &inv, "switchover", "p", "--yes"])
        .expect_code(0);
    assert_eq!(lab.psql("p", "SELECT pg_is_in_recovery()"), "f");
    assert_eq!(streams_from(&lab, "p"), "r1:streaming,r2:streaming");
    lab.psql("p", "INSERT INTO s VALUES (1002)");
    lab.wait_replayed("p", &["r1", "r2"]);

    // kill -9 of the primary, promote r1: every replicated row is there.
    lab.kill9_postmaster("p");
    let pr = lab.pgrepl(&["-i", &inv, "promote", "r1", "--yes", "--format", "json"]);
    pr.expect_code(0);
    assert_eq!(json_doc(&pr.stdout)["promoted"], "r1");
    assert_eq!(lab.psql("r1", "SELECT count(*) FROM s"), "1002");
    assert_eq!(streams_from(&lab, "r1"), "r2:streaming");

    // The old primary back by rewind, then r2 by a fresh clone.
    for (host, method) in [("p", "rewind"), ("r2", "clone")] {
        let rb = lab.pgrepl(&[
            "-i", &inv, "rebuild", host, "--method", method, "--yes", "--format", "json",
        ]);
        rb.expect_code(0);
        let v = json_doc(&rb.stdout);
        assert_eq!(v["method"], method, "{}", rb.stderr);
        assert_eq!(v["upstream"], "r1");
    }
    assert_eq!(streams_from(&lab, "r1"), "p:streaming,r2:streaming");
    lab.psql("r1", "INSERT INTO s VALUES (1003)");
    lab.wait_replayed("r1", &["p", "r2"]);
    for h in ["p", "r2"] {
        assert_eq!(lab.psql(h, "SELECT count(*) FROM s"), "1003", "{h}");
    }
    status_all_formats(&lab, &inv, "r1");
}
