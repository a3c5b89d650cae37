//! The README matches the binary (issue "CLI contract"): the quick start runs as written
//! (`scripts/local-cluster up` and `down`, with this build's pgrepl) and its real output is the
//! README's sample, numbers aside. As root (the quick start's own condition).

use std::path::Path;
use std::process::Command;

use crate::harness::is_root;

/// Each token with a digit in it, or a lone `-` (an empty figure), becomes `N`; blank lines go.
fn shape(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.split_whitespace()
                .map(|t| {
                    if t == "-" || t.chars().any(|c| c.is_ascii_digit()) {
                        "N"
                    } else {
                        t
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// The README's quick-start sample: the code block after "It ends with".
fn readme_sample() -> String {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let at = readme
        .find("It ends with")
        .expect("the quick start's sample");
    let rest = &readme[at..];
    let start = rest.find("\n```\n").expect("the sample's block") + 5;
    let end = rest[start..].find("```").unwrap() + start;
    rest[start..end].to_string()
}

fn local_cluster(arg: &str) -> std::process::Output {
    Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/local-cluster"))
        .arg(arg)
        .env("PGREPL_BIN", env!("CARGO_BIN_EXE_pgrepl"))
        .env_remove("PGREPL_YES")
        .output()
        .unwrap()
}

/// Takes the quick start down however the test ends.
struct Down;
impl Drop for Down {
    fn drop(&mut self) {
        let _ = local_cluster("down");
    }
}

#[test]
fn the_quick_start_runs_and_prints_the_readmes_sample() {
    if !is_root() {
        eprintln!("skipped: the quick start runs as root");
        return;
    }
    // The quick start is PostgreSQL 15's (Debian's, always installed by the test command),
    // whatever major the rest of the suite runs on.
    let _down = Down;
    let up = local_cluster("up");
    let stdout = String::from_utf8_lossy(&up.stdout);
    assert!(
        up.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&up.stderr)
    );
    assert_eq!(
        shape(&stdout),
        shape(&readme_sample()),
        "README sample vs real:\n{stdout}"
    );
    let down = local_cluster("down");
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert!(!Path::new("/var/tmp/pgrepl-local").exists());
}
