//! A failure as one JSON document (`--format json`): `{"error": {exit_code, class, host, step,
//! message, stderr_tail, next, …}}`, plus what the class carries — the inventory's issues with
//! their positions, preflight's problems, the lock's holder, each node's state on exit 7. The
//! types here are the document; `schemas/error.schema.json` is generated from them.

use schemars::JsonSchema;
use serde::Serialize;

use super::{Error, Problem};

/// The failure class, as JSON names it; one per exit code but 1, which `step` and `other`
/// share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// The command line was wrong (exit 2).
    Usage,
    /// The inventory is missing, malformed or invalid; nothing was contacted (exit 3).
    Inventory,
    /// A precondition failed; nothing was changed (exit 4).
    Preflight,
    /// A destructive step needs `--yes` and there is no terminal (exit 5).
    ConfirmationRequired,
    /// Another pgrepl command holds the cluster lock; nothing was changed (exit 6).
    Locked,
    /// A step failed on a host (exit 1).
    Step,
    /// A switchover failed after its promotion: the cluster is half-way (exit 7).
    SwitchoverIncomplete,
    /// A switchover failed before its promotion and rolled back (exit 8).
    SwitchoverRolledBack,
    /// A failure of no host and no step (exit 1).
    Other,
    /// SIGINT or SIGTERM stopped the run (exit 130).
    Interrupted,
}

/// `pgrepl <any command> --format json`, when it fails: the one document on stdout.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ErrorDocument {
    /// The failure.
    pub error: ErrorBody,
}

/// One failure: the same keys for every class, and the class's own details.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ErrorBody {
    /// The process's exit code (README, "Exit codes").
    #[schemars(extend("enum" = [1, 2, 3, 4, 5, 6, 7, 8, 130]))]
    pub exit_code: u8,
    /// The failure class.
    pub class: ErrorClass,
    /// The host the failure is about (`null`: not one host's).
    pub host: Option<String>,
    /// The step that failed (`pg_basebackup`, `verify streaming`, …; `null`: no step).
    pub step: Option<String>,
    /// What went wrong, in one line.
    pub message: String,
    /// The last lines of the failing command's stderr (empty when no command failed).
    pub stderr_tail: Vec<String>,
    /// The next command to run (`null`: none).
    pub next: Option<String>,
    /// `inventory`: the inventory file as given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// `inventory`: every problem in the file, in file order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issues: Option<Vec<IssueDoc>>,
    /// `preflight`: every failed precondition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problems: Option<Vec<Problem>>,
    /// `locked`: who holds the lock (operation, user@machine, pid, for how long).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
    /// `switchover_incomplete`: where each node stands.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodes: Option<Vec<NodeStateDoc>>,
}

/// One problem in the inventory file.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct IssueDoc {
    /// 1-based line of the offending value (0 when there is no file).
    pub line: u64,
    /// 1-based column (0 when there is no file).
    pub column: u64,
    /// What is wrong.
    pub message: String,
    /// The one fix.
    pub fix: String,
}

/// One node's state when a switchover stopped half-way.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct NodeStateDoc {
    /// The inventory host.
    pub name: String,
    /// Its state, in words (`primary, writable`, `replica, not streaming`, `down`, …).
    pub state: String,
}

impl ErrorBody {
    /// The keys every class has; the details start empty.
    fn new(exit_code: u8, class: ErrorClass, message: &str) -> ErrorBody {
        ErrorBody {
            exit_code,
            class,
            host: None,
            step: None,
            message: message.to_string(),
            stderr_tail: Vec::new(),
            next: None,
            file: None,
            issues: None,
            problems: None,
            holder: None,
            nodes: None,
        }
    }

    /// A step failure's fields.
    fn failure(mut self, s: &super::StepFailure) -> ErrorBody {
        self.host = s.host.clone();
        self.step = Some(s.step.clone());
        self.message = s.message.clone();
        self.stderr_tail = s.stderr_tail.clone();
        self.next = s.hint.clone();
        self
    }
}

impl ErrorDocument {
    /// A usage error (exit 2): clap's first line, and the help to read (`pgrepl <cmd> --help`).
    pub fn usage(message: &str, next: &str) -> ErrorDocument {
        let mut e = ErrorBody::new(super::exit::USAGE, ErrorClass::Usage, message);
        e.next = Some(next.to_string());
        ErrorDocument { error: e }
    }
}

