//! Unit tests of loading and validation (the integration suite drives the binary with bad
//! files: tests/bad_inventories.rs).

use super::*;

const GOOD: &str = "cluster: main
postgres:
  version: 15
  settings:
    shared_buffers: 256MB
    max_connections: 200
    hot_standby_feedback: on
replication:
  password_env: PGREPL_TEST_PW
hosts:
  - name: pg1
    address: 10.0.0.1
    role: primary
  - name: pg2
    address: 10.0.0.2
    role: replica
  - name: pg3
    address: 10.0.0.3
    role: replica
    upstream: pg2
";

fn issues(text: &str) -> Vec<InventoryIssue> {
    match parse(text, Path::new("inv.yml")) {
        Err(Error::Inventory { issues, .. }) => issues,
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("accepted:\n{text}"),
    }
}

#[test]
fn good_inventory_resolves_defaults() {
    let inv = parse(GOOD, Path::new("inv.yml")).unwrap();
    assert_eq!(inv.os_user, "postgres");
    assert_eq!(inv.replication_user, "replicator");
    let pg2 = inv.host("pg2").unwrap();
    assert_eq!(pg2.data_dir, "/var/lib/postgresql/15/main");
    assert_eq!(pg2.bin_dir, "/usr/lib/postgresql/15/bin");
    assert_eq!(pg2.upstream.as_deref(), Some("pg1"));
    assert_eq!(pg2.slot, "pg2");
    assert_eq!(inv.host("pg3").unwrap().upstream.as_deref(), Some("pg2"));
    assert_eq!(inv.settings["max_connections"], "200");
    assert_eq!(inv.settings["hot_standby_feedback"], "on");
    let waves: Vec<Vec<&str>> = inv
        .replica_waves()
        .iter()
        .map(|w| w.iter().map(|h| h.name.as_str()).collect())
        .collect();
    assert_eq!(waves, vec![vec!["pg2"], vec!["pg3"]]);
}

#[test]
fn with_primary_reroutes_the_topology() {
    let inv = parse(GOOD, Path::new("inv.yml")).unwrap();
    let after = inv.with_primary("pg2");
    assert_eq!(after.primary().name, "pg2");
    assert_eq!(after.host("pg2").unwrap().upstream, None);
    assert_eq!(after.host("pg1").unwrap().upstream.as_deref(), Some("pg2"));
    assert_eq!(after.host("pg1").unwrap().role, Role::Replica);
    assert_eq!(after.host("pg3").unwrap().upstream.as_deref(), Some("pg2"));
    let waves: Vec<usize> = after.replica_waves().iter().map(Vec::len).collect();
    assert_eq!(waves, vec![2]);
    let after = inv.with_primary("pg3");
    assert_eq!(after.host("pg2").unwrap().upstream.as_deref(), Some("pg3"));
    assert_eq!(after.host("pg1").unwrap().upstream.as_deref(), Some("pg3"));
}

#[test]
fn unknown_key_has_position() {
    let i = issues(&GOOD.replace("  version: 15", "  version: 15\n  verison: 16"));
    assert_eq!((i[0].line, i[0].column), (4, 3), "{i:?}");
    assert!(i[0].message.contains("unknown field"), "{i:?}");
}

#[test]
fn duplicate_key_is_refused() {
    let i = issues(&GOOD.replace("cluster: main", "cluster: main\ncluster: other"));
    assert!(i[0].message.to_lowercase().contains("duplicate"), "{i:?}");
    assert_eq!(i[0].line, 2);
}

#[test]
fn tabs_are_refused() {
    let i = issues(&GOOD.replace("  version: 15", "\tversion: 15"));
    assert_eq!(i[0].line, 3);
}

