//! The safety suite (issue 6), on real clusters: concurrent runs and the cluster lock, stale
//! locks, an SSH connection cut in the middle of a base backup, Ctrl-C during init and rebuild,
//! secrets that must never leak, hijacked search_path, changed host keys.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{descendants, processes, spawn_pgrepl, wait_for, Frozen, Lab, Run};

const THREE: &[(&str, &str, Option<&str>)] = &[
    ("p", "primary", None),
    ("r1", "replica", Some("p")),
    ("r2", "replica", Some("p")),
];

fn lock_file(lab: &Lab, host: &str) -> String {
    format!("{}.pgrepl-lock", lab.host(host).data_dir.display())
}

pub fn staging(lab: &Lab, host: &str) -> String {
    format!("{}.pgrepl-new", lab.host(host).data_dir.display())
}

/// The pg_basebackup processes (the copy and its WAL streamer) cloning into `into`.
pub fn basebackups(into: &str) -> Vec<i32> {
    processes()
        .into_iter()
        .filter(|(_, a)| {
            a.first().is_some_and(|p| p.ends_with("pg_basebackup")) && a.iter().any(|x| x == into)
        })
        .map(|(p, _)| p)
        .collect()
}

/// Waits until a base backup into `into` runs, then freezes it (so it cannot finish before the
/// test cuts it); thawed when the guards drop.
fn freeze_basebackup(into: &str) -> Vec<Frozen> {
    wait_for(
        &format!("pg_basebackup into {into}"),
        Duration::from_secs(60),
        || !basebackups(into).is_empty(),
    );
    basebackups(into).into_iter().map(Frozen::new).collect()
}

/// Asserts that no pg_basebackup into `into` is left (bounded wait: the watcher stops it).
fn assert_no_orphan(into: &str) {
    let start = Instant::now();
    while !basebackups(into).is_empty() && start.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(50));
    }
    for p in basebackups(into) {
        let mut chain = String::new();
        let mut x = p;
        for _ in 0..6 {
            let stat = fs::read_to_string(format!("/proc/{x}/stat")).unwrap_or_default();
            let cmd = fs::read(format!("/proc/{x}/cmdline")).unwrap_or_default();
            chain.push_str(&format!(
                "\n  {x}: {} | {}",
                stat.chars().take(80).collect::<String>(),
                String::from_utf8_lossy(&cmd)
                    .replace('\0', " ")
                    .chars()
                    .take(150)
                    .collect::<String>()
            ));
            x = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().nth(1)?.parse().ok())
                .unwrap_or(1);
            if x <= 1 {
                break;
            }
        }
        eprintln!("left behind:{chain}");
    }
    wait_for(
        &format!("the pg_basebackup into {into} to be stopped"),
        Duration::from_secs(15),
        || basebackups(into).is_empty(),
    );
}

/// The primary keeps no WAL sender and, when `slot` is given, no such slot.
fn assert_primary_clean(lab: &Lab, slot: Option<&str>) {
    wait_for(
        "no WAL sender on the primary",
        Duration::from_secs(15),
        || {
            lab.psql("p", "SELECT count(*) FROM pg_stat_replication WHERE application_name LIKE 'pgrepl_clone%'") == "0"
        },
    );
    if let Some(s) = slot {
        assert_eq!(
            lab.psql(
                "p",
                &format!("SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{s}'")
            ),
            "0",
            "the primary kept the slot of an unfinished clone"
        );
    }
}

fn filler(lab: &Lab) {
    lab.psql(
        "p",
        "CREATE TABLE filler AS SELECT g, repeat(md5(g::text), 8) AS pad FROM generate_series(1, 200000) g",
    );
}

