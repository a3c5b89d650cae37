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

mod apps;
mod check;
mod edit;
mod model;
mod modes;
mod raw;
mod secrets;
mod tls;
mod validators;

#[cfg(test)]
mod apps_tests;
#[cfg(test)]
mod router_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tls_tests;

use std::path::Path;

pub use apps::{AppRole, Database, ReadTargets, Router, RouterKind, RouterPorts};
pub use edit::{edit_text, write_back};
pub use model::{
    needed_slots, needed_wal_senders, HbaRule, Host, HostKeyPolicy, Inventory, Role, SshSettings,
    Thresholds, Timeouts, TransportKind, MONITOR_USER,
};
pub use modes::{Archive, SyncMethod, SyncRule};
pub use secrets::{PasswordSource, Secret};
pub use tls::{HostCertFiles, IssuedTls, ProvidedTls, Tls, TlsFiles, EXPIRY_WARNING_DAYS};
pub use validators::{check_remote_path, is_address};

use crate::error::{Error, InventoryIssue};

/// The largest inventory accepted, in bytes (1 MiB).
const MAX_BYTES: u64 = 1 << 20;

/// Loads and validates an inventory file. Nothing is contacted. A regular file over 1 MiB is
/// refused by its size, before it is read.
///
/// # Errors
/// `Error::Inventory` with every problem of the file, each at its line and column. A problem
/// with the file as a whole (too big) is at 1:1, text that is not UTF-8 at its first invalid
/// byte; only a file that cannot be read at all (missing, a directory, no permission) is at 0:0.
pub fn load(path: &Path) -> Result<Inventory, Error> {
    let one = |issue| Error::Inventory {
        file: path.display().to_string(),
        issues: vec![issue],
    };
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.is_file() && meta.len() > MAX_BYTES {
            return Err(one(too_big(meta.len())));
        }
    }
    let bytes = std::fs::read(path).map_err(|e| {
        one(InventoryIssue {
            line: 0,
            column: 0,
            message: format!("cannot read the inventory: {e}"),
            hint: "pass the inventory file with -i <file> (see inventories/example.yml)".into(),
        })
    })?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(one(too_big(bytes.len() as u64)));
    }
    let text = String::from_utf8(bytes).map_err(|e| one(not_utf8(e.as_bytes(), e.utf8_error())))?;
    parse(&text, path)
}

/// Parses and validates inventory text; `path` names it in errors (and relative paths in it
/// start from `path`'s directory). Nothing is contacted and no secret is read.
///
/// # Errors
/// `Error::Inventory`: text over 1 MiB (at 1:1), or YAML the schema refuses (the first such
/// problem only), or every problem the checkers find, in file order, each once.
pub fn parse(text: &str, path: &Path) -> Result<Inventory, Error> {
    let inv_err = |issues| Error::Inventory {
        file: path.display().to_string(),
        issues,
    };
    if text.len() as u64 > MAX_BYTES {
        return Err(inv_err(vec![too_big(text.len() as u64)]));
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

/// A file over the size limit: a problem of the whole file, so at its start.
fn too_big(bytes: u64) -> InventoryIssue {
    InventoryIssue {
        line: 1,
        column: 1,
        message: format!("the file is {bytes} bytes; an inventory is at most 1 MiB"),
        hint: "check that -i names the inventory".into(),
    }
}

/// Bytes that are not UTF-8, reported at the first invalid byte (line and column 1-based,
/// columns counted in characters as the YAML parser counts them).
fn not_utf8(bytes: &[u8], e: std::str::Utf8Error) -> InventoryIssue {
    let valid = &bytes[..e.valid_up_to()];
    let line_start = valid
        .iter()
        .rposition(|&b| b == b'\n')
        .map(|i| i + 1)
        .unwrap_or(0);
    let column = String::from_utf8_lossy(&valid[line_start..])
        .chars()
        .count()
        + 1;
    InventoryIssue {
        line: valid.iter().filter(|&&b| b == b'\n').count() as u64 + 1,
        column: column as u64,
        message: format!(
            "the file is not UTF-8 text (byte 0x{:02x} here)",
            bytes[e.valid_up_to()]
        ),
        hint: "check that -i names the inventory, and save it as UTF-8".into(),
    }
}
