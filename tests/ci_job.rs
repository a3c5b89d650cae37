//! The README's CI job runs as written (issue "CLI contract", done-when): no terminal, no
//! stdin; it provisions a primary and two replicas, waits for health, runs SQL through the
//! strings `pgrepl dsn` prints, switches over, reads `history --format json` and tears the
//! cluster down with `destroy`. Real servers, this build's pgrepl first on PATH.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::harness::{json_doc, LocalLab};

/// The README's script: the first ```sh block after "## A CI job".
fn readme_script() -> String {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let at = readme
        .find("## A CI job")
        .expect("the README's CI job section");
    let rest = &readme[at..];
    let start = rest.find("```sh\n").expect("the script's block") + 6;
    let end = rest[start..].find("```").unwrap() + start;
    rest[start..end].to_string()
}

#[test]
fn the_readmes_ci_job_provisions_tests_switches_over_and_tears_down() {
    let lab = LocalLab::new(3);
    let inv = lab.inventory("16MB");
    let mut text = std::fs::read_to_string(&inv).unwrap();
    text.push_str("roles:\n  - name: app\n    password_env: APP_PASSWORD\n    clients: [127.0.0.1/32]\ndatabases:\n  - name: app\n");
    std::fs::write(&inv, text).unwrap();
    let work = tempfile::tempdir().unwrap();
    let script = work.path().join("ci-job.sh");
    std::fs::write(&script, readme_script()).unwrap();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_pgrepl")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .arg(&script)
        .current_dir(work.path())
        .env("PATH", path)
        .env("INVENTORY", &inv)
        .env("APP_PASSWORD", "ci-app-secret")
        .env_remove("PGREPL_YES")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "the CI job failed:\n{stdout}\n{stderr}"
    );
    let read = |f: &str| json_doc(&std::fs::read_to_string(work.path().join(f)).unwrap());
    assert_eq!(read("status.json")["healthy"], true);
    let sw = read("switchover.json");
    assert_eq!(sw["old_primary"], "a", "{sw}");
    let d = read("destroy.json");
    assert!(d.get("error").is_none(), "{d}");
    for i in 0..3 {
        assert!(
            !lab.data_dir(i).exists(),
            "destroy left {}",
            lab.data_dir(i).display()
        );
    }
    assert!(!stdout.contains("ci-app-secret") && !stderr.contains("ci-app-secret"));
}