#[test]
fn concurrent_mutating_commands_one_proceeds_the_other_is_locked() {
    let lab = Lab::new(&["p", "r1", "r2"]);
    let inv = lab.init(THREE);
    let inv = inv.as_str();

    // Two switchovers started at the same moment: exactly one proceeds.
    let a = spawn_pgrepl(&["-i", inv, "switchover", "r1", "--yes"]);
    let b = spawn_pgrepl(&["-i", inv, "switchover", "r2", "--yes"]);
    let (ra, rb) = (a.wait(), b.wait());
    let mut codes = [ra.code, rb.code];
    codes.sort();
    assert_eq!(codes, [0, 6], "A:\n{}\nB:\n{}", ra.all(), rb.all());
    let loser = if ra.code == 6 { &ra } else { &rb };
    assert!(
        loser.stderr.contains("locked") && loser.stderr.contains("switchover by"),
        "the locked run must name the holder: {}",
        loser.stderr
    );
    assert!(loser.stderr.contains("pgrepl unlock"), "{}", loser.stderr);
    let new_primary = if ra.code == 0 { "r1" } else { "r2" };
    assert_eq!(lab.psql(new_primary, "SELECT pg_is_in_recovery()"), "f");

    // A switchover while a rebuild runs (its copy frozen, so it cannot finish first).
    let victim = if new_primary == "r1" { "r2" } else { "r1" };
    let mut rebuild = spawn_pgrepl(&["-i", inv, "rebuild", victim, "--method", "clone", "--yes"]);
    let frozen = freeze_basebackup(&staging(&lab, victim));
    let before = lab.snapshot(&[new_primary]);
    let t0 = Instant::now();
    let sw = lab.pgrepl(&["-i", inv, "switchover", "p", "--yes"]);
    let took = t0.elapsed();
    sw.expect_code(6);
    assert!(sw.stderr.contains("rebuild by"), "{}", sw.stderr);
    // unlock refuses a holder that still runs here, and does not suggest itself.
    let u = lab.pgrepl(&["-i", inv, "unlock", "--yes"]);
    u.expect_code(6);
    assert!(
        u.stderr.contains("still runs on this machine") && !u.stderr.contains("pgrepl unlock"),
        "{}",
        u.stderr
    );
    assert!(
        rebuild.running(),
        "the rebuild must still run: the switchover did not wait for it"
    );
    eprintln!("locked exit after {:.3}s", took.as_secs_f64());
    assert_eq!(
        lab.snapshot(&[new_primary]),
        before,
        "the locked switchover changed something"
    );
    drop(frozen);
    rebuild.wait().expect_code(0);
    assert_eq!(
        lab.psql(
            new_primary,
            "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"
        ),
        "2",
        "both replicas stream from the new primary"
    );
}

/// Starts a lock holder on `host` by hand, as pgrepl would, with a made-up holder record; the
/// returned child holds the lock until its stdin closes or it is stopped.
fn fake_holder(lab: &Lab, host: &str, machine: &str, pid: u32) -> std::process::Child {
    let read = |p: &str| fs::read_to_string(p).unwrap().trim().to_string();
    let holder = pgrepl::lock::Holder {
        op: "switchover".into(),
        user: "root".into(),
        machine: machine.into(),
        boot: read("/proc/sys/kernel/random/boot_id"),
        pid,
        start: 1,
        since: 1,
        remote_pid: None,
    };
    let cmd = pgrepl::lock::hold(lab.host(host).data_dir.to_str().unwrap(), &holder);
    let mut argv: Vec<String> = Vec::new();
    if crate::harness::is_root() {
        argv.extend(["runuser", "-u", &lab.os_user, "--"].map(String::from));
    }
    argv.extend(cmd.argv);
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = [0u8; 6];
    use std::io::Read;
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    assert_eq!(&first, b"locked", "the fake holder did not get the lock");
    child
}

