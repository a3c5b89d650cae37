//! The inventory: one YAML file describing one cluster. Loading parses it strictly (unknown and
//! duplicate keys are errors) and validates every value before anything is contacted; each
//! problem names file:line:column and says how to fix it. Values that reach a shell, ssh or SQL
//! are held to narrow character sets here, and still quoted where they are used.
//!
//! The replication password is never inline: it comes from an environment variable or a 0600
//! file, is read only when an operation needs it, and its `Debug` output is redacted.
//!
//! The layers, in the order a file goes through them: `raw` (the schema and the strict YAML
//! reading), `check` (one checker per section, problems at their positions), `model` (the
//! resolved inventory every command uses), with `validators` (character sets) and `secrets`
//! (the password) beside them. This module only wires them together; it must not contact
//! anything, and nothing under it may depend on the modules that use the model (`health`,
//! `ops`, ...).

mod check;
mod model;
mod raw;
mod secrets;
mod validators;

#[cfg(test)]
mod tests;

use std::path::Path;

pub use model::{
    needed_slots, needed_wal_senders, HbaRule, Host, HostKeyPolicy, Inventory, Role, SshSettings,
    Thresholds, Timeouts, TransportKind,
};
pub use secrets::{PasswordSource, Secret};
pub use validators::{check_remote_path, is_address};

use crate::error::{Error, InventoryIssue};

/// Loads and validates an inventory file. Nothing is contacted.
///
/// # Errors
/// `Error::Inventory` with every problem of the file, each at its line and column; a file that
/// cannot be read is reported at 0:0.
pub fn load(path: &Path) -> Result<Inventory, Error> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| Error::Inventory {
        file: file.clone(),
        issues: vec![InventoryIssue {
            line: 0,
            column: 0,
            message: format!("cannot read the inventory: {e}"),
            hint: "pass the inventory file with -i <file> (see inventories/example.yml)".into(),
        }],
    })?;
    parse(&text, path)
}

/// Parses and validates inventory text; `path` names it in errors (and relative paths in it
/// start from `path`'s directory). Nothing is contacted and no secret is read.
///
/// # Errors
/// `Error::Inventory`: a file over 1 MiB, or YAML the schema refuses (the first such problem
/// only), or every problem the checkers find, in file order, each once.
pub fn parse(text: &str, path: &Path) -> Result<Inventory, Error> {
    let inv_err = |issues| Error::Inventory {
        file: path.display().to_string(),
        issues,
    };
    if text.len() > 1 << 20 {
        return Err(inv_err(vec![InventoryIssue {
            line: 0,
            column: 0,
            message: format!(
                "the file is {} bytes; an inventory is at most 1 MiB",
                text.len()
            ),
            hint: "check that -i names the inventory".into(),
        }]));
    }
    let raw = raw::read(text).map_err(|issue| inv_err(vec![issue]))?;
    let mut c = check::Checker::new();
    let inv = check::build(raw, path, &mut c);
    let issues = c.into_issues();
    if issues.is_empty() {
        Ok(inv.expect("built when there are no issues"))
    } else {
        Err(inv_err(issues))
    }
}
