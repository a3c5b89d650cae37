//! Issue 12, cases 1, 3, 9 and 10 ("faults that real clusters hit"), on real servers: settings
//! the server refuses, hot-standby parameters lowered, preconditions `check` must see, host
//! names in pg_hba.conf.

use std::time::Duration;

use crate::harness::{pgrepl, stop_server, wait_for, Lab, LocalLab};

/// `file:line:col` of the first line of `inv` that starts (after indentation) with `key:`: the
/// column of its value.
fn position(inv: &std::path::Path, key: &str) -> String {
    let text = std::fs::read_to_string(inv).unwrap();
    let (i, line) = text
        .lines()
        .enumerate()
        .find(|(_, l)| l.trim_start().starts_with(&format!("{key}:")))
        .unwrap_or_else(|| panic!("{key} in {text}"));
    let col = line.find(':').unwrap() + 3;
    format!("{}:{}:{col}", inv.display(), i + 1)
}

/// Case 3: a misspelled setting and a value with a unit the server does not know are refused
/// by `check` and `init` at their place in the inventory, before any file is installed: a new
/// cluster is not created, a running one is not restarted. A `,` in socket_dir is refused at
/// load time.
#[test]
fn settings_the_server_refuses_stop_init_before_any_change() {
    let c = LocalLab::new(2);
    let bad = c.inventory_with("16MB", "    max_conections: '50'\n", "127.0.0.1");
    let bad_s = bad.to_str().unwrap();
    let check = pgrepl(&["-i", bad_s, "check"], &[]);
    check.expect_code(4);
    assert!(
        check.stderr.contains(&position(&bad, "max_conections"))
            && check
                .stderr
                .contains("unrecognized configuration parameter \"max_conections\""),
        "{}",
        check.stderr
    );
    let init = pgrepl(&["-i", bad_s, "init", "--yes"], &[]);
    init.expect_code(4);
    assert!(init.stderr.contains("max_conections"), "{}", init.stderr);
    assert!(!c.data_dir(0).exists(), "init created the primary anyway");

    // A running cluster: a unit PostgreSQL does not know, next to the misspelled name.
    let good = c.inventory("16MB");
    pgrepl(&["-i", good.to_str().unwrap(), "init"], &[]).expect_code(0);
    let started = c.psql(0, "SELECT pg_postmaster_start_time()");
    let conf = std::fs::read_to_string(c.data_dir(0).join("postgresql.conf")).unwrap();
    let bad = c.inventory_with("16XB", "    max_conections: '50'\n", "127.0.0.1");
    let init = pgrepl(&["-i", bad_s, "init", "--yes"], &[]);
    init.expect_code(4);
    for (key, what) in [
        (
            "shared_buffers",
            "invalid value for parameter \"shared_buffers\": \"16XB\"",
        ),
        ("max_conections", "unrecognized configuration parameter"),
    ] {
        let at = position(&bad, key);
        assert!(
            init.stderr.contains(&at) && init.stderr.contains(what),
            "{at} {what}: {}",
            init.stderr
        );
    }
    assert!(init.stderr.contains("Valid units"), "{}", init.stderr);
    assert_eq!(c.psql(0, "SELECT pg_postmaster_start_time()"), started);
    assert_eq!(
        std::fs::read_to_string(c.data_dir(0).join("postgresql.conf")).unwrap(),
        conf,
        "a file was installed although a setting was refused"
    );

    // unix_socket_directories is a list: a ',' in socket_dir is refused when the file is read.
    let text = std::fs::read_to_string(&good).unwrap();
    let run = c.dir.path().join("run");
    let comma = text.replace(
        &format!("socket_dir: {}", run.display()),
        &format!("socket_dir: {},x", run.display()),
    );
    std::fs::write(&bad, comma).unwrap();
    let r = pgrepl(&["-i", bad_s, "check"], &[]);
    r.expect_code(3);
    assert!(
        r.stderr.contains(&position(&bad, "socket_dir")) && r.stderr.contains("comma-separated"),
        "{}",
        r.stderr
    );
}

