//! `pgrepl render` through the binary: byte-identical output run to run, JSON on stdout only,
//! user templates winning over the embedded ones, and an undefined variable failing.

use crate::harness::{example_inventory as example, pgrepl};

#[test]
fn render_is_deterministic_and_scriptable() {
    let inv = example();
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    for d in [&a, &b] {
        pgrepl(
            &["-i", &inv, "render", "--out", d.path().to_str().unwrap()],
            &[],
        )
        .expect_code(0);
    }
    for host in ["pg1", "pg2", "pg3"] {
        for f in ["postgresql.conf", "pg_hba.conf", "pg_ident.conf"] {
            let x = std::fs::read(a.path().join(host).join(f)).unwrap();
            let y = std::fs::read(b.path().join(host).join(f)).unwrap();
            assert_eq!(x, y, "{host}/{f} differs between two renders");
            assert!(x.starts_with(b"# managed by pgrepl"), "{host}/{f}");
        }
    }
    let pg3 = std::fs::read_to_string(a.path().join("pg3/postgresql.conf")).unwrap();
    assert!(
        pg3.contains("primary_conninfo = 'host=198.51.100.12 port=5432 user=replicator"),
        "{pg3}"
    );
    assert!(pg3.contains("shared_buffers = '1GB'"), "{pg3}");

    let j = pgrepl(&["-i", &inv, "render", "--format", "json"], &[]);
    j.expect_code(0);
    let v: serde_json::Value =
        serde_json::from_str(&j.stdout).expect("one JSON document on stdout");
    assert!(v["hosts"]["pg2"]["pg_hba.conf"]
        .as_str()
        .unwrap()
        .contains("scram-sha-256"));

    let t = tempfile::tempdir().unwrap();
    std::fs::write(
        t.path().join("pg_ident.conf.j2"),
        "# site ident for {{ host.name }}\n",
    )
    .unwrap();
    let r = pgrepl(
        &[
            "-i",
            &inv,
            "render",
            "--host",
            "pg2",
            "--templates",
            t.path().to_str().unwrap(),
        ],
        &[],
    );
    r.expect_code(0);
    assert!(r.stdout.contains("# site ident for pg2\n"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("==> pg2/postgresql.conf <==\n# managed by pgrepl"),
        "embedded templates still used for the others"
    );

    std::fs::write(t.path().join("pg_ident.conf.j2"), "{{ no_such_thing }}\n").unwrap();
    let r = pgrepl(
        &[
            "-i",
            &inv,
            "render",
            "--templates",
            t.path().to_str().unwrap(),
        ],
        &[],
    );
    r.expect_code(1);
    assert!(
        r.stderr.contains("pg_ident.conf.j2") && r.stderr.contains("undefined"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.is_empty());
}
