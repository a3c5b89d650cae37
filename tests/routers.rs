//! Routers in front of an SSH lab: HAProxy (write, read, stats) and PgBouncer (one instance per
//! route) on a router host of their own, brought up by `init`, routes checked with psql through
//! them; idempotent re-runs; a graceful HAProxy reload that keeps an established session; a
//! stopped replica leaving HAProxy's read route by its health check.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;

use crate::harness::{pg_tool, wait_for, Lab};

/// Where `n` concurrent sessions through `port` land (host names from `cluster_name`), each
/// holding its server connection for a moment (PgBouncer opens one per concurrent client).
pub fn landings(lab: &Lab, addr: &str, port: u16, n: usize) -> BTreeSet<String> {
    let kids: Vec<_> = (0..n)
        .map(|_| {
            Command::new(pg_tool("psql"))
                .args([
                    "-X",
                    "-At",
                    "-h",
                    addr,
                    "-p",
                    &port.to_string(),
                    "-U",
                    "app",
                    "-d",
                    "app",
                    "-c",
                    "select current_setting('cluster_name'), pg_sleep(0.5)",
                ])
                .env("PGPASSWORD", &lab.password)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    kids.into_iter()
        .map(|k| {
            let o = k.wait_with_output().unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let s = String::from_utf8_lossy(&o.stdout).to_string();
            s.split('|')
                .next()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_string()
        })
        .collect()
}

/// Where one session through `port` lands for each of `n` sequential logins.
fn sequential(lab: &Lab, addr: &str, port: u16, n: usize) -> BTreeSet<String> {
    (0..n)
        .map(|_| {
            let s = lab
                .psql_tcp(addr, port, "select current_setting('cluster_name')")
                .unwrap();
            s.rsplit('/').next().unwrap().to_string()
        })
        .collect()
}

fn stats_csv(addr: &str, port: u16) -> String {
    let mut s = std::net::TcpStream::connect((addr, port)).unwrap();
    s.write_all(b"GET /;csv HTTP/1.0\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn pid_of(lab: &Lab, file: &str) -> String {
    lab.run_on("rt", &["cat", file]).trim().to_string()
}

#[test]
fn routers_come_up_route_and_reload_gracefully() {
    let lab = Lab::new(&["pg1", "pg2", "pg3", "rt"]);
    let rt = lab.host("rt").address.clone();
    let rdir = lab.host("rt").home.join("routers");
    // No pg_hba rule by hand: the application role's lines admit the router's address.
    let hba: [String; 0] = [];
    let inv = lab.ssh_inventory_full(
        &[
            ("pg1", "primary", None),
            ("pg2", "replica", None),
            ("pg3", "replica", None),
        ],
        "",
        false,
        &hba,
    );
    let items = format!(
        "  - {{name: rt-ha, kind: haproxy, address: {rt}, dir: '{d}/{{router}}', ports: {{write: 5435, read: 5436, stats: 8404}}}}\n  - {{name: rt-pb, kind: pgbouncer, address: {rt}, dir: '{d}/{{router}}', ports: {{write: 6432, read: 6433}}, pool_mode: transaction}}\n",
        d = rdir.display()
    );
    lab.add_routers(&inv, &items);
    let inv_s = inv.to_str().unwrap();

    // render shows the routers' files.
    let r = lab.pgrepl(&["-i", inv_s, "render"]);
    r.expect_code(0);
    for f in [
        "rt-ha/haproxy.cfg",
        "rt-pb/pgbouncer-write.ini",
        "rt-pb/pgbouncer-read.ini",
    ] {
        assert!(r.stdout.contains(&format!("==> {f} <==")), "{}", r.stdout);
    }
    assert!(!r.stdout.contains("SCRAM-SHA-256$"));

    let run = lab.pgrepl(&["-i", inv_s, "init"]);
    run.expect_code(0);
    let all = run.all();
    for w in [
        "started haproxy",
        "started pgbouncer write",
        "started pgbouncer read",
        "write route reaches pg1",
        "read route reaches pg2, pg3",
    ] {
        assert!(all.contains(w), "{w}:\n{all}");
    }
    // The auth file holds verifiers only, 0600.
    let ul = rdir.join("rt-pb/userlist.txt");
    let mode = std::fs::metadata(&ul)
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
        .unwrap();
    assert_eq!(mode, 0o600);
    let text = std::fs::read_to_string(&ul).unwrap();
    assert!(
        text.contains("\"app\" \"SCRAM-SHA-256$") && !text.contains(&lab.password),
        "{text}"
    );

    // Writes through both write routes land on the primary.
    for port in [5435, 6432] {
        let out = lab
            .psql_tcp(
                &rt,
                port,
                "select current_setting('cluster_name'), pg_is_in_recovery(), txid_current() > 0",
            )
            .unwrap();
        assert!(out.ends_with("/pg1|f|t"), "port {port}: {out}");
    }
    // Reads reach each replica.
    let want: BTreeSet<String> = ["pg2".to_string(), "pg3".to_string()].into();
    assert_eq!(sequential(&lab, &rt, 5436, 4), want);
    assert_eq!(landings(&lab, &rt, 6433, 4), want);

    // A second init changes nothing for the routers: same processes, no reload.
    let pids = [
        "rt-ha/haproxy.pid",
        "rt-pb/pgbouncer-write.pid",
        "rt-pb/pgbouncer-read.pid",
    ]
    .map(|f| pid_of(&lab, rdir.join(f).to_str().unwrap()));
    let again = lab.pgrepl(&["-i", inv_s, "init"]);
    again.expect_code(0);
    assert!(
        !again.all().contains("reloaded") && !again.all().contains("started haproxy"),
        "{}",
        again.all()
    );
    assert_eq!(
        pids,
        [
            "rt-ha/haproxy.pid",
            "rt-pb/pgbouncer-write.pid",
            "rt-pb/pgbouncer-read.pid"
        ]
        .map(|f| pid_of(&lab, rdir.join(f).to_str().unwrap()))
    );

    // A changed configuration is reloaded (SIGUSR2 to the master) without cutting a session
    // established on the read route.
    let held = Command::new(pg_tool("psql"))
        .args([
            "-X",
            "-At",
            "-h",
            &rt,
            "-p",
            "5436",
            "-U",
            "app",
            "-d",
            "app",
            "-c",
            "select pg_sleep(3)",
            "-c",
            "select 'survived'",
        ])
        .env("PGPASSWORD", &lab.password)
        .spawn()
        .unwrap();
    let y = std::fs::read_to_string(&inv).unwrap().replace(
        "ports: {write: 5435, read: 5436, stats: 8404}}",
        "ports: {write: 5435, read: 5436, stats: 8404}, read_targets: all}",
    );
    std::fs::write(&inv, y).unwrap();
    let reload = lab.pgrepl(&["-i", inv_s, "init"]);
    reload.expect_code(0);
    assert!(
        reload.all().contains("reloaded haproxy"),
        "{}",
        reload.all()
    );
    assert!(
        !reload.all().contains("pgbouncer write"),
        "{}",
        reload.all()
    );
    let out = held.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the held session was cut by the reload"
    );
    assert_eq!(
        pids[0],
        pid_of(&lab, rdir.join("rt-ha/haproxy.pid").to_str().unwrap())
    );
    let want_all: BTreeSet<String> = ["pg1", "pg2", "pg3"].map(String::from).into();
    wait_for(
        "the read route reaches the primary too",
        Duration::from_secs(10),
        || sequential(&lab, &rt, 5436, 6) == want_all,
    );

    // A stopped replica leaves HAProxy's read route by its health check.
    lab.stop_server("pg3");
    wait_for(
        "pg3 marked DOWN in HAProxy's stats",
        Duration::from_secs(10),
        || {
            stats_csv(&rt, 8404)
                .lines()
                .any(|l| l.starts_with("read,pg3,") && l.contains(",DOWN"))
        },
    );
    let left: BTreeSet<String> = ["pg1", "pg2"].map(String::from).into();
    assert_eq!(sequential(&lab, &rt, 5436, 6), left);

    // destroy stops every router process and removes the files pgrepl put under their dirs.
    let router_pids: Vec<String> = [
        "rt-ha/haproxy.pid",
        "rt-pb/pgbouncer-write.pid",
        "rt-pb/pgbouncer-read.pid",
    ]
    .iter()
    .map(|f| pid_of(&lab, rdir.join(f).to_str().unwrap()))
    .collect();
    let r = lab.pgrepl(&["-i", inv_s, "destroy", "--yes", "--format", "json"]);
    r.expect_code(0);
    let v = crate::harness::json_doc(&r.stdout);
    assert!(
        v["routers"][0]
            .as_str()
            .unwrap()
            .contains("stopped haproxy"),
        "{v}"
    );
    for pid in router_pids {
        // Gone, or a zombie its parent (the test runner, a subreaper) has not reaped yet.
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        assert!(
            status.is_empty() || status.contains("State:\tZ"),
            "router process {pid} still runs:\n{status}"
        );
    }
    for d in ["rt-ha", "rt-pb"] {
        assert!(!rdir.join(d).exists(), "{d} left behind");
    }
}

/// `check` and `init` judge the routers' machines before any change: a route port another
/// program holds and a `dir` the OS user cannot create are refused (exit 4), nothing built.
#[test]
fn router_ports_in_use_and_unwritable_dirs_are_refused_before_any_change() {
    if !crate::harness::is_root() {
        eprintln!("skipped: needs a directory the OS user cannot write (root)");
        return;
    }
    let lab = crate::harness::LocalLab::new(2);
    let inv = lab.inventory("16MB");
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let locked = lab.dir.path().join("root-only");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let free: Vec<u16> = (0..2)
        .map(|_| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        })
        .collect();
    let app_pw = lab.dir.path().join("app.pw");
    std::fs::write(&app_pw, "app-secret\n").unwrap();
    std::fs::set_permissions(&app_pw, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let mut text = std::fs::read_to_string(&inv).unwrap();
    text.push_str(&format!(
        "roles:\n  - {{name: app, password_file: {pw}}}\nrouters:\n  - {{name: ha, kind: haproxy, address: 127.0.0.1, dir: '{d}/ok/{{router}}', ports: {{write: {port}, read: {r}}}}}\n  - {{name: pb, kind: pgbouncer, address: 127.0.0.1, dir: '{l}/{{router}}', ports: {{write: {w2}}}}}\n",
        pw = lab.dir.path().join("app.pw").display(),
        d = lab.dir.path().display(),
        l = locked.display(),
        r = free[0],
        w2 = free[1],
    ));
    std::fs::write(&inv, text).unwrap();
    let inv = inv.to_str().unwrap();
    for cmd in ["check", "init"] {
        let r = crate::harness::pgrepl(&["-i", inv, cmd, "--yes"], &[]);
        r.expect_code(4);
        assert!(
            r.stderr.contains(&format!("port {port} is already in use")),
            "{cmd}: {}",
            r.stderr
        );
        assert!(
            r.stderr.contains("pb's directory")
                && r.stderr.contains("install -d -o postgres -m 0700"),
            "{cmd}: {}",
            r.stderr
        );
    }
    assert!(!lab.data_dir(0).exists(), "init changed something");
    drop(held);
    // With routers, a role password file others can read stops promote, rebuild and switchover
    // before anything changes (their route checks log in as that role).
    std::fs::set_permissions(&app_pw, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    for args in [
        &["switchover", "b", "--yes"][..],
        &["promote", "b", "--yes"],
        &["rebuild", "a", "--yes"],
    ] {
        let mut argv = vec!["-i", inv];
        argv.extend_from_slice(args);
        let r = crate::harness::pgrepl(&argv, &[]);
        r.expect_code(3);
        assert!(r.stderr.contains("has mode 0644"), "{args:?}: {}", r.stderr);
    }
    // destroy of a cluster whose routers never came up: nothing of theirs to remove, no error.
    let r = crate::harness::pgrepl(&["-i", inv, "destroy", "--yes"], &[]);
    r.expect_code(0);
}