/// Case 10: pg_hba.conf keeps host names as written, so `check` and `init` verify that each
/// name resolves to IPs that reverse-resolve to the name (what PostgreSQL requires). On this
/// machine `vm` is 127.0.0.1 in /etc/hosts, whose first name is `localhost`: refused, naming
/// both lookups and the IP to use. `localhost` comes back to itself: init builds a cluster whose
/// replicas are admitted by the name lines.
#[test]
fn host_names_in_pg_hba_must_resolve_both_ways() {
    let c = LocalLab::new(2);
    let resolves = |name: &str| {
        std::process::Command::new("getent")
            .args(["hosts", name])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    let vm = resolves("vm");
    let back = resolves("127.0.0.1");
    assert!(
        vm.starts_with("127.0.0.1") && back.split_whitespace().nth(1) == Some("localhost"),
        "this test needs /etc/hosts to map vm to 127.0.0.1 and 127.0.0.1 first to localhost: {vm} / {back}"
    );
    let inv = c.inventory_with("16MB", "", "vm");
    let inv_s = inv.to_str().unwrap();
    let check = pgrepl(&["-i", inv_s, "check"], &[]);
    check.expect_code(4);
    assert!(
        check
            .stderr
            .contains("vm resolves to 127.0.0.1, which reverse-resolves to localhost")
            && check.stderr.contains("address: 127.0.0.1 for a, b"),
        "{}",
        check.stderr
    );
    assert_eq!(
        check.stderr.matches("[address]").count(),
        1,
        "{}",
        check.stderr
    );
    pgrepl(&["-i", inv_s, "init", "--yes"], &[]).expect_code(4);
    assert!(!c.data_dir(0).exists(), "init created the primary anyway");

    let inv = c.inventory_with("16MB", "", "localhost");
    pgrepl(&["-i", inv.to_str().unwrap(), "check"], &[]).expect_code(0);
    pgrepl(&["-i", inv.to_str().unwrap(), "init"], &[]).expect_code(0);
    let hba = std::fs::read_to_string(c.data_dir(0).join("pg_hba.conf")).unwrap();
    assert!(
        hba.lines().any(|l| l.starts_with("host")
            && l.contains("replication")
            && l.split_whitespace().nth(3) == Some("localhost")),
        "{hba}"
    );
    assert_eq!(
        c.psql(
            0,
            "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"
        ),
        "1"
    );
}

/// Seconds since the epoch at which server `i` of `c` started.
fn started_at(c: &LocalLab, i: usize) -> f64 {
    c.psql(i, "SELECT extract(epoch FROM pg_postmaster_start_time())")
        .parse()
        .unwrap()
}

/// Case 1: lowering `max_connections` restarts the primary first and each standby only after
/// it replayed the lower value — also a standby that is down with the higher value in its
/// control file (what a run that restarted in the wrong order leaves: it refuses to start with
/// the lower value), which is started with its recorded value until it has replayed. Raising
/// restarts the standbys before the primary.
#[test]
fn hot_standby_settings_change_in_the_order_standbys_accept() {
    let c = LocalLab::new(3);
    let high = c.inventory_with("16MB", "    max_connections: '200'\n", "127.0.0.1");
    let inv_s = high.to_str().unwrap().to_string();
    pgrepl(&["-i", &inv_s, "init"], &[]).expect_code(0);
    c.psql(0, "SELECT 1");
    stop_server(&c.os_user, &c.data_dir(2));

    c.inventory("16MB");
    let r = pgrepl(&["-i", &inv_s, "init", "--yes"], &[]);
    r.expect_code(0);
    assert!(
        r.stderr
            .contains("c: its control file records higher values")
            && r.stderr.contains("max_connections 100 < 200"),
        "{}",
        r.stderr
    );
    for i in 0..3 {
        assert_eq!(c.psql(i, "SHOW max_connections"), "100", "server {i}");
    }
    let streaming = "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'";
    wait_for("both replicas streaming", Duration::from_secs(30), || {
        c.psql(0, streaming) == "2"
    });
    assert!(
        started_at(&c, 1) > started_at(&c, 0),
        "b restarted before a"
    );

    // Raising: the standbys restart first, then the primary.
    c.inventory_with("16MB", "    max_connections: '150'\n", "127.0.0.1");
    let r = pgrepl(&["-i", &inv_s, "init", "--yes"], &[]);
    r.expect_code(0);
    for i in 0..3 {
        assert_eq!(c.psql(i, "SHOW max_connections"), "150", "server {i}");
    }
    for i in 1..3 {
        assert!(
            started_at(&c, i) < started_at(&c, 0),
            "server {i} restarted after the primary\n{}",
            r.stderr
        );
    }
    wait_for("both replicas streaming", Duration::from_secs(30), || {
        c.psql(0, streaming) == "2"
    });

    // A standby left running with a value given on its command line (a run cut short while it
    // replayed with its recorded values): init restarts it with postgresql.conf's.
    stop_server(&c.os_user, &c.data_dir(1));
    let data = c.data_dir(1).display().to_string();
    let log = format!("{data}.log");
    let ctl = crate::harness::pg_tool("pg_ctl");
    let mut argv: Vec<&str> = Vec::new();
    if crate::harness::is_root() {
        argv.extend(["runuser", "-u", c.os_user.as_str(), "--"]);
    }
    let opts = "-c max_connections=300";
    argv.extend([
        ctl.as_str(),
        "start",
        "-D",
        &data,
        "-l",
        &log,
        "-w",
        "-o",
        opts,
    ]);
    crate::harness::sh(&argv);
    assert_eq!(c.psql(1, "SHOW max_connections"), "300");
    let r = pgrepl(&["-i", &inv_s, "init", "--yes"], &[]);
    r.expect_code(0);
    assert!(
        r.stderr
            .contains("b: restarted PostgreSQL (to leave values given on its command line)"),
        "{}",
        r.stderr
    );
    assert_eq!(c.psql(1, "SHOW max_connections"), "150");
}

/// Stops the servers of data directories a test put outside the lab's usual places.
struct StopOnDrop(String, Vec<std::path::PathBuf>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        for d in &self.1 {
            stop_server(&self.0, d);
        }
    }
}