#[test]
fn two_primaries_and_loops_and_bad_slots() {
    let text = GOOD.replace(
        "    address: 10.0.0.2\n    role: replica",
        "    address: 10.0.0.2\n    role: primary",
    );
    let i = issues(&text);
    assert!(
        i.iter().any(|x| x.message.contains("second primary")),
        "{i:?}"
    );

    let text = GOOD.replace(
        "    role: replica\n  - name: pg3",
        "    role: replica\n    upstream: pg3\n  - name: pg3",
    );
    let i = issues(&text);
    assert!(i.iter().any(|x| x.message.contains("loop")), "{i:?}");

    // A host name that is not a valid slot name gives a valid one (every host: a primary is a
    // replica after the next failover).
    let text = GOOD
        .replace("name: pg2", "name: PG-2")
        .replace("upstream: pg2", "upstream: PG-2")
        .replace("name: pg1", "name: postgres-video-master")
        .replace("upstream: pg1", "upstream: postgres-video-master");
    let inv = crate::inventory::parse(&text, Path::new("t.yml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(inv.host("PG-2").unwrap().slot, "pg_2");
    assert_eq!(
        inv.host("postgres-video-master").unwrap().slot,
        "postgres_video_master"
    );
    // Two names that make one slot are refused, whatever their roles.
    let i = issues(&text.replace("name: pg3", "name: pg_2"));
    assert!(
        i.iter().any(|x| x.message.contains("both use slot pg_2")),
        "{i:?}"
    );
    let i = issues(&text.replace(
        "    role: replica\n  - name: pg3",
        "    role: replica\n    slot: Bad-Slot\n  - name: pg3",
    ));
    assert!(
        i.iter().any(|x| x
            .message
            .contains("\"Bad-Slot\" cannot be a replication slot name")
            && x.hint.contains("slot: bad_slot")),
        "{i:?}"
    );
}

#[test]
fn injection_attempts_are_refused() {
    for (from, to) in [
        (
            "address: 10.0.0.2",
            "address: -oProxyCommand=touch /tmp/pwned",
        ),
        ("address: 10.0.0.2", "address: \"10.0.0.2\\nHost evil\""),
        (
            "  version: 15",
            "  version: 15\n  data_dir: /srv/$(touch /tmp/pwned)",
        ),
        ("  version: 15", "  version: 15\n  data_dir: /srv/`id`"),
        (
            "  version: 15",
            "  version: 15\n  os_user: \"postgres; rm -rf /\"",
        ),
        (
            "  password_env: PGREPL_TEST_PW",
            "  password_env: PGREPL_TEST_PW\n  user: \"rep\\\"; DROP ROLE x; --\"",
        ),
        (
            "    role: replica\n  - name: pg3",
            "    role: replica\n    slot: \"a'); DROP\"\n  - name: pg3",
        ),
        (
            "    max_connections: 200",
            "    max_connections: \"200\\nshared_preload_libraries = evil\"",
        ),
    ] {
        let text = GOOD.replacen(from, to, 1);
        assert_ne!(text, GOOD, "{from}");
        let i = issues(&text);
        assert!(!i.is_empty() && i.iter().all(|x| x.line > 0), "{to}: {i:?}");
    }
}

#[test]
fn inline_password_and_trust_are_refused() {
    let i = issues(&GOOD.replace("  password_env: PGREPL_TEST_PW", "  password: hunter2"));
    assert!(
        i.iter().any(|x| x.message.contains("never written")),
        "{i:?}"
    );
    assert!(!format!("{i:?}").contains("hunter2"));
    let i = issues(&GOOD.replace("  version: 15", "  version: 15\n  hba:\n    - {type: host, database: all, user: all, address: 0.0.0.0/0, method: trust}"));
    assert!(i.iter().any(|x| x.message.contains("trust")), "{i:?}");
}

#[test]
fn versions_13_to_18_are_accepted_and_the_others_refused_with_the_range() {
    for v in [13, 14, 15, 16, 17, 18] {
        let inv = parse(
            &GOOD.replace("  version: 15", &format!("  version: {v}")),
            Path::new("inv.yml"),
        )
        .unwrap();
        assert_eq!(inv.version, v);
        assert_eq!(
            inv.host("pg1").unwrap().bin_dir,
            format!("/usr/lib/postgresql/{v}/bin")
        );
    }
    for v in [12, 19] {
        let i = issues(&GOOD.replace("  version: 15", &format!("  version: {v}")));
        assert_eq!(i[0].message, format!("PostgreSQL {v} is not supported"));
        assert_eq!(i[0].hint, "pgrepl supports PostgreSQL 13 to 18");
    }
}

#[test]
fn hba_oauth_is_accepted_from_18_only_with_what_postgresql_needs() {
    let oauth = |v: u32, options: &str, settings: &str| {
        GOOD.replace(
            "  version: 15\n  settings:\n",
            &format!("  version: {v}\n  hba:\n    - {{type: host, database: all, user: all, address: 10.0.0.0/8, method: oauth{options}}}\n  settings:\n{settings}"),
        )
    };
    let opts = ", options: {scope: openid email, issuer: issuer.example.com}";
    let lib = "    oauth_validator_libraries: my_validator\n";
    let inv = parse(&oauth(18, opts, lib), Path::new("inv.yml")).unwrap();
    assert_eq!(inv.hba[0].method, "oauth");
    assert_eq!(
        inv.hba[0]
            .options
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>(),
        ["issuer=issuer.example.com", "scope=openid email"]
    );
    let i = issues(&oauth(17, opts, lib));
    assert_eq!(i.len(), 1, "{i:?}");
    assert_eq!(
        i[0].message,
        "pg_hba method oauth needs PostgreSQL 18 or later; the inventory's postgres.version is 17"
    );
    assert_eq!((i[0].line, i[0].column), (5, 75), "{i:?}");
    // PostgreSQL 18 refuses to load an oauth line without issuer and scope, or without a
    // validator library: so does the inventory.
    let i = issues(&oauth(18, "", ""));
    let msgs: Vec<&str> = i.iter().map(|x| x.message.as_str()).collect();
    assert_eq!(msgs, [
        "pg_hba method oauth needs the option issuer (PostgreSQL refuses the line without it)",
        "pg_hba method oauth needs the option scope (PostgreSQL refuses the line without it)",
        "pg_hba method oauth needs postgres.settings.oauth_validator_libraries (PostgreSQL refuses the line without it)",
    ]);
    let i = issues(&oauth(18, ", options: {scope: 'a\"b', Issuer: x}", lib));
    assert_eq!(i.len(), 3, "{i:?}");
    assert!(
        i.iter()
            .any(|x| x.message == "pg_hba option name \"Issuer\" is not allowed"),
        "{i:?}"
    );
    assert!(
        i.iter()
            .any(|x| x.message == "pg_hba option scope value \"a\\\"b\" is not allowed"),
        "{i:?}"
    );
}

#[test]
fn replication_capacity_is_sized_and_checked() {
    assert_eq!((needed_wal_senders(3), needed_slots(3)), (10, 10));
    assert_eq!((needed_wal_senders(12), needed_slots(12)), (24, 13));
    let i = issues(&GOOD.replace("    max_connections: 200", "    max_replication_slots: 1"));
    assert!(
        i.iter()
            .any(|x| x.message.contains("cannot serve the 2 other hosts")),
        "{i:?}"
    );
}

#[test]
fn reserved_settings_are_refused() {
    let i = issues(&GOOD.replace("    max_connections: 200", "    port: 5433"));
    assert!(
        i.iter().any(|x| x.message.contains("managed by pgrepl")),
        "{i:?}"
    );
}

#[test]
fn password_file_must_be_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "canary-secret\n").unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).unwrap();
    let text = GOOD.replace(
        "  password_env: PGREPL_TEST_PW",
        &format!("  password_file: {}", pw.display()),
    );
    let inv = parse(&text, Path::new("inv.yml")).unwrap();
    let e = inv.replication_password().unwrap_err().to_string();
    assert!(e.contains("chmod 600"), "{e}");
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    let s = inv.replication_password().unwrap();
    assert_eq!(s.expose(), "canary-secret");
    assert!(!format!("{s:?} {inv:?}").contains("canary"));
}

