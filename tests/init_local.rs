//! `pgrepl init` through the local transport: three servers on this machine, no SSH. Also:
//! a restart-only setting change is refused without a terminal and without --yes.

use std::path::Path;

use crate::harness::{is_root, psql_at, stop_server};

struct LocalCluster {
    dir: tempfile::TempDir,
    os_user: String,
    ports: [u16; 3],
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for h in ["a", "b", "c"] {
            stop_server(&self.os_user, &self.dir.path().join(h));
        }
    }
}

fn free_ports() -> [u16; 3] {
    let l: Vec<std::net::TcpListener> = (0..3)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let p: Vec<u16> = l.iter().map(|l| l.local_addr().unwrap().port()).collect();
    [p[0], p[1], p[2]]
}

fn write_inventory(c: &LocalCluster, shared_buffers: &str) -> std::path::PathBuf {
    let d = c.dir.path().display();
    let [p1, p2, p3] = c.ports;
    let inv = c.dir.path().join("local.yml");
    std::fs::write(
        &inv,
        format!(
            "cluster: lt\npostgres:\n  version: 15\n  os_user: {u}\n  data_dir: {d}/{{host}}\n  socket_dir: {d}/run\n  settings:\n    shared_buffers: {shared_buffers}\n    fsync: 'off'\nreplication:\n  password_file: {d}/pw\naccess:\n  transport: local\nhosts:\n  - {{name: a, address: 127.0.0.1, port: {p1}, role: primary}}\n  - {{name: b, address: 127.0.0.1, port: {p2}, role: replica}}\n  - {{name: c, address: 127.0.0.1, port: {p3}, role: replica}}\n",
            u = c.os_user
        ),
    )
    .unwrap();
    inv
}

#[test]
fn init_through_the_local_transport() {
    use std::os::unix::fs::PermissionsExt;
    let os_user = if is_root() {
        "postgres".to_string()
    } else {
        std::env::var("USER").unwrap_or_default()
    };
    let dir = tempfile::Builder::new()
        .prefix("pgrepl-local-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(dir.path().join("pw"), "canary-local-pw\n").unwrap();
    std::fs::set_permissions(
        dir.path().join("pw"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    if is_root() {
        crate::harness::sh(&[
            "chown",
            &format!("{os_user}:"),
            dir.path().to_str().unwrap(),
        ]);
    }
    let c = LocalCluster {
        dir,
        os_user,
        ports: free_ports(),
    };
    let inv = write_inventory(&c, "16MB");
    let inv_s = inv.to_str().unwrap();
    let r = crate::harness::pgrepl(&["-i", inv_s, "init"], &[]);
    r.expect_code(0);
    assert!(!r.all().contains("canary-local-pw"));
    let sock = c.dir.path().join("run");
    let q = |port: u16, sql: &str| psql_at(&c.os_user, &sock, port, sql);
    assert_eq!(
        q(
            c.ports[0],
            "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"
        ),
        "2"
    );
    q(c.ports[0], "CREATE TABLE l AS SELECT 1 AS x");
    let lsn = q(c.ports[0], "SELECT pg_current_wal_lsn()");
    for port in &c.ports[1..] {
        let mut ok = false;
        for _ in 0..100 {
            if q(
                *port,
                &format!("SELECT pg_last_wal_replay_lsn() >= '{lsn}'"),
            ) == "t"
            {
                ok = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(ok && q(*port, "SELECT x FROM l") == "1");
    }

    // A change to a restart-only setting: without a terminal and --yes, refused at once, nothing restarted.
    let before: Vec<String> = c
        .ports
        .iter()
        .map(|p| q(*p, "SELECT pg_postmaster_start_time()"))
        .collect();
    let inv = write_inventory(&c, "24MB");
    let inv_s = inv.to_str().unwrap();
    let t0 = std::time::Instant::now();
    let refused = crate::harness::pgrepl(&["-i", inv_s, "init"], &[]);
    refused.expect_code(5);
    assert!(t0.elapsed() < std::time::Duration::from_secs(10));
    assert!(
        refused.stderr.contains("--yes") && refused.stderr.contains("shared_buffers"),
        "{}",
        refused.stderr
    );
    let after: Vec<String> = c
        .ports
        .iter()
        .map(|p| q(*p, "SELECT pg_postmaster_start_time()"))
        .collect();
    assert_eq!(before, after, "a refused init restarted a server");
    assert!(
        std::fs::read_to_string(Path::new(&c.dir.path().join("a/postgresql.conf")))
            .unwrap()
            .contains("shared_buffers = '16MB'")
    );
    // With --yes: restarted with the new value, and still streaming.
    crate::harness::pgrepl(&["-i", inv_s, "init", "--yes"], &[]).expect_code(0);
    for p in &c.ports {
        assert_eq!(q(*p, "SHOW shared_buffers"), "24MB");
    }
    assert_eq!(
        q(
            c.ports[0],
            "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"
        ),
        "2"
    );

    // status sees a stopped replica: degraded (exit 10), the host unreachable, JSON still on stdout.
    stop_server(&c.os_user, &c.dir.path().join("c"));
    let st = crate::harness::pgrepl(&["-i", inv_s, "status", "--format", "json"], &[]);
    st.expect_code(10);
    let v: serde_json::Value = serde_json::from_str(&st.stdout).expect("status JSON");
    assert_eq!(v["healthy"], false);
    assert_eq!(v["hosts"][2]["name"], "c");
    assert_eq!(v["hosts"][2]["reachable"], false);
    assert_eq!(v["hosts"][1]["streaming"], true);
}
