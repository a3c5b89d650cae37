//! Unit tests of `routers:` (loading, defaults, every refusal at its position).

use super::*;

const BASE: &str = "cluster: main
postgres:
  version: 15
replication:
  password_env: PGREPL_TEST_PW
hosts:
  - {name: pg1, address: 10.0.0.1, role: primary}
  - {name: pg2, address: 10.0.0.2, role: replica}
routers:
  - name: ha
    kind: haproxy
    address: 10.0.0.9
    ports: {write: 5435, read: 5436, stats: 8404}
  - name: bouncer
    kind: pgbouncer
    address: 10.0.0.9
    ssh_port: 2222
    dir: /srv/pgrepl/{router}
    ports: {write: 6432, read: 6433}
    pool_mode: session
    databases: [app]
roles:
  - {name: app, password_env: APP_PW}
databases:
  - name: app
";

fn issues(text: &str) -> Vec<InventoryIssue> {
    match parse(text, Path::new("inv.yml")) {
        Err(Error::Inventory { issues, .. }) => issues,
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("accepted:\n{text}"),
    }
}

fn one(text: &str, line: u64, needle: &str) {
    let i = issues(text);
    assert!(
        i.iter()
            .any(|i| i.line == line && i.message.contains(needle)),
        "wanted {needle:?} on line {line}: {i:?}"
    );
}

#[test]
fn routers_resolve_defaults() {
    let inv = parse(BASE, Path::new("inv.yml")).unwrap();
    let ha = &inv.routers[0];
    assert_eq!(ha.kind, RouterKind::Haproxy);
    assert_eq!(ha.dir, "/var/lib/pgrepl/routers/ha");
    assert_eq!(ha.bin, "/usr/sbin/haproxy");
    assert_eq!(ha.ssh_host, "10.0.0.9");
    assert_eq!(ha.ssh_port, 22);
    assert_eq!(ha.read_targets, ReadTargets::Replicas);
    assert_eq!(ha.ports.stats, Some(8404));
    let pb = &inv.routers[1];
    assert_eq!(pb.dir, "/srv/pgrepl/bouncer");
    assert_eq!(pb.bin, "/usr/sbin/pgbouncer");
    assert_eq!(pb.ssh_port, 2222);
    assert_eq!((pb.pool_mode.as_str(), pb.pool_size), ("session", 20));
    assert_eq!(pb.databases, vec!["app".to_string()]);
}

#[test]
fn no_routers_is_fine() {
    let text = BASE.split("routers:").next().unwrap();
    assert!(parse(text, Path::new("inv.yml"))
        .unwrap()
        .routers
        .is_empty());
}

#[test]
fn router_names_are_unique_across_hosts() {
    one(&BASE.replace("name: ha\n", "name: pg1\n"), 10, "used twice");
    one(&BASE.replace("name: bouncer", "name: ha"), 14, "used twice");
    one(
        &BASE.replace("name: ha\n", "name: -ha\n"),
        10,
        "not allowed",
    );
}

#[test]
fn router_values_are_checked() {
    one(
        &BASE.replace(
            "address: 10.0.0.9\n    ports: {write: 5435",
            "address: 'a b'\n    ports: {write: 5435",
        ),
        12,
        "not an IP address",
    );
    one(
        &BASE.replace("/srv/pgrepl/{router}", "srv/{router}"),
        18,
        "not absolute",
    );
    one(
        &BASE.replace("/srv/pgrepl/{router}", "/srv/{nope}"),
        18,
        "unknown placeholder",
    );
    one(
        &BASE.replace("kind: pgbouncer", "kind: nginx"),
        15,
        "unknown variant",
    );
    one(
        &BASE.replace("pool_mode: session", "pool_mode: sometimes"),
        20,
        "pool mode",
    );
    one(
        &BASE.replace("databases: [app]", "databases: ['a;b']"),
        21,
        "not allowed",
    );
    one(
        &BASE.replace("{write: 5435, read: 5436, stats: 8404}", "{read: 5436}"),
        13,
        "missing field",
    );
    one(
        &BASE.replace("{write: 5435, read: 5436", "{write: 0, read: 5436"),
        13,
        "port 0",
    );
}

#[test]
fn router_settings_belong_to_their_kind() {
    one(
        &BASE.replace(
            "{write: 6432, read: 6433}",
            "{write: 6432, read: 6433, stats: 8405}",
        ),
        19,
        "no stats page",
    );
    one(
        &BASE.replace("stats: 8404}", "stats: 8404}\n    pool_size: 5"),
        14,
        "PgBouncer setting",
    );
}

#[test]
fn router_ports_do_not_clash() {
    one(
        &BASE.replace("read: 5436", "read: 5435"),
        13,
        "port 5435 twice",
    );
    one(
        &BASE.replace("{write: 6432", "{write: 5436"),
        19,
        "both use 10.0.0.9:5436",
    );
    one(
        &BASE.replace(
            "address: 10.0.0.9\n    ports: {write: 5435",
            "address: 10.0.0.1\n    ports: {write: 5432",
        ),
        13,
        "PostgreSQL on pg1",
    );
}

#[test]
fn routers_do_not_share_a_directory() {
    one(
        &BASE.replace("/srv/pgrepl/{router}", "/var/lib/pgrepl/routers/ha"),
        18,
        "share the directory",
    );
    // On another machine, the same directory is fine.
    let other = BASE
        .replace("/srv/pgrepl/{router}", "/var/lib/pgrepl/routers/ha")
        .replace("ssh_port: 2222", "ssh_host: 10.0.0.8");
    assert!(parse(&other, Path::new("inv.yml")).is_ok());
}

#[test]
fn pgbouncer_read_route_needs_one_port() {
    let text = BASE.replace(
        "address: 10.0.0.2, role: replica}",
        "address: 10.0.0.2, role: replica, port: 5433}",
    );
    one(&text, 19, "one port");
    // Without a read route, hosts may differ.
    assert!(parse(&text.replace(", read: 6433}", "}"), Path::new("inv.yml")).is_ok());
}
