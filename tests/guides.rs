//! The example inventories in inventories/guides/ run end to end on lab hosts with real HAProxy
//! and PgBouncer (issue "routing layer", done-when): each file, its addresses mapped onto the
//! lab and its paths and access onto the lab's, goes through init → switchover → kill -9 of the
//! primary + promote → rebuild, and after each step every route lands where it should: writes
//! on the live primary, reads on replicas (each one at least once), and `status` is healthy
//! with no router finding.

use std::collections::BTreeSet;
use std::path::Path;

use crate::harness::{json_doc, pgrepl, Lab};

/// Top-level blocks of an inventory: (key, text including the key's line), in file order.
fn blocks(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if !line.starts_with(' ') {
            let key = line.split(':').next().unwrap().to_string();
            out.push((key, String::new()));
        }
        let last = out.last_mut().unwrap();
        last.1.push_str(line);
        last.1.push('\n');
    }
    out
}

/// The guide at `file` on `lab`: the lab's postgres, replication (plus the guide's
/// `synchronous:`), access and timeouts; the guide's hosts, roles, databases, routers and
/// archive with each 192.0.2.N address replaced by the lab host in `map`, routers' files under
/// the lab, archive paths under the lab.
fn adapt(lab: &Lab, file: &str, map: &[(&str, &str)]) -> String {
    let guide = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("inventories/guides")
            .join(file),
    )
    .unwrap();
    let roles: Vec<(&str, &str, Option<&str>)> = map
        .iter()
        .filter(|(_, h)| *h != "rt")
        .enumerate()
        .map(|(i, (_, h))| (*h, if i == 0 { "primary" } else { "replica" }, None))
        .collect();
    let base = std::fs::read_to_string(lab.ssh_inventory(&roles, "")).unwrap();
    let archive = lab.dir.join("wal-archive");
    let mut out = String::new();
    for (key, text) in blocks(&base) {
        match key.as_str() {
            "hosts" => {}
            "postgres" => {
                out.push_str(&text);
                out.push_str(&role_settings(&guide));
            }
            "replication" => {
                out.push_str(&text);
                if let Some((_, g)) = blocks(&guide).into_iter().find(|(k, _)| k == "replication") {
                    for l in g
                        .lines()
                        .filter(|l| l.trim_start().starts_with("synchronous:"))
                    {
                        out.push_str(l);
                        out.push('\n');
                    }
                }
            }
            _ => out.push_str(&text),
        }
    }
    for (key, mut text) in blocks(&guide) {
        if !["hosts", "roles", "databases", "routers", "archive"].contains(&key.as_str()) {
            continue;
        }
        for (addr, host) in map {
            text = text.replace(addr, &lab.host(host).address);
        }
        if key == "routers" {
            let dir = format!("    dir: '{}/routers/{{router}}'\n", lab.dir.display());
            text = text.replace("    kind:", &format!("{dir}    kind:"));
        }
        if key == "archive" {
            std::fs::create_dir_all(&archive).unwrap();
            crate::harness::sh(&[
                "chown",
                &format!("{}:", lab.os_user),
                archive.to_str().unwrap(),
            ]);
            text = text.replace("/srv/wal-archive", archive.to_str().unwrap());
        }
        out.push_str(&text);
    }
    std::fs::create_dir_all(lab.dir.join("routers")).unwrap();
    crate::harness::sh(&[
        "chown",
        &format!("{}:", lab.os_user),
        lab.dir.join("routers").to_str().unwrap(),
    ]);
    let p = lab.dir.join(file);
    std::fs::write(&p, out).unwrap();
    p.to_str().unwrap().to_string()
}

