//! `pgrepl destroy` on a real cluster over SSH (issue "CLI contract"): asks or needs --yes;
//! --dry-run lists and changes nothing; it stops every server and removes each data directory
//! and pgrepl's files beside it (the log kept with --keep-logs); it refuses another cluster's
//! data before changing anything; a second run has nothing to do.

use std::path::Path;

use crate::harness::{json_doc, pg_tool, Lab};

fn exists(p: &str) -> bool {
    Path::new(p).exists()
}

#[test]
fn destroy_tears_the_cluster_down_and_nothing_else() {
    let lab = Lab::new(&["p", "r1"]);
    let inv = lab.init(&[("p", "primary", None), ("r1", "replica", None)]);
    let inv = inv.as_str();
    // A kept old copy beside r1's data directory, as a rebuild leaves it.
    lab.pgrepl(&[
        "-i",
        inv,
        "rebuild",
        "r1",
        "--method",
        "clone",
        "--keep-old",
        "--yes",
    ])
    .expect_code(0);
    let dir = |h: &str| lab.host(h).data_dir.display().to_string();
    let (p, r1) = (dir("p"), dir("r1"));
    assert!(exists(&format!("{r1}.pgrepl-old")) && exists(&format!("{r1}.pgpass")));

    // No terminal and no --yes: refused at once, nothing changed.
    lab.pgrepl(&["-i", inv, "destroy"]).expect_code(5);
    let before = lab.snapshot(&["p", "r1"]);

    // --dry-run: every check, the list, no change.
    let dry = lab.pgrepl(&["-i", inv, "destroy", "--dry-run", "--format", "json"]);
    dry.expect_code(0);
    let v = json_doc(&dry.stdout);
    assert_eq!(v["dry_run"], true, "{v}");
    let hosts = v["hosts"].as_array().unwrap();
    assert_eq!(hosts[0]["data_dir"], p.as_str(), "{v}");
    assert_eq!(hosts[1]["stop"], true, "{v}");
    let siblings: Vec<&str> = hosts[1]["siblings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(
        siblings.contains(&format!("{r1}.pgrepl-old").as_str()),
        "{v}"
    );
    assert_eq!(
        lab.snapshot(&["p", "r1"]),
        before,
        "--dry-run changed something"
    );
    assert!(exists(&format!("{r1}.pgrepl-old")));

    // Another cluster's data on r1 (a fresh initdb there): refused before any change.
    lab.stop_server("r1");
    lab.run_on("r1", &["rm", "-rf", &r1]);
    lab.run_on("r1", &[&pg_tool("initdb"), "-D", &r1, "-A", "trust"]);
    let r = lab.pgrepl(&["-i", inv, "destroy", "--yes"]);
    r.expect_code(4);
    assert!(
        r.stderr.contains("belongs to another cluster"),
        "{}",
        r.stderr
    );
    assert_eq!(
        lab.snapshot(&["p"]),
        before[..1],
        "a refused destroy changed p"
    );
    lab.run_on("r1", &["rm", "-rf", &r1]);

    // For real, keeping the logs.
    let r = lab.pgrepl(&["-i", inv, "destroy", "--yes", "--keep-logs"]);
    r.expect_code(0);
    assert!(!lab.server_running("p"), "{}", r.stderr);
    for d in [&p, &r1] {
        assert!(!exists(d), "{d} is still there");
        for s in [".pgpass", ".pgrepl-lock", ".pgrepl-old", ".pgrepl-slots"] {
            assert!(!exists(&format!("{d}{s}")), "{d}{s} is still there");
        }
    }
    assert!(exists(&format!("{p}.log")), "--keep-logs removed the log");
    // Nothing left to do: still exit 0.
    let again = lab.pgrepl(&["-i", inv, "destroy", "--yes"]);
    again.expect_code(0);
    assert!(again.stderr.contains("p: remove"), "{}", again.stderr);
    assert!(!exists(&format!("{p}.log")));
    let last = lab.pgrepl(&["-i", inv, "destroy", "--yes"]);
    last.expect_code(0);
    assert!(last.stderr.contains("p: nothing to do"), "{}", last.stderr);
}
