//! One JSON contract (issue "CLI contract"): with `--format json` every command prints exactly
//! one JSON document on stdout — when it succeeds and when it fails (`{"error": {exit_code,
//! class, host, step, message, stderr_tail, next}}`). A local cluster, real servers. Each
//! document validates against its schema (`schemas/<name>.schema.json`, generated from the
//! Rust types), failures against `error`.

use crate::harness::{is_root, pgrepl, schema, validate_json, wait_for, LocalLab, Run};

/// The whole stdout as exactly one JSON document (serde refuses trailing content).
fn one_document(args: &[&str], r: &Run) -> serde_json::Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: stdout is not one JSON document ({e}):\n{}\nstderr:\n{}",
            r.stdout, r.stderr
        )
    })
}

/// Runs with `--format json`: the exit code, one document, valid against `schema`.
fn run(args: &[&str], code: i32, schema_name: &str) -> serde_json::Value {
    let mut argv = args.to_vec();
    argv.extend(["--format", "json"]);
    let r = pgrepl(&argv, &[]);
    r.expect_code(code);
    let v = one_document(&argv, &r);
    validate_json(&r.stdout, &schema(schema_name));
    v
}

fn error_of(v: &serde_json::Value, code: i32, class: &str) -> serde_json::Value {
    let e = v["error"].clone();
    assert_eq!(e["exit_code"], code, "{v}");
    assert_eq!(e["class"], class, "{v}");
    for k in ["host", "step", "message", "stderr_tail", "next"] {
        assert!(e.get(k).is_some(), "no {k} in {v}");
    }
    e
}

#[test]
fn every_command_prints_one_json_document_success_or_failure() {
    let c = LocalLab::new(2);
    let inv = c.inventory("16MB");
    let inv = inv.to_str().unwrap();

    let v = run(&["-i", inv, "init"], 0, "init");
    assert!(
        v["changes"].as_array().is_some_and(|c| !c.is_empty()),
        "{v}"
    );
    let v = run(&["-i", inv, "init"], 0, "init");
    assert_eq!(v["changes"], serde_json::json!([]), "{v}");
    run(&["-i", inv, "check"], 0, "check");
    run(&["-i", inv, "render"], 0, "render");
    let v = run(&["-i", inv, "dsn"], 0, "dsn");
    assert_eq!(v["dsns"][0]["route"], "write", "{v}");
    let v = run(&["-i", inv, "status"], 0, "status");
    assert_eq!(v["primary"], "a", "{v}");
    let v = run(
        &["-i", inv, "switchover", "b", "--dry-run"],
        0,
        "switchover-dry-run",
    );
    assert_eq!(
        (v["dry_run"].clone(), v["new_primary"].clone()),
        (true.into(), "b".into()),
        "{v}"
    );
    assert!(v["steps"].as_array().is_some_and(|s| s.len() > 3), "{v}");
    let v = run(&["-i", inv, "unlock"], 0, "unlock");
    assert_eq!(v["cleared"], serde_json::json!([]), "{v}");
    let v = run(
        &["-i", inv, "slot", "drop", "a", "nothing_here", "--yes"],
        0,
        "slot-drop",
    );
    assert_eq!(v["dropped"], false, "{v}");
    let v = run(&["-i", inv, "destroy", "--dry-run"], 0, "destroy");
    assert_eq!(v["dry_run"], true, "{v}");

    // Failures: one document each, with the class's details.
    let v = run(&["-i", inv, "promote", "a", "--yes"], 4, "error");
    let e = error_of(&v, 4, "preflight");
    assert!(
        e["problems"].as_array().is_some_and(|p| !p.is_empty()),
        "{v}"
    );
    let v = run(&["-i", inv, "promote", "b"], 5, "error");
    error_of(&v, 5, "confirmation_required");
    let v = run(&["-i", inv, "rebuild", "nosuch", "--yes"], 4, "error");
    error_of(&v, 4, "preflight");
    let bad = c.inventory("16MB").with_file_name("bad.yml");
    std::fs::write(&bad, "cluster: x\nhosts: 3\n").unwrap();
    let v = run(&["-i", bad.to_str().unwrap(), "status"], 3, "error");
    let e = error_of(&v, 3, "inventory");
    assert!(e["issues"][0]["line"].as_u64().is_some(), "{v}");

    // A real switchover still prints its own document (and only that).
    let v = run(&["-i", inv, "switchover", "b", "--yes"], 0, "switchover");
    assert_eq!(v["new_primary"], "b", "{v}");
    // The other mutating commands' documents, and a held lock's failure.
    let v = run(
        &["-i", inv, "promote", "a", "--force", "--yes"],
        0,
        "promote",
    );
    assert_eq!(v["promoted"], "a", "{v}");
    let v = run(&["-i", inv, "rebuild", "b", "--yes"], 0, "rebuild");
    assert_eq!(v["upstream"], "a", "{v}");
    let mut holder = fake_holder(&c, "dr-admin-7");
    let v = run(&["-i", inv, "init"], 6, "error");
    let e = error_of(&v, 6, "locked");
    assert!(
        e["holder"]
            .as_str()
            .is_some_and(|h| h.contains("dr-admin-7")),
        "{v}"
    );
    let v = run(&["-i", inv, "unlock", "--yes"], 0, "unlock");
    assert_eq!(v["cleared"][0]["host"], "a", "{v}");
    wait_for(
        "unlock to end the lock's holder",
        std::time::Duration::from_secs(5),
        || holder.try_wait().unwrap().is_some(),
    );
    let v = run(&["-i", inv, "destroy", "--yes"], 0, "destroy");
    assert_eq!(v["dry_run"], false, "{v}");
}