/// The guide's `postgres.primary_settings` and `postgres.replica_settings` sub-blocks.
fn role_settings(guide: &str) -> String {
    let Some((_, pg)) = blocks(guide).into_iter().find(|(k, _)| k == "postgres") else {
        return String::new();
    };
    let mut out = String::new();
    let mut keep = false;
    for l in pg.lines() {
        if l.starts_with("  ") && !l.starts_with("   ") {
            keep = l.starts_with("  primary_settings:") || l.starts_with("  replica_settings:");
        }
        if keep {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

/// pgrepl with the guide's `APP_PASSWORD` (the lab's password: `app`'s in the harness).
fn run(lab: &Lab, inv: &str, args: &[&str]) -> crate::harness::Run {
    let mut argv = vec!["-i", inv];
    argv.extend_from_slice(args);
    pgrepl(&argv, &[("APP_PASSWORD", &lab.password)])
}

/// Where a login through `addr:port` lands (host name), as `app` into `app`.
fn land(lab: &Lab, addr: &str, port: u16, sql: &str) -> String {
    let out = lab
        .psql_tcp(
            addr,
            port,
            &format!("select current_setting('cluster_name'), {sql}"),
        )
        .unwrap_or_else(|e| panic!("through {addr}:{port}: {e}"));
    out.split('|')
        .next()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string()
}

/// Every route of the inventory's routers, from `status --format json`: healthy, no router
/// finding, the write route on `primary` and written through; each read route over the others.
fn check_routes(lab: &Lab, inv: &str, primary: &str, replicas: &[&str]) {
    let r = run(lab, inv, &["status", "--wait", "60", "--format", "json"]);
    let v = json_doc(&r.stdout);
    assert_eq!(r.code, 0, "status: {}\n{}", r.stdout, r.stderr);
    // Nothing to report (a `tls_off` notice aside, on a build without SSL).
    assert!(crate::harness::findings_beyond_notice(&v).is_empty(), "{v}");
    for route in v["routers"].as_array().unwrap() {
        let addr = route_address(inv, route["router"].as_str().unwrap());
        let port = route["port"].as_u64().unwrap() as u16;
        let targets: BTreeSet<String> = route["targets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["host"].as_str().unwrap_or("?").to_string())
            .collect();
        if route["route"] == "write" {
            assert_eq!(targets, [primary.to_string()].into(), "{route}");
            assert_eq!(
                land(lab, &addr, port, "pg_is_in_recovery(), txid_current()").as_str(),
                primary
            );
        } else {
            // Concurrent sessions: a pooler hands one session's server connection to the next.
            let mut seen = BTreeSet::new();
            for _ in 0..10 {
                seen.extend(crate::routers::landings(
                    lab,
                    &addr,
                    port,
                    2 * replicas.len(),
                ));
                if replicas.iter().all(|r| seen.contains(*r)) {
                    break;
                }
            }
            for r in replicas {
                assert!(
                    seen.contains(*r),
                    "{} read route never reached {r}: {seen:?}",
                    route["router"]
                );
            }
        }
    }
}

/// A router's address, from the inventory file.
fn route_address(inv: &str, router: &str) -> String {
    let text = std::fs::read_to_string(inv).unwrap();
    let at = text.find(&format!("name: {router}")).unwrap();
    let rest = &text[at..];
    let a = rest.find("address: ").unwrap() + 9;
    rest[a..]
        .split(['\n', ',', '}'])
        .next()
        .unwrap()
        .trim()
        .to_string()
}

/// init → switchover → kill -9 + promote → rebuild, routes checked after each.
fn lifecycle(lab: &Lab, inv: &str, hosts: &[&str]) {
    let (p, r1) = (hosts[0], hosts[1]);
    let rest: Vec<&str> = hosts[2..].to_vec();
    run(lab, inv, &["init"]).expect_code(0);
    lab.psql_db(
        p,
        "app",
        "CREATE TABLE t(id int); ALTER TABLE t OWNER TO app",
    );
    check_routes(lab, inv, p, &hosts[1..]);

    let r = run(lab, inv, &["switchover", r1, "--yes"]);
    r.expect_code(0);
    // The routers' files were staged before the stop and switched after the promotion.
    assert!(
        r.stderr.contains("routers re-pointed at the new primary")
            && !r.stderr.contains("installing them again"),
        "{}",
        r.stderr
    );
    let mut others: Vec<&str> = vec![p];
    others.extend(&rest);
    check_routes(lab, inv, r1, &others);

    lab.kill9_postmaster(r1);
    let r = run(lab, inv, &["promote", p, "--yes"]);
    r.expect_code(0);
    assert!(
        r.stderr.contains(&format!("routers re-pointed at {p}")),
        "{}",
        r.stderr
    );
    run(lab, inv, &["rebuild", r1, "--yes"]).expect_code(0);
    check_routes(lab, inv, p, &hosts[1..]);
}

#[test]
fn guide_pgbouncer_write_and_read_pools_over_three_replicas() {
    let lab = Lab::new(&["pg1", "pg2", "pg3", "pg4", "rt"]);
    let map = [
        ("192.0.2.11", "pg1"),
        ("192.0.2.12", "pg2"),
        ("192.0.2.13", "pg3"),
        ("192.0.2.14", "pg4"),
        ("192.0.2.20", "rt"),
    ];
    let inv = adapt(&lab, "pgbouncer-pools.yml", &map);
    lifecycle(&lab, &inv, &["pg1", "pg2", "pg3", "pg4"]);
}

#[test]
fn guide_haproxy_write_5435_read_5436_stats_8404() {
    let lab = Lab::new(&["pg1", "pg2", "pg3", "rt"]);
    let map = [
        ("192.0.2.11", "pg1"),
        ("192.0.2.12", "pg2"),
        ("192.0.2.13", "pg3"),
        ("192.0.2.20", "rt"),
    ];
    let inv = adapt(&lab, "haproxy-ports.yml", &map);
    // read_targets: all — the read route includes the primary.
    run(&lab, &inv, &["init"]).expect_code(0);
    check_routes(&lab, &inv, "pg1", &["pg1", "pg2", "pg3"]);
    run(&lab, &inv, &["switchover", "pg2", "--yes"]).expect_code(0);
    check_routes(&lab, &inv, "pg2", &["pg1", "pg2", "pg3"]);
    lab.kill9_postmaster("pg2");
    run(&lab, &inv, &["promote", "pg1", "--yes"]).expect_code(0);
    run(&lab, &inv, &["rebuild", "pg2", "--yes"]).expect_code(0);
    check_routes(&lab, &inv, "pg1", &["pg1", "pg2", "pg3"]);
}

#[test]
fn guide_pooler_on_the_database_host() {
    let lab = Lab::new(&["pg1", "pg2"]);
    let map = [("192.0.2.11", "pg1"), ("192.0.2.12", "pg2")];
    let inv = adapt(&lab, "pooler-on-db-host.yml", &map);
    lifecycle(&lab, &inv, &["pg1", "pg2"]);
    assert_eq!(
        lab.psql("pg1", "SHOW listen_addresses"),
        format!("{},localhost", lab.host("pg1").address)
    );
}

#[test]
fn guide_synchronous_quorum_with_archiving() {
    let lab = Lab::new(&["pg1", "pg2", "pg3"]);
    let map = [
        ("192.0.2.11", "pg1"),
        ("192.0.2.12", "pg2"),
        ("192.0.2.13", "pg3"),
    ];
    let inv = adapt(&lab, "synchronous-archiving.yml", &map);
    run(&lab, &inv, &["init"]).expect_code(0);
    assert_eq!(
        lab.psql("pg1", "SHOW synchronous_standby_names"),
        "ANY 1 (\"pg2\", \"pg3\")"
    );
    assert_eq!(lab.psql("pg1", "SHOW archive_mode"), "on");
    lab.psql("pg1", "SELECT pg_switch_wal(); CHECKPOINT");
    run(&lab, &inv, &["switchover", "pg2", "--yes"]).expect_code(0);
    assert_eq!(
        lab.psql("pg2", "SHOW synchronous_standby_names"),
        "ANY 1 (\"pg1\", \"pg3\")"
    );
    assert_eq!(
        lab.psql("pg2", "SHOW log_min_duration_statement"),
        "500ms",
        "primary_settings moved with the role"
    );
    assert_eq!(
        lab.psql("pg1", "SHOW hot_standby_feedback"),
        "on",
        "replica_settings moved with the role"
    );
    run(&lab, &inv, &["status", "--wait", "60"]).expect_code(0);
}
