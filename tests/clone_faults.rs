//! Faults real clusters hit in a clone (issue 12, cases 2, 4, 5 and 7), on real PostgreSQL and
//! sshd test hosts: the upstream's `postgresql.auto.conf` copied into a standby, a data
//! directory behind a symlink, a tablespace outside the data directory, and a clone cut short
//! whose `pg_basebackup` (WAL streaming child included) must not outlive the run.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

use crate::harness::{json_doc, pg_tool, sh, spawn_pgrepl, wait_for, Lab, Mode};
use crate::safety::{basebackups, cut_ssh, staging};

const TWO: &[(&str, &str, Option<&str>)] = &[("p", "primary", None), ("r1", "replica", Some("p"))];

/// The findings of `status --format json` as (code, host), notices aside.
fn findings(lab: &Lab, inv: &str) -> Vec<(String, String)> {
    let st = lab.pgrepl(&["-i", inv, "status", "--format", "json"]);
    crate::harness::findings_beyond_notice(&json_doc(&st.stdout))
        .into_iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap_or("").to_string(),
                f["host"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// Case 2: `ALTER SYSTEM SET primary_slot_name` on the primary is flagged by status and check,
/// and no clone inherits it (nor a recovery setting) — rebuild's nor init's; other entries stay.
#[test]
fn a_primarys_auto_conf_stays_out_of_clones() {
    let lab = Lab::new(&["p", "r1", "r2"]);
    let inv = lab.init(TWO);
    // Not reloaded yet: the file says it, so status says it.
    lab.psql("p", "ALTER SYSTEM SET primary_slot_name = 'pg9'");
    let found = findings(&lab, &inv);
    assert!(
        found.contains(&("auto_conf_override".into(), "p".into())),
        "before a reload: {found:?}"
    );
    for sql in [
        "ALTER SYSTEM SET restore_command = 'false'",
        "ALTER SYSTEM SET work_mem = '8MB'",
        "SELECT pg_reload_conf()",
    ] {
        lab.psql("p", sql);
    }
    let found = findings(&lab, &inv);
    assert!(
        found.contains(&("auto_conf_override".into(), "p".into())),
        "{found:?}"
    );
    let st = lab.pgrepl(&["-i", &inv, "status"]);
    assert!(
        st.stdout.contains("ALTER SYSTEM RESET primary_slot_name"),
        "{}",
        st.stdout
    );
    let ck = lab.pgrepl(&["-i", &inv, "check"]);
    assert!(
        ck.stderr
            .contains("p: its postgresql.auto.conf sets primary_slot_name (line"),
        "check flags it too: {}",
        ck.all()
    );

    let r = lab.pgrepl(&["-i", &inv, "rebuild", "r1", "--method", "clone", "--yes"]);
    r.expect_code(0);
    assert!(
        r.stderr.contains("removed `primary_slot_name = 'pg9'`"),
        "the removal is said: {}",
        r.stderr
    );
    // init's clone of a new replica is the same step.
    let three = [TWO[0], TWO[1], ("r2", "replica", Some("p"))];
    let inv = lab.ssh_inventory(&three, "");
    let inv = inv.to_str().unwrap().to_string();
    lab.pgrepl(&["-i", &inv, "init", "--yes"]).expect_code(0);
    for r in ["r1", "r2"] {
        let auto = fs::read_to_string(lab.host(r).data_dir.join("postgresql.auto.conf")).unwrap();
        assert!(!auto.contains("primary_slot_name"), "{r}: {auto}");
        assert!(!auto.contains("restore_command"), "{r}: {auto}");
        assert!(auto.contains("work_mem"), "{r}: other entries stay: {auto}");
        assert_eq!(lab.psql(r, "SHOW primary_slot_name"), r);
        assert_eq!(
            lab.psql(
                "p",
                &format!("SELECT active FROM pg_replication_slots WHERE slot_name = '{r}'")
            ),
            "t"
        );
    }
    let found = findings(&lab, &inv);
    assert!(
        found
            .iter()
            .all(|(code, host)| code != "auto_conf_override" || host == "p"),
        "{found:?}"
    );
}

fn chown(lab: &Lab, p: &Path) {
    sh(&[
        "chown",
        "-R",
        &format!("{}:", lab.os_user),
        p.to_str().unwrap(),
    ]);
}

/// Case 4: a data directory that is a symlink to another disk stays a symlink, and init and a
/// rebuild by clone fill its target; nothing is left beside either.
#[test]
fn a_symlinked_data_directory_is_cloned_into_its_target() {
    let lab = Lab::new(&["p", "r1"]);
    let r1 = lab.host("r1").clone();
    let disk = r1.home.join("disk2");
    let target = disk.join("pgdata");
    fs::create_dir_all(&target).unwrap();
    chown(&lab, &disk);
    sh(&["chmod", "0700", target.to_str().unwrap()]);
    symlink(&target, &r1.data_dir).unwrap();
    let leftovers = |when: &str| {
        for p in [
            format!("{}.pgrepl-old", r1.data_dir.display()),
            format!("{}.pgrepl-new", r1.data_dir.display()),
            format!("{}.pgrepl-old", target.display()),
            format!("{}.pgrepl-new", target.display()),
        ] {
            assert!(!Path::new(&p).exists(), "{when}: {p} left behind");
        }
    };
    let still_linked = |when: &str| {
        let m = fs::symlink_metadata(&r1.data_dir).unwrap();
        assert!(
            m.file_type().is_symlink(),
            "{when}: the symlink was replaced"
        );
        assert_eq!(fs::read_link(&r1.data_dir).unwrap(), target, "{when}");
        assert!(
            target.join("PG_VERSION").exists(),
            "{when}: the target is empty"
        );
        assert!(target.join("standby.signal").exists(), "{when}");
    };

    let inv = lab.init(TWO);
    still_linked("after init");
    leftovers("after init");

    lab.psql("p", "CREATE TABLE t AS SELECT 1 AS x");
    lab.pgrepl(&["-i", &inv, "rebuild", "r1", "--method", "clone", "--yes"])
        .expect_code(0);
    still_linked("after rebuild");
    leftovers("after rebuild");
    lab.wait_replayed("p", &["r1"]);
    assert_eq!(lab.psql("r1", "SELECT count(*) FROM t"), "1");
}

/// Runs `argv` as root inside the mount namespace of `host`'s sshd (where the commands pgrepl
/// runs there, and the server it starts, live).
fn in_mount_ns(lab: &Lab, host: &str, argv: &[&str]) -> String {
    let pid = lab.sshd_pid(host).to_string();
    let mut v = vec!["nsenter", "-t", pid.as_str(), "-m", "--"];
    v.extend_from_slice(argv);
    sh(&v)
}

/// Case 5: a tablespace outside the data directory (each host's own disk at one path, as on
/// real hosts: a bind mount in each host's mount namespace). A clone that fails leaves the
/// replica running on its old data; a clone that succeeds stages the tablespace and swaps it.
#[test]
fn tablespaces_are_staged_and_a_failed_clone_restarts_the_replica() {
    let lab = Lab::new(&["p", "r1"]);
    if lab.mode != Mode::Netns {
        eprintln!("skipped: per-host tablespace directories need network (mount) namespaces");
        return;
    }
    let loc = lab.dir.join("tablespace");
    fs::create_dir_all(&loc).unwrap();
    chown(&lab, &loc);
    for h in ["p", "r1"] {
        let own = lab.dir.join(format!("tablespace-disk-{h}"));
        fs::create_dir_all(&own).unwrap();
        chown(&lab, &own);
        sh(&["chmod", "0700", own.to_str().unwrap()]);
        in_mount_ns(
            &lab,
            h,
            &[
                "mount",
                "--bind",
                own.to_str().unwrap(),
                loc.to_str().unwrap(),
            ],
        );
    }
    let inv = lab.init(TWO);
    lab.psql(
        "p",
        &format!("CREATE TABLESPACE ts LOCATION '{}'", loc.display()),
    );
    lab.psql(
        "p",
        "CREATE TABLE t TABLESPACE ts AS SELECT g FROM generate_series(1, 1000) g",
    );
    lab.wait_replayed("p", &["r1"]);
    let r1_disk = lab.dir.join("tablespace-disk-r1");
    assert!(
        fs::read_dir(&r1_disk).unwrap().next().is_some(),
        "r1 replayed the tablespace into its own directory"
    );

    // A clone that cannot write the tablespace: refused or failed, r1 runs on its old data.
    sh(&["chmod", "0500", r1_disk.to_str().unwrap()]);
    let r = lab.pgrepl(&["-i", &inv, "rebuild", "r1", "--method", "clone", "--yes"]);
    sh(&["chmod", "0700", r1_disk.to_str().unwrap()]);
    assert_ne!(r.code, 0, "{}", r.all());
    assert!(
        lab.server_running("r1"),
        "a failed clone left r1 stopped: {}",
        r.stderr
    );
    wait_for("r1 streaming again", Duration::from_secs(60), || {
        lab.psql(
            "p",
            "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'r1' AND state = 'streaming'",
        ) == "1"
    });

    lab.psql("p", "INSERT INTO t SELECT g FROM generate_series(1, 500) g");
    let r = lab.pgrepl(&["-i", &inv, "rebuild", "r1", "--method", "clone", "--yes"]);
    r.expect_code(0);
    lab.wait_replayed("p", &["r1"]);
    assert_eq!(lab.psql("r1", "SELECT count(*) FROM t"), "1500");
    let inside = in_mount_ns(&lab, "r1", &["ls", "-A", loc.to_str().unwrap()]);
    assert!(
        inside.starts_with("PG_") && !inside.contains("pgrepl"),
        "r1's tablespace holds its new copy only: {inside}"
    );
    let links = sh(&[
        "find",
        lab.host("r1").data_dir.join("pg_tblspc").to_str().unwrap(),
        "-type",
        "l",
        "-printf",
        "%l\n",
    ]);
    assert_eq!(
        links.trim(),
        loc.to_str().unwrap(),
        "pg_tblspc points at the tablespace"
    );
    assert_eq!(lab.psql("p", "SELECT count(*) FROM t"), "1500");
}

/// Limits what reaches `host` to `rate` (tc on its end of the bridge), so that a copy to it
/// runs long enough to be interrupted while data flows.
fn throttle(lab: &Lab, host: &str, rate: &str) {
    let k = lab.hosts.iter().position(|h| h.name == host).unwrap();
    let dev = format!("pgt{}v{k}", lab.id);
    sh(&[
        "tc", "qdisc", "replace", "dev", &dev, "root", "tbf", "rate", rate, "burst", "256kb",
        "latency", "400ms",
    ]);
}

/// Waits until a base backup into `into` runs and data flows (its WAL sender streams).
fn wait_copying(lab: &Lab, into: &str) {
    wait_for(
        &format!("pg_basebackup into {into}"),
        Duration::from_secs(60),
        || basebackups(into).len() >= 2,
    );
    wait_for("the copy under way", Duration::from_secs(60), || {
        lab.psql(
            "p",
            "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'pgrepl_clone_r1' AND state = 'backup'",
        ) == "1"
    });
    std::thread::sleep(Duration::from_millis(1500));
}

/// No pg_basebackup into `into` is left, and the primary serves no base backup of r1.
fn assert_gone(lab: &Lab, into: &str, when: &str) {
    let within = Duration::from_secs(20);
    let start = std::time::Instant::now();
    while !basebackups(into).is_empty() && start.elapsed() < within {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left = basebackups(into);
    assert!(
        left.is_empty(),
        "{when}: pg_basebackup left running: {:?}",
        left.iter()
            .map(|p| fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default())
            .collect::<Vec<_>>()
    );
    wait_for(
        &format!("{when}: no base backup WAL sender"),
        within,
        || {
            lab.psql(
            "p",
            "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'pgrepl_clone_r1'",
        ) == "0"
        },
    );
}

/// Case 7: a clone cut short — Ctrl-C, SIGTERM, SIGKILL of pgrepl, a cut SSH connection — while
/// data flows leaves no pg_basebackup (nor its WAL streaming child) running and no WAL sender on
/// the primary; a clone left running by an earlier run is ended by the next one, by name.
#[test]
fn an_interrupted_clone_leaves_nothing_running_and_a_rerun_ends_leftovers() {
    let lab = Lab::new(&["p", "r1"]);
    let inv = lab.init(TWO);
    lab.psql(
        "p",
        "CREATE TABLE filler AS SELECT g, repeat(md5(g::text), 8) AS pad FROM generate_series(1, 400000) g",
    );
    if lab.mode == Mode::Netns {
        throttle(&lab, "r1", "80mbit");
    }
    let into = staging(&lab, "r1");
    let rebuild = [
        "-i",
        inv.as_str(),
        "rebuild",
        "r1",
        "--method",
        "clone",
        "--yes",
    ];
    for (sig, code) in [
        (libc::SIGINT, 130),
        (libc::SIGTERM, 130),
        (libc::SIGKILL, 128 + libc::SIGKILL),
    ] {
        let bg = spawn_pgrepl(&rebuild);
        wait_copying(&lab, &into);
        bg.signal(sig);
        let r = bg.wait();
        assert_eq!(r.code, code, "signal {sig}: {}", r.all());
        assert_gone(&lab, &into, &format!("after signal {sig}"));
    }
    let bg = spawn_pgrepl(&rebuild);
    wait_copying(&lab, &into);
    cut_ssh(&lab, "r1");
    let r = bg.wait();
    assert_eq!(r.code, 1, "{}", r.all());
    assert_gone(&lab, &into, "after the SSH cut");

    // A copy an earlier run left running (as an older pgrepl did), holding r1's slot.
    let _ = fs::remove_dir_all(&into);
    let r1 = lab.host("r1");
    let p = lab.host("p");
    let conn = format!(
        "host={} port={} user=replicator application_name=pgrepl_clone_r1",
        p.address, p.pg_port
    );
    let passfile = format!("PGPASSFILE={}.pgpass", r1.data_dir.display());
    let bb = pg_tool("pg_basebackup");
    lab.run_on(
        "r1",
        &[
            "sh",
            "-c",
            r#"setsid -f "$@" </dev/null >/dev/null 2>&1"#,
            "leftover",
            "env",
            &passfile,
            &bb,
            "-D",
            &into,
            "-d",
            &conn,
            "-X",
            "stream",
            "-S",
            "r1",
            "--max-rate=1M",
        ],
    );
    wait_copying(&lab, &into);
    let r = lab.pgrepl(&rebuild);
    r.expect_code(0);
    assert!(
        r.stderr
            .contains("r1: ended a clone an earlier run left running"),
        "{}",
        r.stderr
    );
    assert!(basebackups(&into).is_empty());
    lab.pgrepl(&["-i", &inv, "status", "--wait", "60"])
        .expect_code(0);
}
