//! Typed failure classes, their stable exit codes and the hints a DBA acts on.
//!
//! Every failure that reaches the user is one of these values, rendered once by `lib::run`.
//! Nothing here prints; nothing here knows about clap, ssh or PostgreSQL connections.

use std::fmt;

/// Stable process exit codes (documented in README.md, "Exit codes").
pub mod exit {
    /// Success; for `status`: every host reachable and every replica streaming.
    pub const OK: u8 = 0;
    /// An operation failed while it ran (a step on a host failed or timed out).
    pub const FAILED: u8 = 1;
    /// The command line was wrong (clap's own code).
    pub const USAGE: u8 = 2;
    /// The inventory file is missing, malformed or invalid; nothing was contacted.
    pub const INVENTORY: u8 = 3;
    /// A precondition failed before any change was made; nothing was changed.
    pub const PREFLIGHT: u8 = 4;
    /// A destructive step needs confirmation, and there is no terminal and no `--yes`.
    pub const CONFIRMATION_REQUIRED: u8 = 5;
    /// Another pgrepl command holds the cluster lock (the message names it); nothing was changed.
    pub const LOCKED: u8 = 6;
    /// `switchover`: failed after the new primary was promoted; the cluster is half-way
    /// (the message gives each node's state and the next command).
    pub const SWITCHOVER_INCOMPLETE: u8 = 7;
    /// `switchover`: failed before the promotion and rolled back: the old primary runs again as
    /// primary, verified writable.
    pub const SWITCHOVER_ROLLED_BACK: u8 = 8;
    /// `status`: the cluster works but something needs attention.
    pub const DEGRADED: u8 = 10;
    /// `status`: no reachable primary.
    pub const CRITICAL: u8 = 11;
    /// Interrupted by SIGINT/SIGTERM.
    pub const INTERRUPTED: u8 = 130;
}

/// One problem found in an inventory file, with its position and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryIssue {
    /// 1-based line of the offending value (0 when there is no file).
    pub line: u64,
    /// 1-based column.
    pub column: u64,
    /// What is wrong.
    pub message: String,
    /// The one fix.
    pub hint: String,
}

/// One failed precondition on one host (also a warning of `check`).
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Problem {
    /// The host (or the cluster, or the inventory file) the check is about.
    pub host: String,
    /// The check's short name (`reachable`, `candidate`, `lag`, ...), shown in brackets.
    pub check: String,
    /// What is wrong.
    pub message: String,
    /// The next command to run (`null`: none).
    pub hint: Option<String>,
}

impl Problem {
    /// A problem with a hint (the next command).
    pub fn new(host: &str, check: &str, message: String, hint: String) -> Problem {
        Problem {
            host: host.into(),
            check: check.into(),
            message,
            hint: Some(hint),
        }
    }
}

/// `host [check]: message`, then `next: hint` on its own line (as preflight renders problems).
impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} [{}]: {}", self.host, self.check, self.message)?;
        match &self.hint {
            Some(h) => write!(f, "\n    next: {h}"),
            None => Ok(()),
        }
    }
}

/// A step that failed on a host: which host, which step, what the command said, what to do next.
#[derive(Debug, Clone, Default)]
pub struct StepFailure {
    /// The host the step ran on (`None`: not one host's).
    pub host: Option<String>,
    /// The step's name (`pg_basebackup`, `verify streaming`, ...).
    pub step: String,
    /// What went wrong.
    pub message: String,
    /// The last lines of the failing command's stderr (bounded).
    pub stderr_tail: Vec<String>,
    /// The next command to run.
    pub hint: Option<String>,
}

/// A switchover that stopped after the promotion (exit 7): the failure, and each node's state
/// then, `(host, state)`.
#[derive(Debug, Clone, Default)]
pub struct Incomplete {
    /// The step that failed.
    pub failure: StepFailure,
    /// Where each node stands.
    pub nodes: Vec<(String, String)>,
}

impl fmt::Display for Incomplete {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.failure.fmt(f)
    }
}

