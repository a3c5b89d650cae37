//! The cluster's history: every mutating command that got past its checks appends one record
//! (one JSON line) to a journal beside each reachable host's data directory
//! (`<data_dir>.pgrepl-history`), so any admin machine reads the same history from the cluster
//! itself. `pgrepl history` merges the hosts' journals (a record is on every host that was
//! reachable when it was written; duplicates are one) and lists them oldest first.
//!
//! Pure parts (the record, merging) are unit-tested; the I/O is two fixed commands.

use std::collections::BTreeMap;

use crate::context::Context;
use crate::error::Error;
use crate::inventory::Host;
use crate::transport::{Cmd, Transport};

/// One command's record.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Record {
    /// Unique per run: `<machine>-<pid>-<start, unix ms>`.
    pub id: String,
    /// The command (`switchover`, `promote`, `init`, …).
    pub command: String,
    /// Its arguments as given (pgrepl takes no secret on its command line).
    pub args: Vec<String>,
    /// The OS user who ran it.
    pub user: String,
    /// The machine it ran on.
    pub machine: String,
    /// When it started, RFC 3339 UTC.
    #[schemars(extend("format" = "date-time"))]
    pub started: String,
    /// When it ended, RFC 3339 UTC.
    #[schemars(extend("format" = "date-time"))]
    pub ended: String,
    /// Its duration, in seconds.
    pub seconds: f64,
    /// `ok`, `failed`, `interrupted`, `rolled_back`, `incomplete`.
    #[schemars(extend("enum" = ["ok", "failed", "interrupted", "rolled_back", "incomplete"]))]
    pub outcome: String,
    /// Its exit code.
    pub exit_code: u8,
    /// The first line of the error, when it failed.
    pub error: Option<String>,
    /// What the command reported: its `--format json` result document (timelines, LSNs, the
    /// write gap, …; see that command's schema).
    pub result: Option<serde_json::Value>,
}

/// The journal beside a data directory.
pub fn journal(data_dir: &str) -> String {
    format!("{data_dir}.pgrepl-history")
}

const APPEND: &str = r#"umask 077; cat >> "$1""#;
const READ: &str = r#"if [ -e "$1" ]; then exec cat -- "$1"; fi"#;

/// Appends stdin (one line) to the journal `path`.
fn append_cmd(path: &str, line: String) -> Cmd {
    Cmd::new("sh")
        .args(["-c", APPEND, "pgrepl-history", path])
        .stdin(line.into_bytes())
}

/// Prints the journal `path` (nothing when there is none).
fn read_cmd(path: &str) -> Cmd {
    Cmd::new("sh").args(["-c", READ, "pgrepl-history-read", path])
}