/// A process holding the cluster lock on `a` for a switchover from another machine (its
/// holder cannot be proven gone): pgrepl refuses with exit 6 until `unlock` clears it.
fn fake_holder(c: &LocalLab, machine: &str) -> std::process::Child {
    use std::io::Read;
    let holder = pgrepl::lock::Holder {
        op: "switchover".into(),
        user: "root".into(),
        machine: machine.into(),
        boot: "not-this-boot".into(),
        pid: 4242,
        start: 1,
        since: 1,
        remote_pid: None,
    };
    let cmd = pgrepl::lock::hold(c.data_dir(0).to_str().unwrap(), &holder);
    let mut argv: Vec<String> = Vec::new();
    if is_root() {
        argv.extend(["runuser", "-u", &c.os_user, "--"].map(String::from));
    }
    argv.extend(cmd.argv);
    let mut child = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut first = [0u8; 6];
    let out = child.stdout.as_mut().unwrap();
    out.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"locked", "the fake holder did not get the lock");
    child
}

/// `--dry-run` on every mutating command: the checks run, the plan prints (text and JSON), and
/// nothing changes — the servers (start time, role, timeline, slots, settings), the files
/// beside the data directories and the inventory are the same before and after.
#[test]
fn dry_runs_change_nothing() {
    let c = LocalLab::new(2);
    let inv = c.inventory("16MB");
    let inv_s = inv.to_str().unwrap().to_string();
    pgrepl(&["-i", &inv_s, "init"], &[]).expect_code(0);
    // A restart-only change waits in the inventory: init --dry-run shows it and restarts nothing.
    let inv = c.inventory("24MB");
    let snapshot = || {
        let mut s: Vec<String> = (0..2)
            .map(|i| {
                c.psql(
                    i,
                    "SELECT pg_postmaster_start_time()::text || pg_is_in_recovery()::text || \
                     (SELECT timeline_id FROM pg_control_checkpoint())::text || \
                     current_setting('shared_buffers') || \
                     coalesce((SELECT string_agg(slot_name || active::text, ',' ORDER BY slot_name) FROM pg_replication_slots), '')",
                )
            })
            .collect();
        let base = c.data_dir(0).parent().unwrap().to_path_buf();
        let mut files: Vec<String> = std::fs::read_dir(&base)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.ends_with(".pgrepl-lock"))
            .collect();
        files.sort();
        s.extend(files);
        for i in 0..2 {
            s.push(c.data_dir(i).join("standby.signal").exists().to_string());
        }
        s.push(std::fs::read_to_string(&inv).unwrap());
        s
    };
    let before = snapshot();
    for args in [
        &["init"][..],
        &["promote", "b", "--force"],
        &["rebuild", "b"],
        &["switchover", "b"],
        &["destroy"],
        &["unlock"],
        &["slot", "drop", "a", "b", "--force"],
    ] {
        for json in [false, true] {
            let mut argv = vec!["-i", &inv_s];
            argv.extend(args);
            argv.push("--dry-run");
            if json {
                argv.extend(["--format", "json"]);
            }
            let r = pgrepl(&argv, &[]);
            r.expect_code(0);
            if json {
                let v: serde_json::Value = serde_json::from_str(&r.stdout)
                    .unwrap_or_else(|e| panic!("{argv:?}: {e}: {}", r.stdout));
                assert_eq!(v["dry_run"], true, "{argv:?}: {v}");
                let plan = match args[0] {
                    "switchover" => "switchover-dry-run",
                    "destroy" => "destroy",
                    _ => "dry-run",
                };
                validate_json(&r.stdout, &schema(plan));
            } else {
                assert!(
                    r.stdout.contains("dry run")
                        || r.stderr.contains("dry run")
                        || r.stderr.contains("--dry-run"),
                    "{argv:?}: {}\n{}",
                    r.stdout,
                    r.stderr
                );
            }
            assert_eq!(snapshot(), before, "{argv:?} changed something");
        }
    }
    let r = pgrepl(&["-i", &inv_s, "init", "--dry-run"], &[]);
    assert!(r.stdout.contains("shared_buffers"), "{}", r.stdout);
}