/// The failure classes the user sees. Each variant has its exit code ([`Error::code`]) and is
/// rendered once, by `lib::run`, with its hint (the next command to run).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The inventory could not be read or is invalid (exit 3).
    #[error("{}", render_inventory(.file, .issues))]
    Inventory {
        /// The inventory file as given.
        file: String,
        /// Every problem, each once, in file order.
        issues: Vec<InventoryIssue>,
    },
    /// Preflight found problems; nothing was changed (exit 4).
    #[error("{}", render_preflight(.problems))]
    Preflight {
        /// Every failed precondition.
        problems: Vec<Problem>,
    },
    /// A destructive action needs `--yes` (or a terminal to confirm on) (exit 5).
    #[error(
        "{action} needs confirmation, and there is no terminal to ask on; re-run with --yes to confirm"
    )]
    ConfirmationRequired {
        /// What would have been confirmed.
        action: String,
    },
    /// Another pgrepl command holds the cluster lock on `host` (exit 6).
    #[error("the cluster is locked: {host}: {file} is held by {holder}; nothing was changed\n  next: {hint}")]
    Locked {
        /// The host whose lock is held.
        host: String,
        /// The lock file.
        file: String,
        /// Who holds it (operation, user@machine, pid, for how long).
        holder: String,
        /// The next command.
        hint: String,
    },
    /// A step failed on a host (exit 1).
    #[error("{0}")]
    Step(StepFailure),
    /// `switchover` failed after the new primary was promoted: the cluster is half-way; the
    /// message gives each node's state and the hint the next command (exit 7).
    #[error("{0}")]
    SwitchoverIncomplete(Box<Incomplete>),
    /// `switchover` failed before the promotion and rolled back: the old primary runs again as
    /// primary, verified writable (exit 8).
    #[error("{0}")]
    SwitchoverRolledBack(StepFailure),
    /// A failure that belongs to no host and no step (the runtime, a local file) (exit 1).
    #[error("{0}")]
    Other(String),
    /// SIGINT or SIGTERM arrived; the run stopped (and cleaned up what it could) (exit 130).
    #[error(
        "interrupted; commands started on the hosts were stopped, and slots made for \
         unfinished clones dropped; re-run the same command to finish the job"
    )]
    Interrupted,
    /// SIGINT or SIGTERM arrived past a point where re-running the same command does not finish
    /// the job (a switchover after its promotion): the state and the commands that do (exit 130).
    #[error("{}", render_interrupted(.0))]
    InterruptedAfter(StepFailure),
}

mod document;
pub use document::{ErrorBody, ErrorClass, ErrorDocument};

impl Error {
    /// The process exit code of this failure class (README, "Exit codes").
    pub fn code(&self) -> u8 {
        match self {
            Error::Inventory { .. } => exit::INVENTORY,
            Error::Preflight { .. } => exit::PREFLIGHT,
            Error::ConfirmationRequired { .. } => exit::CONFIRMATION_REQUIRED,
            Error::Locked { .. } => exit::LOCKED,
            Error::Interrupted | Error::InterruptedAfter(_) => exit::INTERRUPTED,
            Error::Step(_) | Error::Other(_) => exit::FAILED,
            Error::SwitchoverIncomplete(_) => exit::SWITCHOVER_INCOMPLETE,
            Error::SwitchoverRolledBack(_) => exit::SWITCHOVER_ROLLED_BACK,
        }
    }

    /// A step failure with a host, a step name and a message.
    pub fn step(
        host: impl Into<String>,
        step: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Error::Step(StepFailure {
            host: Some(host.into()),
            step: step.into(),
            message: message.into(),
            ..StepFailure::default()
        })
    }

    /// One preflight refusal (exit 4).
    pub fn refused(host: &str, check: &str, message: String, hint: String) -> Self {
        Error::Preflight {
            problems: vec![Problem::new(host, check, message, hint)],
        }
    }

    /// The step failure inside, for the variants that carry one.
    fn failure_mut(&mut self) -> Option<&mut StepFailure> {
        match self {
            Error::SwitchoverIncomplete(i) => Some(&mut i.failure),
            Error::Step(s) | Error::SwitchoverRolledBack(s) | Error::InterruptedAfter(s) => Some(s),
            _ => None,
        }
    }

    /// Sets the hint (the next command to run) of a step failure; other variants keep theirs.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        if let Some(s) = self.failure_mut() {
            s.hint = Some(hint.into());
        }
        self
    }

    /// Appends `detail` (e.g. the server log's FATAL line) to a step failure's message.
    pub fn with_detail(mut self, detail: impl AsRef<str>) -> Self {
        if let Some(s) = self.failure_mut() {
            s.message = format!("{}; {}", s.message, detail.as_ref());
        }
        self
    }

    /// Adds the tail of a command's stderr to a step failure.
    pub fn with_stderr(mut self, tail: Vec<String>) -> Self {
        if let Some(s) = self.failure_mut() {
            s.stderr_tail = tail;
        }
        self
    }

    /// Is this the failure of a step (exit 1), which a caller may put in context?
    pub fn is_step(&self) -> bool {
        matches!(self, Error::Step(_))
    }
}

