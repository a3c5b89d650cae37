//! `pgrepl history`: what pgrepl did to this cluster, from the journals its hosts keep
//! (`steps::history`): when, which command with which arguments, who ran it from which machine,
//! how it ended, and what it reported (timelines, LSNs, the write gap). A table, or one JSON
//! document `{entries, unreadable}`. Reads only.

use crate::error::{exit, Error};
use crate::steps::history::{merge, read_all, Record};
use crate::ui::Format;

use super::documents::{HistoryDocument, UnreadableJournal};
use super::Context;

/// What `history` was asked.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Only the last N records.
    pub limit: Option<usize>,
}

/// `pgrepl history`.
pub async fn run(ctx: &Context<'_>, o: Options) -> Result<u8, Error> {
    let mut journals = Vec::new();
    let mut unreadable = Vec::new();
    for (host, got) in read_all(ctx).await {
        match got {
            Ok(records) => journals.push(records),
            Err(why) => {
                ctx.ui.warn(format!("{host}: history not read: {why}"));
                unreadable.push(UnreadableJournal { host, error: why });
            }
        }
    }
    let mut all = merge(journals);
    if let Some(n) = o.limit {
        let skip = all.len().saturating_sub(n);
        all.drain(..skip);
    }
    if ctx.ui.format() == Format::Json {
        ctx.ui.json(&HistoryDocument {
            entries: all,
            unreadable,
        });
    } else {
        ctx.ui.data(&table(&all));
    }
    Ok(exit::OK)
}

/// The text table: STARTED, COMMAND, BY, OUTCOME, SECONDS, DETAILS.
pub fn table(all: &[Record]) -> String {
    let mut out = format!(
        "{:<24} {:<28} {:<24} {:<12} {:>8}  {}\n",
        "STARTED", "COMMAND", "BY", "OUTCOME", "SECONDS", "DETAILS"
    );
    for r in all {
        let args: Vec<&str> = r.args.iter().map(String::as_str).collect();
        out.push_str(&format!(
            "{:<24} {:<28} {:<24} {:<12} {:>8.1}  {}\n",
            r.started,
            command_line(&args),
            format!("{}@{}", r.user, r.machine),
            r.outcome,
            r.seconds,
            details(r)
        ));
    }
    if all.is_empty() {
        out.push_str("(no history yet)\n");
    }
    out
}

/// The command and its arguments without the inventory option (`-i FILE`).
fn command_line(args: &[&str]) -> String {
    let mut out = Vec::new();
    let mut skip = false;
    for a in args {
        if skip {
            skip = false;
            continue;
        }
        // The inventory path and the output format say nothing about what was done.
        if ["-i", "--inventory", "--format"].contains(a) {
            skip = true;
            continue;
        }
        if a.starts_with("--inventory=") || a.starts_with("--format=") {
            continue;
        }
        out.push(*a);
    }
    out.join(" ")
}

/// The figures a record's result carries, in a few words.
fn details(r: &Record) -> String {
    let Some(v) = &r.result else {
        return r.error.clone().unwrap_or_default();
    };
    let mut d = Vec::new();
    let mut add = |label: &str, key: &str| {
        if let Some(x) = v.get(key).filter(|x| !x.is_null()) {
            let shown = match (x.as_str(), x.as_f64()) {
                (Some(s), _) => s.to_string(),
                (None, Some(f)) if x.is_f64() => format!("{f:.2}"),
                _ => x.to_string(),
            };
            d.push(format!("{label} {shown}"));
        }
    };
    add("new primary", "new_primary");
    add("promoted", "promoted");
    add("timeline", "timeline");
    add("timeline", "new_timeline");
    add("write gap s", "write_gap_seconds");
    add("lost bytes", "bytes_maybe_lost");
    add("method", "method");
    add("discarded bytes", "discarded_bytes");
    d.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_the_figures_without_the_inventory_path() {
        let r = Record {
            id: "m-1-1".into(),
            command: "switchover".into(),
            args: [
                "-i",
                "/etc/pgrepl/c.yml",
                "--format",
                "json",
                "switchover",
                "r1",
                "--yes",
            ]
            .map(String::from)
            .to_vec(),
            user: "dba".into(),
            machine: "admin1".into(),
            started: "2026-11-30T10:00:00.000Z".into(),
            ended: "2026-11-30T10:00:02.000Z".into(),
            seconds: 2.0,
            outcome: "ok".into(),
            exit_code: 0,
            error: None,
            result: Some(
                serde_json::json!({"new_primary": "r1", "timeline": 3, "write_gap_seconds": 0.18}),
            ),
        };
        let t = table(&[r]);
        assert!(t.contains("switchover r1 --yes"), "{t}");
        assert!(!t.contains("c.yml"), "{t}");
        assert!(t.contains("dba@admin1"), "{t}");
        assert!(
            t.contains("new primary r1, timeline 3, write gap s 0.18"),
            "{t}"
        );
        assert!(table(&[]).contains("(no history yet)"));
    }
}