#[test]
fn addresses() {
    assert!(is_address("10.0.0.1"));
    assert!(is_address("::1"));
    assert!(is_address("db1.example.com"));
    assert!(!is_address("-oProxyCommand=x"));
    assert!(!is_address("a b"));
    assert!(!is_address("a;b"));
    assert!(!is_address(""));
}

#[test]
fn a_bad_host_name_is_reported_once_not_through_its_path_or_slot() {
    let text = GOOD
        .replace("  version: 15", "  version: 15\n  data_dir: /srv/{host}")
        .replace("name: pg2", "name: pg 2")
        .replace("upstream: pg2", "upstream: pg 2");
    let i = issues(&text);
    assert_eq!(i.len(), 1, "{i:?}");
    assert_eq!((i[0].line, i[0].column), (15, 11), "{i:?}");
    assert!(i[0].message.contains("host name \"pg 2\""), "{i:?}");

    // A path that is wrong by itself is still reported, once, at the path.
    let i = issues(&text.replace("/srv/{host}", "/srv/a b/{host}"));
    assert_eq!(i.len(), 2, "{i:?}");
    assert_eq!((i[0].line, i[0].column), (4, 13), "{i:?}");
    assert!(
        i[0].message.starts_with("path \"/srv/a b/{host}\""),
        "{i:?}"
    );

    // An explicit slot is the host's own value and is still checked.
    let i = issues(&text.replace(
        "    upstream: pg 2",
        "    upstream: pg 2\n    slot: \"a-b\"",
    ));
    assert!(
        i.iter().any(|x| x
            .message
            .contains("\"a-b\" cannot be a replication slot name")),
        "{i:?}"
    );
}