fn exited_within(child: &mut std::process::Child, within: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < within {
        if child.try_wait().unwrap().is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn stale_locks_are_detected_and_cleared_safely() {
    let lab = Lab::new(&["p", "r1"]);
    let inv = lab.init(&THREE[..2]);
    let inv = inv.as_str();
    let machine = fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string();

    // 1. pgrepl SIGKILLed mid-rebuild: the kernel dropped its lock, the record stayed behind;
    //    its pg_basebackup stops too. The next run says what happened and finishes the job.
    let rebuild = spawn_pgrepl(&["-i", inv, "rebuild", "r1", "--method", "clone", "--yes"]);
    let frozen = freeze_basebackup(&staging(&lab, "r1"));
    rebuild.signal(libc::SIGKILL);
    let killed = rebuild.wait();
    assert_eq!(killed.code, 128 + libc::SIGKILL, "{}", killed.all());
    assert!(fs::read_to_string(lock_file(&lab, "p"))
        .unwrap()
        .contains("op=rebuild"));
    assert_no_orphan(&staging(&lab, "r1"));
    drop(frozen);
    let again = lab.pgrepl(&["-i", inv, "rebuild", "r1", "--method", "clone", "--yes"]);
    again.expect_code(0);
    assert!(
        again.stderr.contains("ended without releasing it"),
        "the takeover must be reported: {}",
        again.stderr
    );

    // 2. A holder whose pgrepl ran on this machine and is gone, still alive on the host (a
    //    connection the host thinks is open): proven dead, cleared, and the command proceeds.
    let dead = {
        let mut c = Command::new("true").spawn().unwrap();
        c.wait().unwrap();
        c.id()
    };
    let mut orphan = fake_holder(&lab, "p", &machine, dead);
    let r = lab.pgrepl(&["-i", inv, "init"]);
    r.expect_code(0);
    assert!(r.stderr.contains("clearing the stale lock"), "{}", r.stderr);
    assert!(
        exited_within(&mut orphan, Duration::from_secs(5)),
        "the stale holder still runs"
    );

    // 3. A holder on another machine cannot be proven dead: locked (6), named; `unlock` asks,
    //    and clears it with --yes.
    let mut remote = fake_holder(&lab, "p", "dr-admin-7", 4242);
    let r = lab.pgrepl(&["-i", inv, "init"]);
    r.expect_code(6);
    assert!(
        r.stderr
            .contains("switchover by root@dr-admin-7 (pid 4242)"),
        "{}",
        r.stderr
    );
    lab.pgrepl(&["-i", inv, "unlock"]).expect_code(5);
    assert!(
        !exited_within(&mut remote, Duration::from_millis(200)),
        "unlock without --yes acted"
    );
    let u = lab.pgrepl(&["-i", inv, "unlock", "--yes"]);
    u.expect_code(0);
    assert!(u.stderr.contains("cleared the lock"), "{}", u.stderr);
    assert!(exited_within(&mut remote, Duration::from_secs(5)));
    lab.pgrepl(&["-i", inv, "init"]).expect_code(0);
    lab.pgrepl(&["-i", inv, "unlock"]).expect_code(0);
}

/// Kills the sshd processes serving `host`'s connections (not the commands they run).
pub fn cut_ssh(lab: &Lab, host: &str) {
    let sessions: Vec<i32> = descendants(lab.sshd_pid(host))
        .into_iter()
        .filter(|p| {
            fs::read(format!("/proc/{p}/cmdline"))
                .map(|c| c.starts_with(b"sshd"))
                .unwrap_or(false)
        })
        .collect();
    assert!(!sessions.is_empty(), "no ssh session to {host}");
    for p in sessions {
        unsafe { libc::kill(p, libc::SIGKILL) };
    }
}

#[test]
fn ssh_cut_and_ctrl_c_mid_base_backup_leave_nothing_behind() {
    let lab = Lab::new(&["p", "r1", "r2"]);
    lab.init(&THREE[..1]);
    filler(&lab);

    // 1. The SSH connection to r1 is cut in the middle of its base backup.
    let inv = lab.ssh_inventory(&THREE[..2], "");
    let inv = inv.to_str().unwrap();
    let init = spawn_pgrepl(&["-i", inv, "init"]);
    let frozen = freeze_basebackup(&staging(&lab, "r1"));
    cut_ssh(&lab, "r1");
    let r = init.wait();
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains("r1: pg_basebackup failed"),
        "the error must name the host and the step: {}",
        r.stderr
    );
    assert_no_orphan(&staging(&lab, "r1"));
    drop(frozen);
    assert_primary_clean(&lab, Some("r1"));
    assert!(
        !lab.host("r1").data_dir.join("PG_VERSION").exists(),
        "a half copy is in place"
    );
    assert!(!lab.server_running("r1"));
    lab.pgrepl(&["-i", inv, "init"]).expect_code(0);
    assert_eq!(
        lab.psql(
            "p",
            "SELECT state FROM pg_stat_replication WHERE application_name = 'r1'"
        ),
        "streaming"
    );

    // 2. Ctrl-C (SIGINT) during init's base backup of r2: exit 130, the same cleanup.
    let inv = lab.ssh_inventory(THREE, "");
    let inv = inv.to_str().unwrap();
    let init = spawn_pgrepl(&["-i", inv, "init"]);
    let frozen = freeze_basebackup(&staging(&lab, "r2"));
    init.signal(libc::SIGINT);
    let r = init.wait();
    assert_eq!(r.code, 130, "{}", r.all());
    assert!(r.stderr.contains("interrupted"), "{}", r.stderr);
    assert!(r.stderr.contains("dropped slot r2"), "{}", r.stderr);
    assert_no_orphan(&staging(&lab, "r2"));
    drop(frozen);
    assert_primary_clean(&lab, Some("r2"));
    assert!(!lab.host("r2").data_dir.join("PG_VERSION").exists());
    lab.pgrepl(&["-i", inv, "init"]).expect_code(0);

    // 3. Ctrl-C typed on a terminal during rebuild: exit 130, the cursor shown again, the old
    //    data directory untouched (the copy was staged), and a re-run finishes.
    let old_sysid = lab.host("r1").data_dir.join("global/pg_control");
    assert!(old_sysid.exists());
    let cmd = format!(
        "exec {} -i {inv} rebuild r1 --method clone --yes",
        env!("CARGO_BIN_EXE_pgrepl")
    );
    let mut term = Command::new("script")
        .args(["-qefc", &cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script (bsdutils) runs pgrepl on a terminal");
    let frozen = freeze_basebackup(&staging(&lab, "r1"));
    term.stdin.as_mut().unwrap().write_all(b"\x03").unwrap();
    term.stdin.as_mut().unwrap().flush().unwrap();
    let out = {
        let start = Instant::now();
        while term.try_wait().unwrap().is_none() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "rebuild ignored Ctrl-C"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        term.wait_with_output().unwrap()
    };
    let shown = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(130), "{shown}");
    assert!(
        shown.contains("\x1b[?25h"),
        "the cursor was not shown again: {shown:?}"
    );
    assert_no_orphan(&staging(&lab, "r1"));
    drop(frozen);
    assert!(
        lab.host("r1").data_dir.join("standby.signal").exists(),
        "r1's data was replaced"
    );
    // The rebuild stopped r1 for the clone: cut short, it runs again on its previous data.
    assert!(lab.server_running("r1"), "{shown}");
    assert!(
        shown.contains("r1 runs again on its previous data"),
        "{shown}"
    );
    lab.pgrepl(&["-i", inv, "rebuild", "r1", "--method", "clone", "--yes"])
        .expect_code(0);
    lab.pgrepl(&["-i", inv, "status", "--wait", "60"])
        .expect_code(0);
}

/// Samples every process's argv and environment until stopped; returns those with `needle`.
struct Sampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: std::thread::JoinHandle<(usize, Vec<String>)>,
}

impl Sampler {
    fn start(needle: &str) -> Sampler {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s2 = stop.clone();
        let needle = needle.as_bytes().to_vec();
        let handle = std::thread::spawn(move || {
            let mut hits = Vec::new();
            let mut rounds = 0;
            while !s2.load(std::sync::atomic::Ordering::Relaxed) {
                rounds += 1;
                for e in fs::read_dir("/proc").unwrap().flatten() {
                    if !e
                        .file_name()
                        .to_string_lossy()
                        .bytes()
                        .all(|b| b.is_ascii_digit())
                    {
                        continue;
                    }
                    for f in ["cmdline", "environ"] {
                        if let Ok(b) = fs::read(e.path().join(f)) {
                            if b.windows(needle.len()).any(|w| w == needle.as_slice()) {
                                hits.push(format!("{f}: {}", String::from_utf8_lossy(&b)));
                            }
                        }
                    }
                }
            }
            (rounds, hits)
        });
        Sampler { stop, handle }
    }

    fn finish(self) -> (usize, Vec<String>) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle.join().unwrap()
    }
}

