//! Exit codes of the command line through the binary, no server needed: every usage error exits
//! 2 with clap's message, `--help` exits 0, and an unknown host is the same preflight failure
//! (exit 4) for every command that takes one.

use crate::harness::{example_inventory as example, pgrepl, schema, validate_json};

#[test]
fn a_bad_size_is_a_usage_error() {
    let inv = example();
    for flag in ["--lag-warning-bytes", "--lag-critical-bytes"] {
        let r = pgrepl(&["-i", &inv, "status", flag, "lots"], &[]);
        r.expect_code(2);
        assert!(
            r.stderr.contains(flag) && r.stderr.contains("not a size"),
            "{}",
            r.stderr
        );
        assert!(r.stdout.is_empty());
    }
}

#[test]
fn bad_seconds_are_usage_errors() {
    let inv = example();
    for args in [
        &["--interval", "soon"][..],
        &["--interval=-1"],
        &["--host-timeout", "NaN"],
        &["--wait", "1.5"],
        &["--lag-warning-seconds", "inf"],
        &["--lag-critical-seconds=-3"],
    ] {
        let mut a = vec!["-i", &inv, "status"];
        a.extend_from_slice(args);
        let r = pgrepl(&a, &[]);
        r.expect_code(2);
        assert!(r.stderr.contains("invalid value"), "{args:?}: {}", r.stderr);
    }
}

#[test]
fn prometheus_is_a_usage_error_outside_status() {
    let inv = example();
    for cmd in ["render", "check", "init"] {
        let r = pgrepl(&["-i", &inv, "--format", "prometheus", cmd], &[]);
        r.expect_code(2);
        assert!(
            r.stderr
                .contains("--format prometheus is for `status` only"),
            "{}",
            r.stderr
        );
        assert!(r.stdout.is_empty());
    }
}

#[test]
fn other_usage_errors_exit_2_and_help_exits_0() {
    let inv = example();
    for args in [
        &[][..],
        &["no-such-command"],
        &["switchover"],
        &["switchover", "a", "--to", "b"],
        &["rebuild", "h", "--method", "sideways"],
        &["--color", "purple", "check"],
    ] {
        let mut a = vec!["-i", inv.as_str()];
        a.extend_from_slice(args);
        pgrepl(&a, &[]).expect_code(2);
    }
    for args in [&["--help"][..], &["--version"], &["status", "--help"]] {
        let r = pgrepl(args, &[]);
        r.expect_code(0);
        assert!(!r.stdout.is_empty(), "{args:?}");
    }
}