/// Case 9: what `init` relies on, `check` checks. A 0644 password file stops check, promote and
/// rebuild before any host is contacted; a data directory made by the old advice (`install -d`
/// of the data directory itself) in a directory the OS user cannot write, a socket directory
/// that cannot be created, and a port in use are each refused by `check` with the command that
/// fixes it; once they are fixed, `check` passes and `init` succeeds. A replica's password file
/// loosened to 0644 is 0600 again after `init`. A start that fails quotes the server log.
#[test]
fn check_sees_what_init_needs() {
    if !crate::harness::is_root() {
        eprintln!("skipped: needs root (directories the OS user cannot write)");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let c = LocalLab::new(2);
    let d = c.dir.path();
    let inv = c.inventory("16MB");
    let inv_s = inv.to_str().unwrap();

    let pw = d.join("pw");
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).unwrap();
    for args in [
        &["check"][..],
        &["promote", "b", "--yes"],
        &["rebuild", "b", "--yes"],
    ] {
        let r = pgrepl(&[&["-i", inv_s][..], args].concat(), &[]);
        r.expect_code(3);
        assert!(r.stderr.contains("has mode 0644"), "{args:?}: {}", r.stderr);
    }
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();

    // Directories the OS user cannot write, and a port taken.
    let locked = d.join("locked");
    let rootrun = d.join("rootrun");
    for dir in [&locked, &rootrun] {
        std::fs::create_dir(dir).unwrap();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let text = std::fs::read_to_string(&inv).unwrap().replace(
        &format!("data_dir: {}/{{host}}", d.display()),
        &format!("data_dir: {}/{{host}}", locked.display()),
    );
    let sock = rootrun.join("sock");
    let text = text.replace(
        &format!("socket_dir: {}/run", d.display()),
        &format!("socket_dir: {}", sock.display()),
    );
    std::fs::write(&inv, text).unwrap();
    let data: Vec<_> = ["a", "b"].iter().map(|n| locked.join(n)).collect();
    let _stop = StopOnDrop(c.os_user.clone(), data.clone());
    // What check advised before: the data directory itself, made for the OS user.
    crate::harness::sh(&[
        "install",
        "-d",
        "-o",
        &c.os_user,
        "-m",
        "0700",
        data[0].to_str().unwrap(),
    ]);
    let taken = std::net::TcpListener::bind(("127.0.0.1", c.ports[1])).unwrap();
    let r = pgrepl(&["-i", inv_s, "check"], &[]);
    r.expect_code(4);
    let locked_s = locked.display().to_string();
    for want in [
        format!(
            "a [data_dir]: {locked_s}, which holds {}",
            data[0].display()
        ),
        format!("install -d -o {} -m 0750 {locked_s}", c.os_user),
        format!(
            "socket directory {} does not exist and {} is not writable",
            sock.display(),
            rootrun.display()
        ),
        format!("install -d -o {} -m 2775 {}", c.os_user, sock.display()),
        format!("b [port]: port {} is already in use", c.ports[1]),
    ] {
        assert!(r.stderr.contains(&want), "{want}\n{}", r.stderr);
    }
    assert!(!r.stderr.contains("a [port]"), "{}", r.stderr);

    // Each fixed as check says: check passes, and init builds the cluster.
    crate::harness::sh(&["install", "-d", "-o", &c.os_user, "-m", "0750", &locked_s]);
    crate::harness::sh(&[
        "install",
        "-d",
        "-o",
        &c.os_user,
        "-m",
        "2775",
        sock.to_str().unwrap(),
    ]);
    drop(taken);
    pgrepl(&["-i", inv_s, "check"], &[]).expect_code(0);
    pgrepl(&["-i", inv_s, "init"], &[]).expect_code(0);
    let streaming = "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'";
    assert_eq!(
        crate::harness::psql_at(&c.os_user, &sock, c.ports[0], streaming),
        "1"
    );

    // init converges the modes of what it installs.
    let passfile = locked.join("b.pgpass");
    std::fs::set_permissions(&passfile, std::fs::Permissions::from_mode(0o644)).unwrap();
    pgrepl(&["-i", inv_s, "init"], &[]).expect_code(0);
    let mode = std::fs::metadata(&passfile).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o600, "{} left {mode:o}", passfile.display());

    // A start that fails says why, from the server log (a setting every check accepts, and the
    // server refuses only when it starts: huge pages where none are reserved).
    let text = std::fs::read_to_string(&inv).unwrap().replace(
        "    fsync: 'off'\n",
        "    fsync: 'off'\n    huge_pages: 'on'\n",
    );
    std::fs::write(&inv, text).unwrap();
    let r = pgrepl(&["-i", inv_s, "init", "--yes"], &[]);
    r.expect_code(1);
    assert!(
        r.stderr
            .contains("the server log says: FATAL: could not map anonymous shared memory"),
        "{}",
        r.stderr
    );
}

