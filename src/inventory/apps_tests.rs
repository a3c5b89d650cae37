//! Unit tests of `roles:` and `databases:` (and the pg_hba.conf lines they bring).

use super::*;

const BASE: &str = "cluster: main
postgres:
  version: 15
replication:
  password_env: PGREPL_TEST_PW
hosts:
  - name: pg1
    address: 10.0.0.1
    role: primary
";

fn with(extra: &str) -> Result<Inventory, Error> {
    parse(&format!("{BASE}{extra}"), Path::new("inv.yml"))
}

fn messages(extra: &str) -> Vec<String> {
    match with(extra) {
        Err(Error::Inventory { issues, .. }) => issues
            .into_iter()
            .map(|i| format!("{}:{} {}", i.line, i.column, i.message))
            .collect(),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("accepted:\n{extra}"),
    }
}

#[test]
fn roles_and_databases_resolve_with_the_first_role_as_owner() {
    let inv = with("roles:\n  - {name: app, password_env: APP_PW, clients: [10.1.0.0/16]}\n  - {name: report, password_file: /etc/pw}\ndatabases:\n  - name: shop\n  - {name: stats, owner: report}\n").unwrap();
    let names: Vec<&str> = inv.roles.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["app", "report"]);
    assert_eq!(inv.roles[0].clients, ["10.1.0.0/16"]);
    let owners: Vec<(&str, &str)> = inv
        .databases
        .iter()
        .map(|d| (d.name.as_str(), d.owner.as_str()))
        .collect();
    assert_eq!(owners, [("shop", "app"), ("stats", "report")]);
    let debug = format!("{:?}", inv.roles[0]);
    assert!(debug.contains("Env(APP_PW)"), "{debug}");
}

#[test]
fn bad_roles_and_databases_are_refused_at_their_positions() {
    let m = messages("roles:\n  - {name: replicator, password_env: A}\n  - {name: app, password: hunter2}\n  - {name: App, password_env: B}\n  - {name: x, password_env: C, clients: [10.0.0.1]}\n  - {name: y}\ndatabases:\n  - {name: postgres}\n  - {name: d1, owner: nobody}\n");
    let want = [
        "11:12 role \"replicator\" is pgrepl's or PostgreSQL's own",
        "12:27 passwords are never written in the inventory",
        "13:12 role name \"App\" is not allowed",
        "14:42 \"10.0.0.1\" is not a network in CIDR form",
        "15:5 no password source is given",
        "17:12 database \"postgres\" is PostgreSQL's own",
        "18:23 owner \"nobody\" is not one of roles:",
    ];
    for w in want {
        assert!(m.iter().any(|x| x == w), "missing {w:?} in {m:#?}");
    }
}

#[test]
fn the_monitor_role_is_reserved() {
    let inv = with("").unwrap();
    assert_eq!(inv.monitor_user, "pgrepl_monitor");
    let m = messages("roles:\n  - {name: pgrepl_monitor, password_env: A}\n");
    assert_eq!(
        m,
        ["11:12 role \"pgrepl_monitor\" is pgrepl's or PostgreSQL's own"]
    );
    let rep = |key: &str| {
        let text = BASE.replace(
            "  password_env: PGREPL_TEST_PW\n",
            &format!("  password_env: PGREPL_TEST_PW\n  {key}: pgrepl_monitor\n"),
        );
        match parse(&text, Path::new("inv.yml")) {
            Err(Error::Inventory { issues, .. }) => issues[0].message.clone(),
            other => panic!("{key}: pgrepl_monitor accepted: {other:?}"),
        }
    };
    assert_eq!(rep("user"), "pgrepl_monitor is pgrepl's monitor role");
    assert_eq!(
        rep("rewind_user"),
        "rewind user \"pgrepl_monitor\" is not allowed"
    );
}

#[test]
fn a_database_without_any_role_is_refused() {
    let m = messages("databases:\n  - name: shop\n");
    assert!(
        m.iter()
            .any(|x| x.contains("has no owner and no role is declared")),
        "{m:?}"
    );
}

#[test]
fn two_servers_on_one_socket_of_one_machine_are_refused() {
    let text = "cluster: main\npostgres: {version: 15, port: 5550, socket_dir: /run/pg}\nreplication: {password_env: X}\naccess: {transport: local}\nhosts:\n  - {name: a, address: 127.0.0.1, role: primary}\n  - {name: b, address: 127.0.0.2, role: replica}\n";
    match parse(text, Path::new("inv.yml")) {
        Err(Error::Inventory { issues, .. }) => {
            assert!(
                issues.iter().any(|i| i.line == 7
                    && i.message
                        .contains("b and a would share the socket /run/pg/.s.PGSQL.5550")),
                "{issues:?}"
            )
        }
        other => panic!("accepted: {other:?}"),
    }
}

#[test]
fn md5_on_a_network_line_is_refused_and_allowed_on_a_local_one() {
    let net = "cluster: main\npostgres:\n  version: 15\n  hba:\n    - {type: host, database: all, user: app, address: 10.0.0.0/8, method: md5}\nreplication:\n  password_env: X\nhosts:\n  - {name: pg1, address: 10.0.0.1, role: primary}\n";
    match parse(net, Path::new("inv.yml")) {
        Err(Error::Inventory { issues, .. }) => assert!(
            issues
                .iter()
                .any(|i| i.line == 5 && i.message.contains("method md5 on a network line")),
            "{issues:?}"
        ),
        other => panic!("accepted: {other:?}"),
    }
    let local = net.replace(
        "{type: host, database: all, user: app, address: 10.0.0.0/8, method: md5}",
        "{type: local, database: all, user: app, method: md5}",
    );
    assert!(parse(&local, Path::new("inv.yml")).is_ok());
}
