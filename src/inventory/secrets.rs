//! The replication password: where it comes from (an environment variable or a 0600 file,
//! never the inventory) and reading it when an operation needs it. A file that group or others
//! can read is refused, and so is an empty password or one with control characters.
//!
//! Nothing here may print, log or `Debug`-format a password: `Secret` redacts itself and its
//! clear text is reached only through `Secret::expose`.

use std::path::PathBuf;

use super::model::Inventory;
use crate::error::{Error, InventoryIssue};

/// Where the replication password comes from, with the position of the key that says so (for
/// errors raised when it is read, long after loading).
#[derive(Clone)]
pub enum PasswordSource {
    /// `replication.password_env`: an environment variable's name.
    Env {
        /// The variable's name.
        name: String,
        /// The key's line in the inventory (1-based).
        line: u64,
        /// The key's column in the inventory (1-based).
        column: u64,
    },
    /// `replication.password_file`: a file whose first line is the password.
    File {
        /// The file (`~/` expanded, relative paths from the inventory's directory).
        path: PathBuf,
        /// The key's line in the inventory (1-based).
        line: u64,
        /// The key's column in the inventory (1-based).
        column: u64,
    },
}

impl PasswordSource {
    /// The position of the key naming the source.
    fn position(&self) -> (u64, u64) {
        match self {
            PasswordSource::Env { line, column, .. }
            | PasswordSource::File { line, column, .. } => (*line, *column),
        }
    }
}

impl std::fmt::Debug for PasswordSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PasswordSource::Env { name, .. } => write!(f, "Env({name})"),
            PasswordSource::File { path, .. } => write!(f, "File({})", path.display()),
        }
    }
}

/// A password. `Debug` and `Display` never show it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// The clear text, for writing into a 0600 file or computing a verifier. Nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Inventory {
    /// An application role's password (`roles[]`), held to the replication password's rules.
    /// (Interim: errors name the replication keys until `roles:` is read from the file.)
    pub fn role_password(&self, role: &super::apps::AppRole) -> Result<Secret, Error> {
        let inv = Inventory {
            password: role.password.clone(),
            ..self.clone()
        };
        inv.replication_password()
    }

    /// Reads the replication password from its source, refusing a password file that group or
    /// others can read, and an empty password.
    ///
    /// # Errors
    /// `Error::Inventory` at the position of `password_env`/`password_file`: the variable is
    /// unset or empty; the file is missing, unreadable or not mode 0600 (or stricter); the
    /// password is empty or contains control characters.
    pub fn replication_password(&self) -> Result<Secret, Error> {
        let pw = match &self.password {
            PasswordSource::Env { name, line, column } => match std::env::var(name) {
                Ok(v) if !v.is_empty() => v,
                _ => {
                    return Err(self.password_error(
                        (*line, *column),
                        format!("replication.password_env names {name}, which is not set or empty"),
                        &format!("export {name}=<password> before running pgrepl, or use replication.password_file"),
                    ))
                }
            },
            PasswordSource::File { path, line, column } => {
                self.read_password_file(path, (*line, *column))?
            }
        };
        if pw.is_empty() || pw.chars().any(|c| c.is_control()) {
            return Err(self.password_error(
                self.password.position(),
                "the replication password is empty or contains control characters".into(),
                "use a non-empty password on one line",
            ));
        }
        Ok(Secret(pw))
    }

    /// The first line of a password file that only its owner may read.
    fn read_password_file(&self, path: &std::path::Path, at: (u64, u64)) -> Result<String, Error> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path).map_err(|e| {
            self.password_error(
                at,
                format!("cannot read password file {}: {e}", path.display()),
                "create it with mode 0600",
            )
        })?;
        if meta.mode() & 0o077 != 0 {
            return Err(self.password_error(
                at,
                format!(
                    "password file {} has mode {:04o}; group and others must have no access",
                    path.display(),
                    meta.mode() & 0o7777
                ),
                &format!("chmod 600 {}", path.display()),
            ));
        }
        let text = std::fs::read_to_string(path).map_err(|e| {
            self.password_error(
                at,
                format!("cannot read password file {}: {e}", path.display()),
                "check its owner",
            )
        })?;
        Ok(text.lines().next().unwrap_or("").to_string())
    }

    /// One inventory problem about the password source, at `(line, column)`.
    fn password_error(&self, (line, column): (u64, u64), message: String, hint: &str) -> Error {
        Error::Inventory {
            file: self.file.display().to_string(),
            issues: vec![InventoryIssue {
                line,
                column,
                message,
                hint: hint.to_string(),
            }],
        }
    }
}