/// Failures of the layers below (SQL sessions, transports) that reach an operation without a
/// step name keep their full cause chain; an `Error` passed through `anyhow` comes back as itself.
impl From<anyhow::Error> for Error {
    fn from(e: anyhow::Error) -> Self {
        match e.downcast::<Error>() {
            Ok(err) => err,
            Err(e) => Error::Other(format!("{e:#}")),
        }
    }
}

/// Puts a lower layer's failure in the context of a host and a step.
pub trait OnStep<T> {
    /// `Err(e)` becomes `Error::Step` naming `host` and `step`, with `e`'s causes as the message.
    fn on_step(self, host: &str, step: &str) -> Result<T, Error>;
}

impl<T> OnStep<T> for anyhow::Result<T> {
    fn on_step(self, host: &str, step: &str) -> Result<T, Error> {
        self.map_err(|e| match e.downcast::<Error>() {
            Ok(err) => err,
            Err(e) => Error::step(host, step, format!("{e:#}")),
        })
    }
}

impl fmt::Display for StepFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Some(h) => write!(f, "{h}: {} failed: {}", self.step, self.message)?,
            None => write!(f, "{} failed: {}", self.step, self.message)?,
        }
        if !self.stderr_tail.is_empty() {
            write!(
                f,
                "\n  command output (last {} lines):",
                self.stderr_tail.len()
            )?;
            for l in &self.stderr_tail {
                write!(f, "\n  | {l}")?;
            }
        }
        if let Some(h) = &self.hint {
            write!(f, "\n  next: {h}")?;
        }
        Ok(())
    }
}

fn render_inventory(file: &str, issues: &[InventoryIssue]) -> String {
    let n = issues.len();
    let mut f = format!(
        "inventory {file} is invalid ({n} problem{})",
        if n == 1 { "" } else { "s" }
    );
    for i in issues {
        f.push_str(&format!(
            "\n  {file}:{}:{}: {}",
            i.line, i.column, i.message
        ));
        if !i.hint.is_empty() {
            f.push_str(&format!("\n    fix: {}", i.hint));
        }
    }
    f
}

fn render_interrupted(s: &StepFailure) -> String {
    let mut out = format!("interrupted during {}: {}", s.step, s.message);
    if let Some(h) = &s.hint {
        out.push_str(&format!("\n  next: {h}"));
    }
    out
}

fn render_preflight(problems: &[Problem]) -> String {
    let n = problems.len();
    let mut f = format!(
        "preflight found {n} problem{}; nothing was changed",
        if n == 1 { "" } else { "s" }
    );
    for p in problems {
        f.push_str(&format!("\n  {} [{}]: {}", p.host, p.check, p.message));
        if let Some(h) = &p.hint {
            f.push_str(&format!("\n    next: {h}"));
        }
    }
    f
}

/// Result alias used across the crate.
pub type Result<T, E = anyhow::Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct() {
        let codes = [
            exit::OK,
            exit::FAILED,
            exit::USAGE,
            exit::INVENTORY,
            exit::PREFLIGHT,
            exit::CONFIRMATION_REQUIRED,
            exit::LOCKED,
            exit::SWITCHOVER_INCOMPLETE,
            exit::SWITCHOVER_ROLLED_BACK,
            exit::DEGRADED,
            exit::CRITICAL,
            exit::INTERRUPTED,
        ];
        let set: std::collections::BTreeSet<_> = codes.iter().collect();
        assert_eq!(set.len(), codes.len());
    }

    #[test]
    fn step_failure_renders_host_step_tail_and_hint() {
        let e = Error::step("pg2", "pg_basebackup", "exited with status 1")
            .with_stderr(vec!["FATAL: no pg_hba.conf entry".into()])
            .with_hint("pgrepl check -i cluster.yml");
        let s = e.to_string();
        assert!(
            s.starts_with("pg2: pg_basebackup failed: exited with status 1"),
            "{s}"
        );
        assert!(s.contains("| FATAL: no pg_hba.conf entry"), "{s}");
        assert!(s.contains("next: pgrepl check -i cluster.yml"), "{s}");
        assert_eq!(e.code(), exit::FAILED);
    }
}