/// `-vv` logs every remote command (host, argv) and every SQL statement on stderr, with the
/// password redacted; stdout keeps only data.
fn assert_verbose_logs(runs: &[(String, Run)]) {
    let stderr_of = |what: &str| {
        &runs
            .iter()
            .find(|(w, _)| w == what)
            .unwrap_or_else(|| panic!("no run {what}"))
            .1
            .stderr
    };
    let has = |text: &str, all: &[&str]| text.lines().any(|l| all.iter().all(|w| l.contains(w)));
    let init = stderr_of("init -vvv");
    assert!(
        has(init, &["CREATE ROLE", "PASSWORD <redacted>", "host=p"]),
        "-vvv shows the CREATE ROLE statement, redacted:\n{init}"
    );
    assert!(
        has(init, &["run", "host=r1", "pg_basebackup"]),
        "-vvv shows the clone's pg_basebackup:\n{init}"
    );
    let so = stderr_of("switchover r1 --yes -vv");
    assert!(
        has(so, &["DEBUG", "run", "host=p", "argv=", "pg_ctl"]),
        "-vv shows pg_ctl's argv:\n{so}"
    );
    assert!(
        has(so, &["DEBUG", "sql", "SELECT pg_catalog."]),
        "-vv shows SQL statements:\n{so}"
    );
    let rb = stderr_of("rebuild r2 --method clone --yes -vv");
    assert!(
        has(rb, &["DEBUG", "run", "host=r2", "pg_basebackup"]),
        "-vv shows pg_basebackup's argv:\n{rb}"
    );
    let st = &runs
        .iter()
        .find(|(w, _)| w == "status --format json -vv")
        .unwrap()
        .1;
    serde_json::from_str::<serde_json::Value>(&st.stdout)
        .expect("status --format json -vv prints nothing but JSON on stdout");
    assert!(has(&st.stderr, &["DEBUG", "sql"]), "{}", st.stderr);
}