/// The records of a journal's text; lines that do not parse are skipped.
pub fn parse(text: &str) -> Vec<Record> {
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Every host's records as one history: each record once (by id), oldest first.
pub fn merge(journals: Vec<Vec<Record>>) -> Vec<Record> {
    let mut by_id: BTreeMap<String, Record> = BTreeMap::new();
    for r in journals.into_iter().flatten() {
        by_id.entry(r.id.clone()).or_insert(r);
    }
    let mut all: Vec<Record> = by_id.into_values().collect();
    all.sort_by(|a, b| (&a.started, &a.id).cmp(&(&b.started, &b.id)));
    all
}

/// The record of a run of `command` that started at `started` and took `took`, ended with `r`;
/// `None` for a refusal (bad inventory, preflight, no confirmation, locked: nothing changed).
pub fn record(
    ctx: &Context<'_>,
    command: &str,
    started: std::time::SystemTime,
    took: std::time::Duration,
    r: &Result<u8, Error>,
) -> Option<Record> {
    let (outcome, code, error) = match r {
        Ok(code) => ("ok", *code, None),
        Err(
            Error::Inventory { .. }
            | Error::Preflight { .. }
            | Error::ConfirmationRequired { .. }
            | Error::Locked { .. },
        ) => return None,
        Err(e) => (
            match e {
                Error::Interrupted | Error::InterruptedAfter(_) => "interrupted",
                Error::SwitchoverRolledBack(_) => "rolled_back",
                Error::SwitchoverIncomplete(_) => "incomplete",
                _ => "failed",
            },
            e.code(),
            e.to_string().lines().next().map(str::to_string),
        ),
    };
    let me = super::lock::me(command);
    let start_ms = started
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    Some(Record {
        id: format!("{}-{}-{start_ms}", me.machine, me.pid),
        command: command.to_string(),
        args: std::env::args().skip(1).collect(),
        user: me.user,
        machine: me.machine,
        started: humantime::format_rfc3339_millis(started).to_string(),
        ended: humantime::format_rfc3339_millis(started + took).to_string(),
        seconds: took.as_secs_f64(),
        outcome: outcome.to_string(),
        exit_code: code,
        error,
        result: ctx.take_result(),
    })
}

/// Appends `r` to the journal of every inventory host reachable now (a failure is logged, not
/// fatal: the command's own outcome stands).
pub async fn append(ctx: &Context<'_>, r: &Record) {
    let Ok(line) = serde_json::to_string(r) else {
        return;
    };
    let hosts = ctx.inv.hosts.iter().map(|h| {
        let line = format!("{line}\n");
        async move {
            let t = tokio::time::timeout(ctx.inv.timeouts.status, ctx.kept(h)).await;
            if let Ok(Ok(t)) = t {
                append_on(t.as_ref(), h, line).await;
            }
        }
    });
    futures_util::future::join_all(hosts).await;
}

async fn append_on(t: &dyn Transport, h: &Host, line: String) {
    match t.run(&append_cmd(&journal(&h.data_dir), line), None).await {
        Ok(o) if o.success() => {}
        Ok(o) => tracing::warn!(
            "{}: history not written: {}",
            h.name,
            o.stderr_tail.join(" ")
        ),
        Err(e) => tracing::warn!("{}: history not written: {e:#}", h.name),
    }
}

/// Each host's journal: `Ok(records)` or why it could not be read.
pub async fn read_all(ctx: &Context<'_>) -> Vec<(String, Result<Vec<Record>, String>)> {
    let hosts = ctx.inv.hosts.iter().map(|h| async move {
        let got = match tokio::time::timeout(ctx.inv.timeouts.status, ctx.kept(h)).await {
            Ok(Ok(t)) => match t.run(&read_cmd(&journal(&h.data_dir)), None).await {
                Ok(o) if o.success() => Ok(parse(&o.stdout)),
                Ok(o) => Err(o.stderr_tail.join(" ")),
                Err(e) => Err(format!("{e:#}")),
            },
            Ok(Err(e)) => Err(format!("{e:#}")),
            Err(_) => Err("no answer (timeouts.status)".into()),
        };
        (h.name.clone(), got)
    });
    futures_util::future::join_all(hosts).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, started: &str) -> Record {
        Record {
            id: id.into(),
            command: "switchover".into(),
            args: vec!["switchover".into(), "r1".into()],
            user: "dba".into(),
            machine: "admin1".into(),
            started: started.into(),
            ended: started.into(),
            seconds: 1.5,
            outcome: "ok".into(),
            exit_code: 0,
            error: None,
            result: Some(serde_json::json!({"write_gap_seconds": 0.18})),
        }
    }

    #[test]
    fn journals_merge_into_one_history_oldest_first() {
        let a = rec("m-1-1", "2026-11-30T10:00:00Z");
        let b = rec("m-2-2", "2026-11-30T11:00:00Z");
        let text = format!(
            "{}\nnot json\n{}\n",
            serde_json::to_string(&b).unwrap(),
            serde_json::to_string(&a).unwrap()
        );
        let one = parse(&text);
        assert_eq!(one.len(), 2);
        // The same records on two hosts, and one only the second host has.
        let c = rec("m-3-3", "2026-11-30T12:00:00Z");
        let merged = merge(vec![one, vec![a.clone(), c.clone()]]);
        assert_eq!(merged, [a, b, c]);
    }
}