#[test]
fn a_bad_cluster_name_is_reported_once_not_through_a_path() {
    let text = GOOD.replace("cluster: main", "cluster: Main DB").replace(
        "  version: 15",
        "  version: 15\n  data_dir: /srv/{cluster}/{host}",
    );
    let i = issues(&text);
    assert_eq!(i.len(), 1, "{i:?}");
    assert_eq!((i[0].line, i[0].column), (1, 10), "{i:?}");
    assert!(i[0].message.contains("cluster name"), "{i:?}");
}

#[test]
fn whole_file_problems_are_at_a_position_in_the_file() {
    let at = |e: Error| match e {
        Error::Inventory { issues, .. } => {
            (issues[0].line, issues[0].column, issues[0].message.clone())
        }
        e => panic!("unexpected error {e}"),
    };
    let huge = format!("{GOOD}{}", "# padding\n".repeat(110_000));
    let (line, column, message) = at(parse(&huge, Path::new("inv.yml")).unwrap_err());
    assert_eq!((line, column), (1, 1), "{message}");
    assert!(message.contains("at most 1 MiB"), "{message}");

    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("inv.yml");
    std::fs::write(&f, &huge).unwrap();
    let (line, column, message) = at(load(&f).unwrap_err());
    assert_eq!((line, column), (1, 1), "{message}");

    // Not UTF-8: at the first invalid byte (columns in characters).
    let mut bytes = GOOD.replace("10.0.0.2", "10.0.0.é").into_bytes();
    let i = bytes.windows(2).position(|w| w == "é".as_bytes()).unwrap() + 2;
    bytes.insert(i, 0xff);
    std::fs::write(&f, &bytes).unwrap();
    let (line, column, message) = at(load(&f).unwrap_err());
    assert_eq!((line, column), (15, 22), "{message}");
    assert!(message.contains("not UTF-8"), "{message}");

    // No file at all: there is no position to give.
    let (line, column, _) = at(load(&dir.path().join("missing.yml")).unwrap_err());
    assert_eq!((line, column), (0, 0));
}