#[test]
fn the_replication_password_never_leaks() {
    let lab = Lab::new(&["p", "r1", "r2"]);
    // Characters that need escaping in a password file, a conninfo and SQL.
    let canary = format!("Cn'ry:{:08x}\\x $y", rand::random::<u32>());
    fs::write(&lab.password_file, format!("{canary}\n")).unwrap();
    let inv = lab.ssh_inventory(THREE, "    log_statement: all\n");
    let inv = inv.to_str().unwrap();

    let sampler = Sampler::start(&canary);
    let mut runs: Vec<(String, Run)> = Vec::new();
    let mut run = |args: &[&str], code: i32| {
        let mut a = vec!["-i", inv];
        a.extend_from_slice(args);
        let r = lab.pgrepl(&a);
        r.expect_code(code);
        runs.push((args.join(" "), r));
    };
    // The first init creates the role (CREATE ROLE ... PASSWORD '<verifier>'); -vvv also lets
    // the dependencies log.
    run(&["init", "-vvv"], 0);
    run(&["init", "-q"], 0);
    run(&["init", "-vv"], 0);
    run(&["status", "--format", "json", "-vv"], 0);
    run(&["status", "--format", "prometheus"], 0);
    run(&["switchover", "r1", "--dry-run", "-v"], 0);
    run(&["switchover", "r1", "--dry-run", "--format", "json"], 0);
    run(&["switchover", "r1", "--yes", "-vv"], 0);
    run(&["rebuild", "r2", "--method", "clone", "--yes", "-vv"], 0);
    run(&["switchover", "p", "--yes"], 0);
    run(&["status", "--wait", "60"], 0);
    let (rounds, hits) = sampler.finish();
    assert!(
        rounds > 10,
        "the process sampler barely ran ({rounds} rounds)"
    );
    assert!(
        hits.is_empty(),
        "the password was visible in /proc: {hits:#?}"
    );
    for (what, r) in &runs {
        assert!(
            !r.all().contains(&canary),
            "pgrepl {what} printed the password"
        );
        assert!(
            !r.all().contains("SCRAM-SHA-256$"),
            "pgrepl {what} printed a SCRAM verifier"
        );
    }
    assert_verbose_logs(&runs);

    let debug = format!(
        "{:?} {:?}",
        pgrepl::inventory::load(Path::new(inv)).unwrap(),
        pgrepl::inventory::load(Path::new(inv))
            .unwrap()
            .replication_password()
            .unwrap()
    );
    assert!(!debug.contains(&canary), "Debug output shows the password");

    for h in &lab.hosts {
        let data = &h.data_dir;
        let log = fs::read_to_string(format!("{}.log", data.display())).unwrap();
        assert!(
            log.contains("statement: "),
            "{}: log_statement=all is not in effect",
            h.name
        );
        assert!(
            !log.contains(&canary),
            "{}: the server log shows the password",
            h.name
        );
        let auto = fs::read_to_string(data.join("postgresql.auto.conf")).unwrap();
        assert!(!auto.contains(&canary), "{}: postgresql.auto.conf", h.name);
        let conf = fs::read_to_string(data.join("postgresql.conf")).unwrap();
        assert!(!conf.contains(&canary), "{}: postgresql.conf", h.name);
        let pass = format!("{}.pgpass", data.display());
        let meta = fs::metadata(&pass).unwrap();
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{pass}");
        let uid = String::from_utf8(
            Command::new("id")
                .args(["-u", &lab.os_user])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        assert_eq!(
            meta.uid().to_string(),
            uid.trim(),
            "{pass} is not owned by the OS user"
        );
        // The password file does hold it (escaped), so the checks above could have failed.
        assert!(fs::read_to_string(&pass)
            .unwrap()
            .contains(&canary.replace('\\', "\\\\").replace(':', "\\:")));
    }
}

#[test]
fn a_hijacked_search_path_cannot_redirect_pgrepls_queries() {
    let lab = Lab::new(&["p", "r1", "r2"]);
    let inv = lab.init(THREE);
    let inv = inv.as_str();
    let trap = |sig: &str, ret: &str| {
        format!(
            "CREATE FUNCTION public.{sig} RETURNS {ret} LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'hijacked'; END$$;"
        )
    };
    let mut sql = String::new();
    for (sig, ret) in [
        ("pg_is_in_recovery()", "boolean"),
        ("pg_current_wal_lsn()", "pg_lsn"),
        ("pg_last_wal_replay_lsn()", "pg_lsn"),
        ("pg_last_wal_receive_lsn()", "pg_lsn"),
        ("pg_is_wal_replay_paused()", "boolean"),
        ("pg_postmaster_start_time()", "timestamptz"),
        ("now()", "timestamptz"),
        ("current_setting(text)", "text"),
        ("pg_reload_conf()", "boolean"),
        ("pg_promote(boolean, integer)", "boolean"),
        (
            "pg_create_physical_replication_slot(name, boolean)",
            "record",
        ),
    ] {
        sql.push_str(&trap(sig, ret));
    }
    sql.push_str("ALTER ROLE CURRENT_USER SET search_path = public, pg_catalog;");
    lab.wait_replayed("p", &["r1", "r2"]);
    lab.psql("p", &sql);
    // From here on, the harness's own psql would be trapped too: only pgrepl talks to servers.
    // The trap works on a client that trusts the search_path.
    let naive = Command::new("runuser")
        .args([
            "-u",
            &lab.os_user,
            "--",
            &crate::harness::pg_tool("psql"),
            "-X",
            "-At",
            "-h",
            lab.host("p").socket_dir.to_str().unwrap(),
            "-p",
            &lab.host("p").pg_port.to_string(),
            "-d",
            "postgres",
            "-c",
            "SELECT pg_is_in_recovery()",
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&naive.stderr).contains("hijacked") || !crate::harness::is_root(),
        "the trap is not armed: {}",
        String::from_utf8_lossy(&naive.stderr)
    );

    let s = lab.pgrepl(&["-i", inv, "status", "--format", "json"]);
    s.expect_code(0);
    assert!(!s.all().contains("hijacked"), "{}", s.all());
    lab.pgrepl(&["-i", inv, "init"]).expect_code(0);
    lab.pgrepl(&["-i", inv, "switchover", "r1", "--yes"])
        .expect_code(0);
    lab.pgrepl(&["-i", inv, "switchover", "p", "--yes"])
        .expect_code(0);
    lab.pgrepl(&["-i", inv, "rebuild", "r2", "--yes"])
        .expect_code(0);
    lab.pgrepl(&["-i", inv, "status", "--wait", "60"])
        .expect_code(0);
}

#[test]
fn a_changed_host_key_is_refused_even_in_accept_new_mode() {
    let lab = Lab::new(&["p", "r1"]);
    let inv = lab.ssh_inventory(&THREE[..2], "");
    let inv = inv.to_str().unwrap();
    let known = fs::read_to_string(&lab.known_hosts).unwrap();
    let lines: Vec<&str> = known.lines().collect();
    let key_of_p = lines[0].split_once(' ').unwrap().1;
    let name_of_r1 = lines[1].split_once(' ').unwrap().0;
    // r1 now presents a key other than the one recorded for it (p's).
    let forged = format!("{}\n{name_of_r1} {key_of_p}\n", lines[0]);
    fs::write(&lab.known_hosts, &forged).unwrap();
    for extra in [&[][..], &["--accept-new-host-keys"][..]] {
        let mut a = vec!["-i", inv, "check"];
        a.extend_from_slice(extra);
        let r = lab.pgrepl(&a);
        r.expect_code(4);
        assert!(
            r.stderr.contains("r1 [reachable]") && r.stderr.contains("host key"),
            "{}",
            r.stderr
        );
        assert!(r.stderr.contains("known_hosts"), "{}", r.stderr);
        // The hint names the inventory's known_hosts file, says the key CHANGED, asks for the
        // fingerprint to be compared before anything is added, and never offers accept-new
        // (which does not accept a changed key).
        assert!(
            r.stderr.contains(&lab.known_hosts.display().to_string())
                && r.stderr.contains("CHANGED")
                && r.stderr.contains("ssh-keygen -lf"),
            "{}",
            r.stderr
        );
        assert!(!r.stderr.contains("accept-new"), "{}", r.stderr);
    }
    assert_eq!(
        fs::read_to_string(&lab.known_hosts).unwrap(),
        forged,
        "known_hosts was changed"
    );
}

mod round_trips {
    use super::*;
    use pgrepl::transport::{ssh, Cmd, Transport};
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    /// Prints each argument as hex on its own line: what arrived, byte for byte.
    const ECHO: &str =
        r#"for a in "$@"; do printf '%s' "$a" | od -An -v -tx1 | tr -d ' \n'; echo; done"#;

    fn hex(s: &str) -> String {
        s.bytes().map(|b| format!("{b:02x}")).collect()
    }

    fn tricky() -> impl Strategy<Value = String> {
        prop_oneof![
            "\\PC{0,40}",
            "[-'\"`$;|&<>(){}\\[\\]\\\\ \\n\\t*?!#~=%^a-z]{0,60}",
            Just("-oProxyCommand=touch /tmp/pwned".to_string()),
            Just("$(touch /tmp/pwned)".to_string()),
            Just(String::new()),
        ]
        .prop_filter("argv cannot hold NUL", |s| !s.contains('\0'))
    }

    #[test]
    fn arguments_reach_a_real_sshd_byte_for_byte() {
        let lab = Lab::new(&["p"]);
        let h = lab.host("p");
        let rt = tokio::runtime::Runtime::new().unwrap();
        let control = tempfile::Builder::new()
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir()
            .unwrap();
        let t = rt
            .block_on(ssh::SshTransport::connect(
                ssh::SshTarget {
                    host: "p".into(),
                    destination: h.address.clone(),
                    user: lab.os_user.clone(),
                    port: h.ssh_port,
                    identity_file: Some(lab.client_key.clone()),
                    known_hosts_file: Some(lab.known_hosts.clone()),
                    config_file: None,
                    accept_new_host_keys: false,
                    connect_timeout: Duration::from_secs(10),
                    os_user: lab.os_user.clone(),
                },
                control.path(),
            ))
            .unwrap();
        let mut runner = TestRunner::new(Config {
            cases: 64,
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(&proptest::collection::vec(tricky(), 1..6), |args| {
                let cmd = Cmd::new("sh")
                    .args(["-c", ECHO, "pgrepl-echo"])
                    .args(args.iter().cloned());
                let out = rt.block_on(t.run(&cmd, None)).unwrap();
                prop_assert!(out.success(), "{:?}", out.stderr_tail);
                let got: Vec<&str> = out.stdout.lines().collect();
                let want: Vec<String> = args.iter().map(|a| hex(a)).collect();
                prop_assert_eq!(got, want);
                Ok(())
            })
            .unwrap();
        assert!(
            !Path::new("/tmp/pwned").exists(),
            "an argument ran as a command"
        );
    }

    #[test]
    fn identifiers_survive_a_real_servers_parser() {
        let lab = Lab::new(&["p"]);
        lab.init(&THREE[..1]);
        let mut runner = TestRunner::new(Config {
            cases: 48,
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(&"[^\\x00]{1,20}".prop_filter("63 bytes at most", |s| s.len() <= 63), |id| {
                let sql = format!(
                    "CREATE TEMP TABLE t ({} int); SELECT encode(convert_to(attname::text, 'UTF8'), 'hex') FROM pg_attribute WHERE attrelid = 't'::regclass AND attnum = 1; SELECT {} = {}::text",
                    pgrepl::db::quote_ident(&id),
                    pgrepl::db::quote_literal(&id),
                    pgrepl::db::quote_literal(&id),
                );
                let out = lab.psql("p", &sql);
                let mut lines = out.lines().filter(|l| *l != "CREATE TABLE");
                prop_assert_eq!(lines.next().unwrap_or(""), hex(&id));
                prop_assert_eq!(lines.next().unwrap_or(""), "t");
                Ok(())
            })
            .unwrap();
    }
}

/// The ssh processes (masters included) whose command line names this lab's client key.
fn ssh_processes(lab: &Lab) -> Vec<String> {
    let key = lab.client_key.display().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| {
            let pid = e.ok()?.file_name().to_str()?.parse::<u32>().ok()?;
            let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let args: Vec<String> = raw
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let zombie = stat.rsplit(')').next()?.trim_start().starts_with('Z');
            (!zombie && args.first()?.ends_with("ssh") && args.iter().any(|a| a.contains(&key)))
                .then(|| format!("{pid}: {}", args.join(" ")))
        })
        .collect()
}

/// Issue "field faults", case 12: no ssh process of a run outlives it — masters are closed
/// when the command ends, whether it succeeds, refuses or fails.
#[test]
fn no_ssh_master_outlives_its_run() {
    let lab = Lab::new(&["p", "r1"]);
    let inv = lab.init(&[("p", "primary", None), ("r1", "replica", None)]);
    assert_eq!(ssh_processes(&lab), Vec::<String>::new(), "after init");
    lab.pgrepl(&["-i", &inv, "status", "--format", "json"])
        .expect_code(0);
    assert_eq!(ssh_processes(&lab), Vec::<String>::new(), "after status");
    // Refused (the primary cannot be rebuilt): exit 4.
    lab.pgrepl(&["-i", &inv, "rebuild", "p", "--yes"])
        .expect_code(4);
    assert_eq!(ssh_processes(&lab), Vec::<String>::new(), "after a refusal");
    lab.pgrepl(&["-i", &inv, "switchover", "r1", "--yes"])
        .expect_code(0);
    assert_eq!(
        ssh_processes(&lab),
        Vec::<String>::new(),
        "after switchover"
    );
}