/// With `--format json` a usage error is also one error document on stdout (class `usage`,
/// exit 2, the help to read next); clap's text stays on stderr. Help and version do not change.
#[test]
fn usage_errors_with_format_json_are_one_error_document() {
    let inv = example();
    for (args, next) in [
        (&["status", "--bogus"][..], "pgrepl status --help"),
        (&["status", "--interval", "soon"], "pgrepl status --help"),
        (
            &["rebuild", "h", "--method", "sideways"],
            "pgrepl rebuild --help",
        ),
        (&["switchover"], "pgrepl switchover --help"),
        (&["slot", "drop", "h"], "pgrepl slot drop --help"),
        (&["no-such-command"], "pgrepl --help"),
        (&[], "pgrepl --help"),
    ] {
        let mut a = vec!["-i", inv.as_str(), "--format", "json"];
        a.extend_from_slice(args);
        let r = pgrepl(&a, &[]);
        r.expect_code(2);
        let v: serde_json::Value = serde_json::from_str(&r.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: not one JSON document ({e}): {}", r.stdout));
        let e = &v["error"];
        assert_eq!(
            (
                e["exit_code"].clone(),
                e["class"].clone(),
                e["next"].clone()
            ),
            (2.into(), "usage".into(), next.into()),
            "{args:?}: {v}"
        );
        let first = r.stderr.lines().next().unwrap_or("");
        assert_eq!(
            format!("error: {}", e["message"].as_str().unwrap()),
            first,
            "{args:?}: the message is clap's first line"
        );
        validate_json(&r.stdout, &schema("error"));
    }
    // `--format=json` after the command, too.
    let r = pgrepl(&["-i", &inv, "check", "--bogus", "--format=json"], &[]);
    r.expect_code(2);
    validate_json(&r.stdout, &schema("error"));
    for args in [
        &["--format", "json", "--help"][..],
        &["--format", "json", "--version"],
    ] {
        let r = pgrepl(args, &[]);
        r.expect_code(0);
        assert!(
            !r.stdout.trim_start().starts_with('{'),
            "{args:?}: {}",
            r.stdout
        );
    }
}

#[test]
fn an_unknown_host_is_a_preflight_failure_for_every_command() {
    let inv = example();
    for args in [
        &["render", "--host", "nope"][..],
        &["promote", "nope"],
        &["rebuild", "nope"],
        &["switchover", "nope"],
        &["switchover", "--to", "nope", "--dry-run"],
    ] {
        let mut a = vec!["-i", inv.as_str()];
        a.extend_from_slice(args);
        let r = pgrepl(&a, &[]);
        r.expect_code(4);
        assert!(
            r.stderr.contains("nope is not a host of") && r.stderr.contains("pg1, pg2, pg3"),
            "{args:?}: {}",
            r.stderr
        );
    }
}

#[test]
fn verbose_output_stays_on_stderr() {
    let inv = example();
    let r = pgrepl(&["-i", &inv, "render", "--format", "json", "-vv"], &[]);
    r.expect_code(0);
    serde_json::from_str::<serde_json::Value>(&r.stdout).expect("only JSON on stdout");
    assert!(r.stderr.contains("render: finished"), "{}", r.stderr);
    let r = pgrepl(
        &["-i", &inv, "render", "--host", "pg1"],
        &[("PGREPL_LOG", "pgrepl=info")],
    );
    r.expect_code(0);
    assert!(r.stderr.contains("render: finished"), "{}", r.stderr);
    let r = pgrepl(&["-i", &inv, "render", "--host", "pg1"], &[]);
    assert!(r.stderr.is_empty(), "{}", r.stderr);
}

/// Completions and man pages come from the binary itself, with no inventory: the bash script
/// loads in a real bash and registers pgrepl; `man --out` writes a page per command.
#[test]
fn completions_and_man_pages_need_no_inventory() {
    let r = pgrepl(&["completions", "bash"], &[]);
    r.expect_code(0);
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("pgrepl.bash");
    std::fs::write(&script, &r.stdout).unwrap();
    let out = std::process::Command::new("bash")
        .args([
            "-c",
            &format!("source {} && complete -p pgrepl", script.display()),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("pgrepl"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for shell in ["zsh", "fish"] {
        pgrepl(&["completions", shell], &[]).expect_code(0);
    }
    pgrepl(&["completions", "tcsh"], &[]).expect_code(2);
    let man = dir.path().join("man1");
    let r = pgrepl(&["man", "--out", man.to_str().unwrap()], &[]);
    r.expect_code(0);
    for page in [
        "pgrepl.1",
        "pgrepl-switchover.1",
        "pgrepl-slot-drop.1",
        "pgrepl-destroy.1",
    ] {
        let text =
            std::fs::read_to_string(man.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.starts_with(".ie") || text.contains(".TH"), "{page}");
    }
    let r = pgrepl(&["man"], &[]);
    r.expect_code(0);
    assert!(r.stdout.contains(".TH pgrepl"), "{}", r.stdout);
}

/// The documents that need no server validate against their schemas: render's, an inventory
/// failure's and a preflight refusal's.
#[test]
fn documents_without_a_server_validate() {
    let inv = example();
    let r = pgrepl(&["-i", &inv, "render", "--format", "json"], &[]);
    r.expect_code(0);
    validate_json(&r.stdout, &schema("render"));
    // With --out the files are written, and the document is printed all the same.
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();
    let r = pgrepl(
        &["-i", &inv, "render", "--out", dir, "--format", "json"],
        &[],
    );
    r.expect_code(0);
    validate_json(&r.stdout, &schema("render"));
    assert!(out.path().join("pg1/postgresql.conf").exists());
    let r = pgrepl(
        &["-i", "/nonexistent.yml", "status", "--format", "json"],
        &[],
    );
    r.expect_code(3);
    validate_json(&r.stdout, &schema("error"));
    let r = pgrepl(&["status", "--format", "json"], &[("PGREPL_INVENTORY", "")]);
    validate_json(&r.stdout, &schema("error"));
    let r = pgrepl(
        &["-i", &inv, "render", "--host", "nope", "--format", "json"],
        &[],
    );
    r.expect_code(4);
    validate_json(&r.stdout, &schema("error"));
}