impl Error {
    /// The failure class, as JSON names it.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Inventory { .. } => ErrorClass::Inventory,
            Error::Preflight { .. } => ErrorClass::Preflight,
            Error::ConfirmationRequired { .. } => ErrorClass::ConfirmationRequired,
            Error::Locked { .. } => ErrorClass::Locked,
            Error::Step(_) => ErrorClass::Step,
            Error::SwitchoverIncomplete(_) => ErrorClass::SwitchoverIncomplete,
            Error::SwitchoverRolledBack(_) => ErrorClass::SwitchoverRolledBack,
            Error::Other(_) => ErrorClass::Other,
            Error::Interrupted | Error::InterruptedAfter(_) => ErrorClass::Interrupted,
        }
    }

    /// The JSON document of this failure.
    pub fn to_document(&self) -> ErrorDocument {
        let text = self.to_string();
        let e = ErrorBody::new(self.code(), self.class(), text.lines().next().unwrap_or(""));
        let error = match self {
            Error::Inventory { file, issues } => ErrorBody {
                file: Some(file.clone()),
                issues: Some(
                    issues
                        .iter()
                        .map(|i| IssueDoc {
                            line: i.line,
                            column: i.column,
                            message: i.message.clone(),
                            fix: i.hint.clone(),
                        })
                        .collect(),
                ),
                ..e
            },
            Error::Preflight { problems } => ErrorBody {
                problems: Some(problems.clone()),
                ..e
            },
            Error::ConfirmationRequired { .. } => ErrorBody {
                next: Some("re-run with --yes".into()),
                ..e
            },
            Error::Locked {
                host, holder, hint, ..
            } => ErrorBody {
                host: Some(host.clone()),
                holder: Some(holder.clone()),
                next: Some(hint.clone()),
                ..e
            },
            Error::Step(s) | Error::SwitchoverRolledBack(s) | Error::InterruptedAfter(s) => {
                e.failure(s)
            }
            Error::SwitchoverIncomplete(i) => ErrorBody {
                nodes: Some(
                    i.nodes
                        .iter()
                        .map(|(name, state)| NodeStateDoc {
                            name: name.clone(),
                            state: state.clone(),
                        })
                        .collect(),
                ),
                ..e.failure(&i.failure)
            },
            Error::Other(_) | Error::Interrupted => e,
        };
        ErrorDocument { error }
    }

    /// The JSON document of this failure, as a value.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self.to_document()).expect("the error document serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Problem, StepFailure};
    use super::*;

    #[test]
    fn every_class_has_the_same_keys_and_its_own_details() {
        let step = Error::step("pg2", "pg_basebackup", "exited 1").with_hint("pgrepl rebuild pg2");
        let v = step.to_json();
        assert_eq!(v["error"]["exit_code"], 1);
        assert_eq!(v["error"]["class"], "step");
        assert_eq!(v["error"]["host"], "pg2");
        assert_eq!(v["error"]["step"], "pg_basebackup");
        assert_eq!(v["error"]["next"], "pgrepl rebuild pg2");
        let pre = Error::Preflight {
            problems: vec![Problem::new("pg1", "lag", "behind".into(), "wait".into())],
        };
        let v = pre.to_json();
        assert_eq!(v["error"]["exit_code"], 4);
        assert_eq!(v["error"]["problems"][0]["check"], "lag");
        let inc = Error::SwitchoverIncomplete(Box::new(super::super::Incomplete {
            failure: StepFailure {
                host: Some("pg2".into()),
                step: "rejoin".into(),
                message: "m".into(),
                ..StepFailure::default()
            },
            nodes: vec![("pg1".into(), "replica, not streaming".into())],
        }));
        let v = inc.to_json();
        assert_eq!(v["error"]["exit_code"], 7);
        assert_eq!(v["error"]["class"], "switchover_incomplete");
        assert_eq!(v["error"]["nodes"][0]["state"], "replica, not streaming");
        for e in [Error::Interrupted, Error::Other("x".into())] {
            let v = e.to_json();
            for k in [
                "exit_code",
                "class",
                "host",
                "step",
                "message",
                "stderr_tail",
                "next",
            ] {
                assert!(v["error"].get(k).is_some(), "{k} in {v}");
            }
            assert!(v["error"].get("nodes").is_none(), "{v}");
        }
        let u = serde_json::to_value(ErrorDocument::usage("unexpected", "pgrepl --help")).unwrap();
        assert_eq!(u["error"]["class"], "usage");
        assert_eq!(u["error"]["exit_code"], 2);
        assert_eq!(u["error"]["next"], "pgrepl --help");
    }
}
