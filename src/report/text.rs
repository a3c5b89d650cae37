//! The text of `pgrepl status`: a headline, a table of hosts, of replicas and of slots, then the
//! findings with their fixes. Columns are padded to their widest cell; a severity word goes
//! through the caller's `paint` (identity without a terminal). No I/O.

use std::fmt::Write as _;

use super::bytes;
use crate::health::{ClusterView, Finding, HostView, ReplicaView, Severity, SlotView};
use crate::inventory::Role;

/// The text `pgrepl status` prints. `paint` colors a severity word (identity without a terminal).
pub fn text(v: &ClusterView, paint: &dyn Fn(Severity, &str) -> String) -> String {
    let mut out = headline(v, paint);
    out.push_str(&hosts_table(&v.hosts));
    if !v.replicas.is_empty() {
        out.push('\n');
        out.push_str(&replicas_table(&v.replicas));
    }
    if !v.slots.is_empty() {
        out.push('\n');
        out.push_str(&slots_table(&v.slots));
    }
    if !v.routers.is_empty() {
        out.push('\n');
        out.push_str(&routers_table(&v.routers));
    }
    if !v.tls.is_empty() {
        out.push('\n');
        out.push_str(&tls_table(&v.tls));
    }
    if !v.findings.is_empty() {
        out.push_str(&findings(&v.findings, paint));
    }
    out
}

/// One row per host: its server certificate's expiry, the server's `ssl`, WAL senders without TLS.
fn tls_table(states: &[crate::health::tls_rules::TlsState]) -> String {
    let mut rows = vec![heading(&[
        "TLS",
        "CERT_EXPIRES",
        "DAYS_LEFT",
        "SSL",
        "PLAIN_SENDERS",
    ])];
    for s in states {
        rows.push(vec![
            s.host.clone(),
            opt(s.not_after.clone()),
            s.days_left
                .map(|d| format!("{d:.0}"))
                .unwrap_or_else(|| "-".into()),
            s.ssl
                .map(|b| if b { "on" } else { "off" }.to_string())
                .unwrap_or_else(|| "-".into()),
            if s.plain_senders.is_empty() {
                "-".into()
            } else {
                s.plain_senders.join(",")
            },
        ]);
    }
    table(&rows)
}