/// History (issue "CLI contract"): each mutating run that got past its checks is journaled on
/// every host; `history` merges the journals (one host's loss loses nothing), oldest first,
/// with who, how it ended and the figures; refusals and dry runs are not in it.
#[test]
fn history_lists_what_pgrepl_did_from_the_hosts_journals() {
    let c = LocalLab::new(2);
    let inv = c.inventory("16MB");
    let inv = inv.to_str().unwrap();
    pgrepl(&["-i", inv, "init"], &[]).expect_code(0);
    pgrepl(&["-i", inv, "switchover", "b", "--yes"], &[]).expect_code(0);
    pgrepl(&["-i", inv, "promote", "b", "--yes"], &[]).expect_code(4);
    pgrepl(&["-i", inv, "switchover", "a", "--dry-run"], &[]).expect_code(0);
    pgrepl(&["-i", inv, "switchover", "a", "--yes"], &[]).expect_code(0);
    // One host's journal is lost: the other still has every record.
    std::fs::remove_file(format!("{}.pgrepl-history", c.data_dir(1).display())).unwrap();
    let v = run(&["-i", inv, "history"], 0, "history");
    let entries = v["entries"].as_array().unwrap();
    let commands: Vec<&str> = entries
        .iter()
        .map(|e| e["command"].as_str().unwrap())
        .collect();
    assert_eq!(commands, ["init", "switchover", "switchover"], "{v}");
    for e in entries {
        assert_eq!(e["outcome"], "ok", "{e}");
        assert!(e["user"].as_str().is_some_and(|u| !u.is_empty()), "{e}");
        assert!(
            e["started"].as_str().unwrap() <= e["ended"].as_str().unwrap(),
            "{e}"
        );
    }
    assert_eq!(entries[1]["result"]["new_primary"], "b", "{v}");
    assert!(
        entries[1]["result"]["write_gap_seconds"].as_f64().is_some(),
        "{v}"
    );
    assert!(
        entries[1]["args"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "b"),
        "{v}"
    );
    let t = pgrepl(&["-i", inv, "history", "--limit", "1"], &[]);
    t.expect_code(0);
    assert!(
        t.stdout.contains("switchover a --yes") && !t.stdout.contains("switchover b"),
        "{}",
        t.stdout
    );
}