/// Case 9 over SSH, on network-namespace hosts: a listener on r1's address and port (inside its
/// namespace) is seen by `check` before `init` would start a server there.
#[test]
fn check_sees_a_taken_port_on_a_remote_host() {
    let lab = Lab::new(&["p", "r1"]);
    let roles = [("p", "primary", None), ("r1", "replica", None)];
    let inv = lab.ssh_inventory(&roles, "");
    let inv_s = inv.to_str().unwrap();
    let r1 = lab.host("r1");
    let listen = format!(
        "import socket, time\ns = socket.socket()\ns.bind(('{}', {}))\ns.listen()\nprint('up', flush=True)\ntime.sleep(300)\n",
        r1.address, r1.pg_port
    );
    let mut argv: Vec<&str> = Vec::new();
    if let Some(ns) = &r1.netns {
        argv.extend(["ip", "netns", "exec", ns.as_str()]);
    }
    argv.extend(["python3", "-c", listen.as_str()]);
    let mut child = std::process::Command::new(argv[0])
        .args(&argv[1..])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "up");
    let r = lab.pgrepl(&["-i", inv_s, "check"]);
    let _ = child.kill();
    let _ = child.wait();
    r.expect_code(4);
    assert!(
        r.stderr.contains(&format!(
            "r1 [port]: port {} is already in use on r1",
            r1.pg_port
        )),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("p [port]"), "{}", r.stderr);
    lab.pgrepl(&["-i", inv_s, "check"]).expect_code(0);
}

