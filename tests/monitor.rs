//! The monitor role (issue 17): `status` and `check` read as `pgrepl_monitor`, a login member of
//! `pg_monitor` with no password, never as the superuser; it cannot write or become anyone
//! else; and a cluster whose servers refuse that login (the role dropped, or pg_ident.conf from
//! before pgrepl had it) is still read — as the superuser — with a `monitor_login_missing`
//! warning until `init` repairs it.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::harness::{is_root, pg_tool, pg_version, validate_json, Lab};

const ROLES: &[(&str, &str, Option<&str>)] = &[("p", "primary", None), ("r1", "replica", None)];

/// `pgrepl status --format json`, checked against its schema and exit code.
fn status(lab: &Lab, inv: &str, code: i32) -> serde_json::Value {
    let r = lab.pgrepl(&["-i", inv, "status", "--format", "json"]);
    r.expect_code(code);
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/status.schema.json");
    validate_json(&r.stdout, &schema);
    serde_json::from_str(&r.stdout).unwrap()
}

/// The findings as (code, host), notices aside (`tls_off` on a build without SSL).
fn findings(v: &serde_json::Value) -> Vec<(String, String)> {
    crate::harness::findings_beyond_notice(v)
        .into_iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap().to_string(),
                f["host"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn host<'a>(v: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    v["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == name)
        .unwrap_or_else(|| panic!("no host {name} in {v}"))
}

/// SQL on `host`'s server as the monitor role, logged in as pgrepl does: the OS user through the
/// socket, peer authentication mapped by pg_ident.conf. `Err`: psql's stderr.
fn as_monitor(lab: &Lab, name: &str, sql: &str) -> Result<String, String> {
    let h = lab.host(name);
    let psql = pg_tool("psql");
    let port = h.pg_port.to_string();
    let mut argv: Vec<&str> = Vec::new();
    if is_root() {
        argv.extend(["runuser", "-u", lab.os_user.as_str(), "--"]);
    }
    let dir = h.socket_dir.to_str().unwrap();
    argv.extend([psql.as_str(), "-X", "-At", "-v", "ON_ERROR_STOP=1"]);
    argv.extend([
        "-h",
        dir,
        "-p",
        &port,
        "-U",
        "pgrepl_monitor",
        "-d",
        "postgres",
        "-c",
        sql,
    ]);
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The monitor role's attributes: login, no superuser, createdb, createrole, replication or
/// bypassrls, a limit of 10 connections, no password, pg_monitor's privileges (inherited).
const ATTRIBUTES: &str =
    "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication, \
     rolbypassrls, rolconnlimit, rolpassword IS NULL, pg_has_role(oid, 'pg_monitor', 'USAGE') \
     FROM pg_authid WHERE rolname = 'pgrepl_monitor'";

/// The proof that status and check read as the monitor role: with its connection limit at 0,
/// every server refuses it (53300, not a login refusal, so no superuser fallback) and both
/// report exactly that; `init` (as the superuser) resets the limit and status is whole again.
#[test]
fn status_and_check_read_as_the_monitor_role() {
    let lab = Lab::new(&["p", "r1"]);
    let inv = lab.init(ROLES);
    assert_eq!(lab.psql("p", ATTRIBUTES), "t|f|f|f|f|f|10|t|t");
    assert_eq!(
        lab.psql(
            "p",
            "SELECT string_agg(g.rolname, ',') FROM pg_auth_members m \
             JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member \
             WHERE u.rolname = 'pgrepl_monitor'"
        ),
        "pg_monitor",
        "a member of pg_monitor and of nothing else"
    );
    // Everything status shows is there when read as the monitor role: pg_stat_replication's
    // columns (pg_read_all_stats), the WAL receiver, slots, settings.
    let v = status(&lab, &inv, 0);
    assert!(findings(&v).is_empty(), "{v}");
    let r1 = &v["replicas"][0];
    assert_eq!(
        (r1["host"].as_str(), r1["upstream"].as_str()),
        (Some("r1"), Some("p"))
    );
    assert_eq!(
        (r1["state"].as_str(), r1["sync_state"].as_str()),
        (Some("streaming"), Some("async"))
    );
    assert!(
        r1["lag_bytes"].is_u64() && r1["behind_bytes"].is_u64(),
        "{r1}"
    );
    assert_eq!(v["slots"][0]["wal_status"], "reserved");
    let sysid = lab.psql("p", "SELECT system_identifier FROM pg_control_system()");
    assert_eq!(host(&v, "r1")["system_identifier"], sysid.as_str());

    lab.psql("p", "ALTER ROLE pgrepl_monitor CONNECTION LIMIT 0");
    lab.wait_replayed("p", &["r1"]);
    let v = status(&lab, &inv, 11);
    for h in ["p", "r1"] {
        let hv = host(&v, h);
        assert_eq!(hv["reachable"], false, "{hv}");
        assert!(
            hv["error"]
                .as_str()
                .unwrap()
                .contains("too many connections for role \"pgrepl_monitor\""),
            "{hv}"
        );
    }
    assert!(
        !findings(&v)
            .iter()
            .any(|(c, _)| c == "monitor_login_missing"),
        "a server that refuses for another reason than the login is not read as the superuser: {v}"
    );
    let check = lab.pgrepl(&["-i", &inv, "check"]);
    check.expect_code(4);
    assert!(
        check
            .stderr
            .contains("too many connections for role \"pgrepl_monitor\""),
        "{}",
        check.stderr
    );

    // init (as the superuser) resets every attribute that drifted, and removes a password.
    lab.psql(
        "p",
        "ALTER ROLE pgrepl_monitor NOINHERIT PASSWORD 'guessable'",
    );
    let init = lab.pgrepl(&["-i", &inv, "init"]);
    init.expect_code(0);
    for said in [
        "reset role pgrepl_monitor",
        "removed the password of role pgrepl_monitor",
    ] {
        assert!(init.stderr.contains(said), "{said}: {}", init.stderr);
    }
    assert_eq!(lab.psql("p", ATTRIBUTES), "t|f|f|f|f|f|10|t|t");
    lab.wait_replayed("p", &["r1"]);
    status(&lab, &inv, 0);
    lab.pgrepl(&["-i", &inv, "check"]).expect_code(0);
}

/// The monitor role reads what status needs and nothing it must not: no writes, no role or
/// server changes, no superuser, no data files.
#[test]
fn the_monitor_role_cannot_write_or_become_the_superuser() {
    let lab = Lab::new(&["p", "r1"]);
    let inv = lab.init(ROLES);
    lab.psql("p", "CREATE TABLE t AS SELECT 1 AS x");
    assert_eq!(
        as_monitor(
            &lab,
            "p",
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
        ),
        Ok("f".into())
    );
    assert_eq!(
        as_monitor(&lab, "p", "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' AND sent_lsn IS NOT NULL"),
        Ok("1".into())
    );
    assert_eq!(
        as_monitor(&lab, "p", "SELECT count(*) > 0 FROM pg_file_settings"),
        Ok("t".into()),
        "the one grant beyond pg_monitor"
    );
    // Each refusal in the words of PostgreSQL 13 to 18 (some changed over the majors).
    let denied: &[(&str, &[&str])] = &[
        (
            "INSERT INTO t VALUES (2)",
            &["permission denied for table t"],
        ),
        ("UPDATE t SET x = 3", &["permission denied for table t"]),
        (
            "CREATE ROLE intruder",
            &["permission denied to create role"],
        ),
        ("SET ROLE postgres", &["permission denied to set role"]),
        (
            "SELECT pg_reload_conf()",
            &["permission denied for function pg_reload_conf"],
        ),
        // Deliberately not granted: it would read every file of the data directory.
        (
            "SELECT pg_read_file('global/pg_control')",
            &["permission denied for function pg_read_file"],
        ),
        (
            "SELECT pg_drop_replication_slot('r1')",
            &[
                "must be superuser or replication role",
                "permission denied to use replication slots",
            ],
        ),
        (
            "ALTER SYSTEM SET work_mem = '1GB'",
            &[
                "must be superuser to execute ALTER SYSTEM",
                "permission denied to set parameter",
            ],
        ),
    ];
    for (sql, words) in denied {
        let got = as_monitor(&lab, "p", sql);
        assert!(
            got.as_ref()
                .is_err_and(|e| words.iter().any(|w| e.contains(w))),
            "{sql}: {got:?}"
        );
    }
    // PostgreSQL 15 took CREATE on schema public from PUBLIC; 13 and 14 still give it to every
    // role (pgrepl does not change that default), so only 15+ refuse it to the monitor role too.
    let create = as_monitor(&lab, "p", "CREATE TABLE public.mine(x int)");
    if pg_version() >= 15 {
        assert!(
            create
                .as_ref()
                .is_err_and(|e| e.contains("permission denied for schema public")),
            "{create:?}"
        );
    }
    // The replica refuses writes anyway; the role is the same there.
    lab.wait_replayed("p", &["r1"]);
    assert_eq!(
        as_monitor(&lab, "r1", "SELECT pg_is_in_recovery()"),
        Ok("t".into())
    );
    lab.pgrepl(&["-i", &inv, "status"]).expect_code(0);
}

/// A cluster whose servers refuse the monitor login — the role dropped, or pg_ident.conf and
/// pg_hba.conf as pgrepl wrote them before it had the role — is still read in full, as the
/// superuser, with one `monitor_login_missing` warning per such host; `init` repairs it.
#[test]
fn a_refused_monitor_login_falls_back_to_the_superuser_until_init() {
    let lab = Lab::new(&["p", "r1"]);
    let inv = lab.init(ROLES);
    // Its grants (pg_file_settings) go with DROP OWNED.
    lab.psql(
        "p",
        "DROP OWNED BY pgrepl_monitor; DROP ROLE pgrepl_monitor",
    );
    lab.wait_replayed("p", &["r1"]);
    let v = status(&lab, &inv, 10);
    assert_eq!(
        findings(&v),
        [
            ("monitor_login_missing".to_string(), "p".to_string()),
            ("monitor_login_missing".into(), "r1".into())
        ]
    );
    let f = &v["findings"][0];
    assert_eq!(f["severity"], "warning");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("role \"pgrepl_monitor\" does not exist"),
        "{f}"
    );
    assert!(
        f["fix"]
            .as_str()
            .unwrap()
            .ends_with(&format!("pgrepl init -i {inv}")),
        "{f}"
    );
    assert_eq!(
        v["replicas"][0]["state"], "streaming",
        "read in full as the superuser: {v}"
    );
    assert!(host(&v, "p")["reachable"] == true && host(&v, "r1")["reachable"] == true);
    let check = lab.pgrepl(&["-i", &inv, "check", "--format", "json"]);
    check.expect_code(0);
    let doc: serde_json::Value = serde_json::from_str(&check.stdout).unwrap();
    let warned: Vec<&str> = doc["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["check"] == "monitor_login_missing")
        .map(|w| w["host"].as_str().unwrap())
        .collect();
    assert_eq!(warned, ["p", "r1"], "{doc}");

    let init = lab.pgrepl(&["-i", &inv, "init"]);
    init.expect_code(0);
    assert!(
        init.stderr.contains("created role pgrepl_monitor"),
        "{}",
        init.stderr
    );
    lab.wait_replayed("p", &["r1"]);
    assert!(findings(&status(&lab, &inv, 0)).is_empty());

    // A server whose files are from before the role (no pg_hba.conf line, no pg_ident.conf
    // mapping): peer authentication fails for that host only.
    for file in ["pg_hba.conf", "pg_ident.conf"] {
        let path = lab.host("p").data_dir.join(file);
        lab.run_on(
            "p",
            &["sed", "-i", "/pgrepl_monitor/d", path.to_str().unwrap()],
        );
    }
    lab.psql("p", "SELECT pg_reload_conf()");
    let v = status(&lab, &inv, 10);
    assert_eq!(
        findings(&v),
        [("monitor_login_missing".to_string(), "p".to_string())]
    );
    let msg = v["findings"][0]["message"].as_str().unwrap();
    assert!(
        msg.contains("Peer authentication failed for user \"pgrepl_monitor\""),
        "{msg}"
    );
    let init = lab.pgrepl(&["-i", &inv, "init"]);
    init.expect_code(0);
    assert!(findings(&status(&lab, &inv, 0)).is_empty());
}