/// One row per router route: where it points (HAProxy's check verdict beside each node).
fn routers_table(routers: &[crate::router::RouterState]) -> String {
    let mut rows = vec![heading(&[
        "ROUTER",
        "KIND",
        "ROUTE",
        "PORT",
        "REACHABLE",
        "TARGETS",
    ])];
    for r in routers {
        let targets: Vec<String> = r
            .targets
            .iter()
            .map(|t| {
                let name = t
                    .host
                    .clone()
                    .unwrap_or_else(|| format!("{}:{}", t.address, t.port));
                match &t.status {
                    Some(s) => format!("{name}({s})"),
                    None => name,
                }
            })
            .collect();
        rows.push(vec![
            r.router.clone(),
            serde_json::to_value(r.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            r.route.as_str().to_string(),
            r.port.to_string(),
            yes_no(r.reachable),
            if targets.is_empty() {
                "-".into()
            } else {
                targets.join(",")
            },
        ]);
    }
    table(&rows)
}

/// `cluster c: OK (3 hosts, primary p, 0.12s)` and a blank line.
fn headline(v: &ClusterView, paint: &dyn Fn(Severity, &str) -> String) -> String {
    let word = match v.severity {
        Severity::Ok => "OK",
        Severity::Notice => "NOTICE",
        Severity::Warning => "WARNING",
        Severity::Critical => "CRITICAL",
    };
    format!(
        "cluster {}: {} ({} hosts, primary {}, {:.2}s)\n\n",
        v.cluster,
        paint(v.severity, word),
        v.hosts.len(),
        v.primary.as_deref().unwrap_or("none"),
        v.duration_seconds
    )
}

/// One row per host: live and inventory role, timeline, version, WAL position.
fn hosts_table(hosts: &[HostView]) -> String {
    let mut rows = vec![heading(&[
        "HOST",
        "ROLE",
        "INVENTORY",
        "REACHABLE",
        "TIMELINE",
        "VERSION",
        "LSN",
        "PENDING_RESTART",
    ])];
    for h in hosts {
        let lsn = if h.role == Some(Role::Replica) {
            h.replay_lsn.clone()
        } else {
            h.current_lsn.clone()
        };
        rows.push(vec![
            h.name.clone(),
            role(h.role).into(),
            role(Some(h.inventory_role)).into(),
            yes_no(h.reachable),
            opt(h.timeline),
            opt(h.server_version.clone()),
            opt(lsn),
            if h.pending_restart.is_empty() {
                "-".into()
            } else {
                h.pending_restart.join(",")
            },
        ]);
    }
    table(&rows)
}

/// One row per standby: who serves it and how far behind it is.
fn replicas_table(replicas: &[ReplicaView]) -> String {
    let mut rows = vec![heading(&[
        "REPLICA",
        "UPSTREAM",
        "STATE",
        "SYNC",
        "LAG",
        "BEHIND",
        "REPLAY_LAG",
        "LAST_REPLAY_AGE",
        "DELAY",
    ])];
    for r in replicas {
        rows.push(vec![
            r.host.clone(),
            opt(r.upstream.clone()),
            opt(r.state.clone()),
            opt(r.sync_state.clone()),
            r.lag_bytes.map(bytes).unwrap_or_else(|| "-".into()),
            r.behind_bytes.map(bytes).unwrap_or_else(|| "-".into()),
            secs(r.replay_lag_seconds),
            secs(r.last_replay_age_seconds),
            r.apply_delay_seconds
                .map(|d| format!("{d}s"))
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    table(&rows)
}

/// One row per replication slot.
fn slots_table(slots: &[SlotView]) -> String {
    let mut rows = vec![heading(&[
        "SLOT",
        "ON",
        "TYPE",
        "ACTIVE",
        "WAL_STATUS",
        "RETAINED",
        "SAFE_WAL_SIZE",
    ])];
    for s in slots {
        rows.push(vec![
            s.name.clone(),
            s.host.clone(),
            s.slot_type.clone(),
            yes_no(s.active),
            opt(s.wal_status.clone()),
            s.retained_bytes
                .map(|b| bytes(b.max(0) as u64))
                .unwrap_or_else(|| "-".into()),
            safe_wal_size(s),
        ]);
    }
    table(&rows)
}

/// SAFE_WAL_SIZE: bytes, `unlimited` when `safe_wal_size` is NULL on a live slot, `-` on a
/// lost slot (NULL there too: nothing is safe any more).
fn safe_wal_size(s: &SlotView) -> String {
    match (s.safe_wal_size, s.wal_status.as_deref()) {
        (_, Some("lost")) => "-".into(),
        (Some(b), _) => bytes(b.max(0) as u64),
        (None, _) => "unlimited".into(),
    }
}

/// `FINDINGS`, then each finding and its fix, the severity word padded to one width.
fn findings(findings: &[Finding], paint: &dyn Fn(Severity, &str) -> String) -> String {
    let mut out = String::from("\nFINDINGS\n");
    for f in findings {
        let sev = match f.severity {
            Severity::Critical => "critical",
            Severity::Warning => "warning ",
            Severity::Notice => "notice  ",
            Severity::Ok => "ok      ",
        };
        let _ = writeln!(
            out,
            "{} {}: {}\n         fix: {}",
            paint(f.severity, sev),
            f.code,
            f.message,
            f.fix
        );
    }
    out
}

fn heading(columns: &[&str]) -> Vec<String> {
    columns.iter().map(|c| c.to_string()).collect()
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

fn secs(v: Option<f64>) -> String {
    v.map(|s| format!("{s:.1}s")).unwrap_or_else(|| "-".into())
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.into()
}

fn role(r: Option<Role>) -> &'static str {
    match r {
        Some(Role::Primary) => "primary",
        Some(Role::Replica) => "replica",
        None => "-",
    }
}

/// Pads a table: each row is a list of cells; columns are as wide as their widest cell.
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_pad_columns() {
        let t = table(&[
            vec!["A".into(), "BB".into()],
            vec!["CCC".into(), "D".into()],
        ]);
        assert_eq!(t, "A    BB\nCCC  D\n");
    }

    #[test]
    fn safe_wal_size_is_a_dash_on_a_lost_slot() {
        let slot = |wal_status: &str, safe: Option<i64>| SlotView {
            host: "p".into(),
            name: "r1".into(),
            slot_type: "physical".into(),
            active: false,
            wal_status: Some(wal_status.into()),
            safe_wal_size: safe,
            invalidation_reason: None,
            retained_bytes: Some(0),
        };
        let t = slots_table(&[
            slot("reserved", None),
            slot("extended", Some(1536)),
            slot("lost", None),
        ]);
        let col: Vec<&str> = t
            .lines()
            .map(|l| l.split_whitespace().last().unwrap())
            .collect();
        assert_eq!(col, ["SAFE_WAL_SIZE", "unlimited", "kB", "-"], "{t}");
    }
}