/// Case 9, the kind: a socket directory behind a directory the OS user cannot enter is not
/// "missing" (creating it changes nothing); check says the real cause and the fix that works.
#[test]
fn check_names_a_directory_the_os_user_cannot_enter() {
    if !crate::harness::is_root() {
        eprintln!("skipped: needs root (a directory the OS user cannot enter)");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let c = LocalLab::new(2);
    let d = c.dir.path();
    let inv = c.inventory("16MB");
    let inv_s = inv.to_str().unwrap();
    let ro = d.join("ro");
    let sock = ro.join("sock");
    std::fs::create_dir(&ro).unwrap();
    crate::harness::sh(&[
        "install",
        "-d",
        "-o",
        &c.os_user,
        "-m",
        "2775",
        sock.to_str().unwrap(),
    ]);
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o700)).unwrap();
    let text = std::fs::read_to_string(&inv).unwrap().replace(
        &format!("socket_dir: {}/run", d.display()),
        &format!("socket_dir: {}", sock.display()),
    );
    std::fs::write(&inv, text).unwrap();
    let r = pgrepl(&["-i", inv_s, "check"], &[]);
    r.expect_code(4);
    assert!(
        r.stderr.contains(&format!("cannot enter {}", ro.display()))
            && r.stderr.contains(&format!("chmod o+x {}", ro.display()))
            && !r.stderr.contains("does not exist"),
        "{}",
        r.stderr
    );
    // As advised: check passes.
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o701)).unwrap();
    pgrepl(&["-i", inv_s, "check"], &[]).expect_code(0);
}

/// Case 3, the kind: a preload library the host does not have is accepted by the server's
/// settings check but stops the server at start; check refuses it at its line, before init
/// restarts anything; one that is there passes.
#[test]
fn a_missing_preload_library_is_refused_before_any_change() {
    let c = LocalLab::new(2);
    let inv = c.inventory_with(
        "16MB",
        "    shared_preload_libraries: pg_stat_statementz\n",
        "127.0.0.1",
    );
    let inv_s = inv.to_str().unwrap();
    let r = pgrepl(&["-i", inv_s, "check"], &[]);
    r.expect_code(4);
    assert!(
        r.stderr
            .contains("library \"pg_stat_statementz\" is not installed in"),
        "{}",
        r.stderr
    );
    let r = pgrepl(&["-i", inv_s, "init", "--yes"], &[]);
    r.expect_code(4);
    assert!(
        !c.data_dir(0).join("PG_VERSION").exists(),
        "init changed something"
    );
    let inv = c.inventory_with(
        "16MB",
        "    shared_preload_libraries: plpgsql\n",
        "127.0.0.1",
    );
    pgrepl(&["-i", inv.to_str().unwrap(), "init", "--yes"], &[]).expect_code(0);
}
