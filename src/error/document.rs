//! A failure as one JSON document (`--format json`): `{"error": {exit_code, class, host, step,
//! message, stderr_tail, next, …}}`, plus what the class carries — the inventory's issues with
//! their positions, preflight's problems, the lock's holder, each node's state on exit 7.

use serde_json::{json, Value};

use super::Error;

impl Error {
    /// The failure class, as JSON names it (`inventory`, `preflight`, `confirmation_required`,
    /// `locked`, `step`, `switchover_incomplete`, `switchover_rolled_back`, `other`,
    /// `interrupted`); one per exit code but 1, which `step` and `other` share.
    pub fn class(&self) -> &'static str {
        match self {
            Error::Inventory { .. } => "inventory",
            Error::Preflight { .. } => "preflight",
            Error::ConfirmationRequired { .. } => "confirmation_required",
            Error::Locked { .. } => "locked",
            Error::Step(_) => "step",
            Error::SwitchoverIncomplete(_) => "switchover_incomplete",
            Error::SwitchoverRolledBack(_) => "switchover_rolled_back",
            Error::Other(_) => "other",
            Error::Interrupted | Error::InterruptedAfter(_) => "interrupted",
        }
    }

    /// The JSON document of this failure.
    pub fn to_json(&self) -> Value {
        let mut e = json!({
            "exit_code": self.code(),
            "class": self.class(),
            "host": null,
            "step": null,
            "message": self.to_string().lines().next().unwrap_or(""),
            "stderr_tail": [],
            "next": null,
        });
        match self {
            Error::Inventory { file, issues } => {
                e["file"] = json!(file);
                e["issues"] = issues
                    .iter()
                    .map(|i| json!({"line": i.line, "column": i.column, "message": i.message, "fix": i.hint}))
                    .collect();
            }
            Error::Preflight { problems } => {
                e["problems"] = json!(problems);
            }
            Error::ConfirmationRequired { .. } => {
                e["next"] = json!("re-run with --yes");
            }
            Error::Locked {
                host, holder, hint, ..
            } => {
                e["host"] = json!(host);
                e["holder"] = json!(holder);
                e["next"] = json!(hint);
            }
            Error::Step(s) | Error::SwitchoverRolledBack(s) | Error::InterruptedAfter(s) => {
                failure(&mut e, s)
            }
            Error::SwitchoverIncomplete(i) => {
                failure(&mut e, &i.failure);
                e["nodes"] = i
                    .nodes
                    .iter()
                    .map(|(name, state)| json!({"name": name, "state": state}))
                    .collect();
            }
            Error::Other(_) | Error::Interrupted => {}
        }
        json!({ "error": e })
    }
}

/// A step failure's fields.
fn failure(e: &mut Value, s: &super::StepFailure) {
    e["host"] = json!(s.host);
    e["step"] = json!(s.step);
    e["message"] = json!(s.message);
    e["stderr_tail"] = json!(s.stderr_tail);
    e["next"] = json!(s.hint);
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
        }
    }
}
