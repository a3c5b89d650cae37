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
        "17:11",
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
    (
        "injection_backquote.yml",
        "4:12",
        "not allowed",
        "absolute path",
    ),
    (
        "injection_slot_quote.yml",
        "18:11",
        "cannot be a replication slot name",
        "slot names allow",
    ),
    (
        "injection_ssh_user.yml",
        "10:11",
        "is not allowed",
        "lower-case letters",
    ),
    (
        "injection_address_space.yml",
        "16:14",
        "is not an IP address or host name",
        "not starting with '-'",
    ),
    (
        "newline_in_path.yml",
        "4:13",
        "not allowed",
        "absolute path",
    ),
    ("nul_in_path.yml", "4:13", "not allowed", "absolute path"),
    ("long_value.yml", "12:11", "host name", "at most 63"),
    (
        "bad_host_name_in_path.yml",
        "15:11",
        "host name \"pg 2\" is not allowed",
        "starting with a letter or digit",
    ),
    (
        "anchor_bomb.yml",
        "6:11",
        "anchors (&), aliases (*) and merge keys (<<) are not allowed",
        "write each value out",
    ),
    (
        "merge_key.yml",
        "13:5",
        "anchors (&), aliases (*) and merge keys (<<) are not allowed",
        "write each value out",
    ),
    (
        "deep_nesting.yml",
        "2:11",
        "expected mapping",
        "YAML syntax",
    ),
    (
        "wrong_type_version.yml",
        "3:12",
        "invalid u32",
        "value's type",
    ),
    (
        "wrong_type_hosts.yml",
        "11:8",
        "expected sequence",
        "value's type",
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
            assert!(!r.stderr.contains("panicked"), "{file}: {}", r.stderr);
            assert_eq!(
                r.stderr.lines().filter(|l| l.contains(&want)).count(),
                1,
                "{file}: a problem is reported once: {}",
                r.stderr
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
    // A huge file is refused by its size, before it is parsed.
    let huge = fake.path().join("huge.yml");
    let valid = std::fs::read_to_string(fixtures.join("injection_path.yml"))
        .unwrap()
        .replace("$(touch /tmp/pwned)", "data");
    std::fs::write(&huge, valid + &"# padding\n".repeat(300_000)).unwrap();
    let r = pgrepl(&["-i", huge.to_str().unwrap(), "init"], &[("PATH", &path)]);
    r.expect_code(3);
    assert!(r.stderr.contains("at most 1 MiB"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains(&format!("{}:1:1: the file is ", huge.display())),
        "a problem of the whole file is at 1:1, not 0:0: {}",
        r.stderr
    );
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    assert_eq!(n, CASES.len() * 2);
    assert!(
        !marker.exists(),
        "a bad inventory made pgrepl start ssh/psql/pg_basebackup"
    );
    assert!(!Path::new("/tmp/pwned").exists(), "an injection ran");
}

#[test]
fn a_bad_host_name_is_not_reported_again_through_what_is_built_from_it() {
    // data_dir: /srv/pg/{host} and the default slot are built from the name "pg 2": only the
    // name is reported, not the path or the slot it would make.
    let f =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad/bad_host_name_in_path.yml");
    let r = pgrepl(
        &["-i", f.to_str().unwrap(), "check"],
        &[("PGREPL_TEST_UNUSED", "x")],
    );
    r.expect_code(3);
    assert!(r.stderr.contains("is invalid (1 problem)"), "{}", r.stderr);
    assert!(!r.stderr.contains("path "), "{}", r.stderr);
    assert!(!r.stderr.contains("slot name"), "{}", r.stderr);
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

/// A valid inventory; `{F}` marks where a property test puts a field under attack.
const TEMPLATE: &str = "cluster: main
postgres:
  version: 15
  data_dir: {data_dir}
  bin_dir: {bin_dir}
  socket_dir: {socket_dir}
replication:
  user: {replication_user}
  password_env: PGREPL_TEST_UNUSED
access:
  transport: ssh
  ssh:
    user: {ssh_user}
hosts:
  - name: {name}
    address: {address}
    role: primary
  - name: pg2
    address: 127.0.0.12
    role: replica
    slot: {slot}
";

const FIELDS: &[(&str, &str)] = &[
    ("data_dir", "/srv/pg/data"),
    ("bin_dir", "/usr/lib/postgresql/15/bin"),
    ("socket_dir", "/var/run/postgresql"),
    ("replication_user", "replicator"),
    ("ssh_user", "postgres"),
    ("name", "pg1"),
    ("address", "127.0.0.11"),
    ("slot", "pg2"),
];

fn fill(attacked: &str, value: &str) -> (String, u64) {
    let mut text = TEMPLATE.to_string();
    let mut line = 0;
    for (f, good) in FIELDS {
        let marker = format!("{{{f}}}");
        if *f == attacked {
            line = text[..text.find(&marker).unwrap()].matches('\n').count() as u64 + 1;
            text = text.replace(&marker, &yaml_quoted(value));
        } else {
            text = text.replace(&marker, good);
        }
    }
    (text, line)
}

/// A YAML double-quoted scalar that carries any string (newlines, NUL, quotes) exactly.
fn yaml_quoted(v: &str) -> String {
    let mut s = String::from("\"");
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => s.push_str(&format!("\\x{:02x}", c as u32)),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

#[allow(clippy::result_large_err)]
fn load_text(text: &str) -> Result<pgrepl::inventory::Inventory, pgrepl::error::Error> {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("inv.yml");
    std::fs::write(&f, text).unwrap();
    pgrepl::inventory::load(&f)
}

#[test]
fn the_property_template_is_valid() {
    for (f, good) in FIELDS {
        let (text, _) = fill(f, good);
        assert!(
            load_text(&text).is_ok(),
            "{f}: {:?}",
            load_text(&text).err()
        );
    }
}

mod props {
    use super::*;
    use proptest::prelude::*;

    /// Text that would do something if it reached a shell, ssh, or SQL unquoted.
    fn hostile() -> impl Strategy<Value = String> {
        let core = prop_oneof![
            Just("$(touch /tmp/pwned)".to_string()),
            Just("`touch /tmp/pwned`".to_string()),
            Just("x'; DROP ROLE postgres; --".to_string()),
            Just("x\"; DROP ROLE postgres; --".to_string()),
            Just("-oProxyCommand=touch /tmp/pwned".to_string()),
            Just("a\nb".to_string()),
            Just("a\0b".to_string()),
            Just("a b".to_string()),
            Just("a;b".to_string()),
            Just("a|b".to_string()),
            Just("a&b".to_string()),
            Just("a>b".to_string()),
            Just("a\\b".to_string()),
            "[a-z]{1,8}[\"'`$;|&<>()\\\\ \\n\\t\\x00*?!#~=\\[\\]{}][ -~]{0,20}",
            "[a-z]{4000,4100}",
        ];
        (prop_oneof![Just(""), Just("-"), Just("/"), Just("x")], core)
            .prop_map(|(p, c)| format!("{p}{c}"))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

        /// Every hostile value in every field that reaches a shell, ssh or SQL is refused, at
        /// the field's own line.
        #[test]
        fn hostile_values_are_refused_at_their_line(field in 0..FIELDS.len(), v in hostile()) {
            let (name, _) = FIELDS[field];
            let (text, line) = fill(name, &v);
            match load_text(&text) {
                Ok(_) => prop_assert!(false, "{name} = {v:?} was accepted"),
                Err(pgrepl::error::Error::Inventory { issues, .. }) => {
                    prop_assert!(issues.iter().any(|i| i.line == line && i.column > 0),
                        "{name} = {v:?}: no problem at line {line}: {issues:?}");
                }
                Err(e) => prop_assert!(false, "{name} = {v:?}: {e}"),
            }
        }

        /// Arbitrary bytes never make the loader panic; whatever fails is an inventory error.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let dir = tempfile::tempdir().unwrap();
            let f = dir.path().join("inv.yml");
            std::fs::write(&f, &bytes).unwrap();
            if let Err(e) = pgrepl::inventory::load(&f) {
                prop_assert!(matches!(e, pgrepl::error::Error::Inventory { .. }), "{e}");
            }
        }

        /// A valid inventory with random text spliced in anywhere: no panic, and any rejection
        /// names a position inside the file.
        #[test]
        fn spliced_text_never_panics(pos in 0usize..600, junk in "[ -~\\n\\t]{0,40}") {
            let (text, _) = fill("slot", "pg2");
            let mut cut = pos.min(text.len());
            while !text.is_char_boundary(cut) { cut -= 1; }
            let spliced = format!("{}{junk}{}", &text[..cut], &text[cut..]);
            if let Err(e) = load_text(&spliced) {
                match e {
                    pgrepl::error::Error::Inventory { issues, .. } => {
                        let lines = spliced.lines().count() as u64 + 1;
                        prop_assert!(issues.iter().all(|i| i.line >= 1 && i.line <= lines),
                            "position outside the file: {issues:?}\n{spliced}");
                    }
                    other => prop_assert!(false, "{other}"),
                }
            }
        }
    }
}
