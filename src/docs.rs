//! The documentation pgrepl carries: shell completion scripts (`clap_complete`) and man pages
//! (`clap_mangen`), both generated from the command line's own definition (`cli::Cli`), so they
//! cannot drift from it. Needs no inventory and contacts no host.

use std::path::Path;

use clap::CommandFactory;

use crate::cli::Cli;

/// The completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> String {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "pgrepl", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The man page of `pgrepl` itself (roff), listing every command.
pub fn main_page() -> std::io::Result<String> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut out)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Writes `pgrepl.1` and one page per command (`pgrepl-status.1`, `pgrepl-slot-drop.1`, …)
/// into `dir` (created if needed). Returns the files written.
///
/// # Errors
/// The directory cannot be created or a page cannot be written.
pub fn write_pages(dir: &Path) -> std::io::Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    let mut cmd = Cli::command();
    cmd.build();
    let mut written = Vec::new();
    write_tree(&cmd, "pgrepl", dir, &mut written)?;
    Ok(written)
}

fn write_tree(
    cmd: &clap::Command,
    name: &str,
    dir: &Path,
    written: &mut Vec<String>,
) -> std::io::Result<()> {
    let page = cmd.clone().name(name.to_string());
    let mut out = Vec::new();
    clap_mangen::Man::new(page).render(&mut out)?;
    let file = dir.join(format!("{name}.1"));
    std::fs::write(&file, out)?;
    written.push(file.display().to_string());
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        write_tree(sub, &format!("{name}-{}", sub.get_name()), dir, written)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_and_pages_name_every_command() {
        let bash = completions(clap_complete::Shell::Bash);
        for c in ["switchover", "destroy", "rebuild", "completions"] {
            assert!(bash.contains(c), "{c} missing from the bash completions");
        }
        let page = main_page().unwrap();
        assert!(page.contains(".TH pgrepl"), "{page}");
        let dir = tempfile::tempdir().unwrap();
        let files = write_pages(dir.path()).unwrap();
        assert!(
            files.iter().any(|f| f.ends_with("pgrepl-slot-drop.1")),
            "{files:?}"
        );
        assert!(
            files.iter().any(|f| f.ends_with("pgrepl-status.1")),
            "{files:?}"
        );
    }
}
