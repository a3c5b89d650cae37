//! Bad inventories are rejected before any connection: exit code 3, file:line:col, a fix.
//! A fake `ssh` first on PATH records any attempt to connect (and makes sure none can leave
//! the machine).

use std::path::Path;

use crate::harness::pgrepl;

/// (fixture, expected "line:col", words the message must contain, words the fix must contain)
const CASES: &[(&str, &str, &str, &str)] = &[
    (
        "unknown_key.yml",
        "4:3",
        "unknown field `verison`",
        "remove or correct the key",
    ),
    (
        "duplicate_key.yml",
        "2:1",
        "duplicate mapping key: cluster",
        "keep one",
    ),
    ("tab_indent.yml", "3:1", "tab", "spaces"),
    (
        "two_primaries.yml",
        "16:11",
        "second primary",
        "exactly one primary",
    ),
    (
        "upstream_loop.yml",
        "17:15",
        "form a loop",
        "end at the primary",
    ),
    (
        "unknown_upstream.yml",
        "17:15",
        "\"pg9\" is not a host",
        "pg1, pg2, pg3",
    ),
    (
        "duplicate_host.yml",
        "14:11",
        "pg1 is used twice",
        "its own name",
    ),
    (
        "bad_slot_name.yml",
        "14:11",
        "cannot be a replication slot name",
        "slot: db_2",
    ),
    (
        "injection_ssh_option.yml",
        "15:14",
        "is not an IP address or host name",
        "not starting with '-'",
    ),
    ("injection_path.yml", "4:13", "not allowed", "absolute path"),
    (
        "injection_sql_role.yml",
        "5:9",
        "is not allowed",
        "lower-case letters",
    ),
    (
        "inline_password.yml",
        "5:13",
        "never written in the inventory",
        "password_env",
    ),
];

#[test]
fn bad_inventories_are_rejected_before_any_connection() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad");
    let fake = tempfile::tempdir().unwrap();
    let marker = fake.path().join("ssh-was-called");
    for tool in ["ssh", "psql", "pg_basebackup"] {
        let p = fake.path().join(tool);
        std::fs::write(
            &p,
            format!("#!/bin/sh\ntouch {}\nexit 255\n", marker.display()),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!(
        "{}:{}",
        fake.path().display(),
        std::env::var("PATH").unwrap()
    );
    let mut n = 0;
    for (file, pos, msg, fix) in CASES {
        let f = fixtures.join(file);
        let fs = f.to_str().unwrap();
        for cmd in ["check", "init"] {
            let r = pgrepl(
                &["-i", fs, cmd],
                &[("PATH", &path), ("PGREPL_TEST_UNUSED", "x")],
            );
            r.expect_code(3);
            let want = format!("{fs}:{pos}: ");
            let line = r
                .stderr
                .lines()
                .find(|l| l.contains(&want))
                .unwrap_or_else(|| panic!("{file}: no {want} in\n{}", r.stderr));
            assert!(line.contains(msg), "{file}: {line:?} lacks {msg:?}");
            let fix_line = r
                .stderr
                .lines()
                .skip_while(|l| !l.contains(&want))
                .nth(1)
                .unwrap_or("");
            assert!(
                fix_line.trim_start().starts_with("fix: ") && fix_line.contains(fix),
                "{file}: fix {fix_line:?} lacks {fix:?}"
            );
            assert!(
                r.stdout.is_empty(),
                "{file}: stdout must be empty: {}",
                r.stdout
            );
            assert!(
                !r.all().contains("hunter2"),
                "{file}: an inline password was echoed"
            );
            n += 1;
        }
    }
    assert_eq!(n, CASES.len() * 2);
    assert!(
        !marker.exists(),
        "a bad inventory made pgrepl start ssh/psql/pg_basebackup"
    );
    assert!(!Path::new("/tmp/pwned").exists(), "an injection ran");
}

#[test]
fn missing_inventory_and_loose_password_file_are_refused() {
    let r = pgrepl(&["check"], &[]);
    r.expect_code(3);
    assert!(r.stderr.contains("-i <file>"), "{}", r.stderr);

    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "canary-loose\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).unwrap();
    let inv = dir.path().join("inv.yml");
    std::fs::write(
        &inv,
        format!(
            "cluster: c\npostgres: {{version: 15}}\nreplication:\n  password_file: {}\naccess: {{transport: local}}\nhosts:\n  - {{name: p, address: 127.0.0.1, role: primary, data_dir: {}/p}}\n",
            pw.display(),
            dir.path().display()
        ),
    )
    .unwrap();
    let r = pgrepl(&["-i", inv.to_str().unwrap(), "init"], &[]);
    r.expect_code(3);
    assert!(
        r.stderr.contains(":4:18:") && r.stderr.contains("chmod 600"),
        "{}",
        r.stderr
    );
    assert!(!r.all().contains("canary-loose"));
    assert!(
        !dir.path().join("p").exists(),
        "nothing may be created before the password is validated"
    );
}
