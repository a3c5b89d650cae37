//! Renders a `ClusterView` for people (a table) and for Prometheus (text exposition format,
//! for node_exporter's textfile collector). Pure string building; `ui` decides where it goes.

use std::fmt::Write as _;

use crate::health::{ClusterView, Severity};
use crate::inventory::Role;

/// Human-readable bytes (powers of 1024).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

fn secs(v: Option<f64>) -> String {
    v.map(|s| format!("{s:.1}s")).unwrap_or_else(|| "-".into())
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

/// The table `pgrepl status` prints. `paint` colors a severity word (identity without a terminal).
pub fn text(v: &ClusterView, paint: &dyn Fn(Severity, &str) -> String) -> String {
    let mut out = String::new();
    let word = match v.severity {
        Severity::Ok => "OK",
        Severity::Warning => "WARNING",
        Severity::Critical => "CRITICAL",
    };
    let _ = writeln!(
        out,
        "cluster {}: {} ({} hosts, primary {}, {:.2}s)\n",
        v.cluster,
        paint(v.severity, word),
        v.hosts.len(),
        v.primary.as_deref().unwrap_or("none"),
        v.duration_seconds
    );

    let mut rows = vec![[
        "HOST",
        "ROLE",
        "INVENTORY",
        "REACHABLE",
        "TIMELINE",
        "VERSION",
        "LSN",
        "PENDING_RESTART",
    ]
    .map(String::from)
    .to_vec()];
    for h in &v.hosts {
        let lsn = if h.role == Some(Role::Replica) {
            h.replay_lsn.clone()
        } else {
            h.current_lsn.clone()
        };
        rows.push(vec![
            h.name.clone(),
            role(h.role).into(),
            role(Some(h.inventory_role)).into(),
            if h.reachable {
                "yes".into()
            } else {
                "no".into()
            },
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
    out.push_str(&table(&rows));

    if !v.replicas.is_empty() {
        out.push('\n');
        let mut rows = vec![[
            "REPLICA",
            "UPSTREAM",
            "STATE",
            "SYNC",
            "LAG",
            "BEHIND",
            "REPLAY_LAG",
            "LAST_REPLAY_AGE",
        ]
        .map(String::from)
        .to_vec()];
        for r in &v.replicas {
            rows.push(vec![
                r.host.clone(),
                opt(r.upstream.clone()),
                opt(r.state.clone()),
                opt(r.sync_state.clone()),
                r.lag_bytes.map(bytes).unwrap_or_else(|| "-".into()),
                r.behind_bytes.map(bytes).unwrap_or_else(|| "-".into()),
                secs(r.replay_lag_seconds),
                secs(r.last_replay_age_seconds),
            ]);
        }
        out.push_str(&table(&rows));
    }

    if !v.slots.is_empty() {
        out.push('\n');
        let mut rows = vec![[
            "SLOT",
            "ON",
            "TYPE",
            "ACTIVE",
            "WAL_STATUS",
            "RETAINED",
            "SAFE_WAL_SIZE",
        ]
        .map(String::from)
        .to_vec()];
        for s in &v.slots {
            rows.push(vec![
                s.name.clone(),
                s.host.clone(),
                s.slot_type.clone(),
                if s.active { "yes".into() } else { "no".into() },
                opt(s.wal_status.clone()),
                s.retained_bytes
                    .map(|b| bytes(b.max(0) as u64))
                    .unwrap_or_else(|| "-".into()),
                s.safe_wal_size
                    .map(|b| bytes(b.max(0) as u64))
                    .unwrap_or_else(|| "unlimited".into()),
            ]);
        }
        out.push_str(&table(&rows));
    }

    if !v.findings.is_empty() {
        out.push_str("\nFINDINGS\n");
        for f in &v.findings {
            let sev = match f.severity {
                Severity::Critical => "critical",
                Severity::Warning => "warning ",
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
    }
    out
}

fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

struct Metrics {
    out: String,
}

impl Metrics {
    fn family(&mut self, name: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} gauge");
    }
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        if !value.is_finite() {
            return;
        }
        let l: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", label(v)))
            .collect();
        let _ = writeln!(self.out, "{name}{{{}}} {value}", l.join(","));
    }
}

/// Prometheus text exposition format (version 0.0.4), gauges only.
pub fn prometheus(v: &ClusterView) -> String {
    let mut m = Metrics { out: String::new() };
    let c = v.cluster.as_str();
    m.family(
        "pgrepl_up",
        "Whether pgrepl could query the host's PostgreSQL server (1) or not (0).",
    );
    for h in &v.hosts {
        m.sample(
            "pgrepl_up",
            &[("cluster", c), ("host", &h.name)],
            if h.reachable { 1.0 } else { 0.0 },
        );
    }
    m.family(
        "pgrepl_is_primary",
        "Whether the host accepts writes (1), from pg_is_in_recovery(); absent when unreachable.",
    );
    for h in v.hosts.iter().filter(|h| h.reachable) {
        m.sample(
            "pgrepl_is_primary",
            &[("cluster", c), ("host", &h.name)],
            if h.role == Some(Role::Primary) {
                1.0
            } else {
                0.0
            },
        );
    }
    m.family("pgrepl_timeline", "The host's current timeline ID.");
    for h in &v.hosts {
        if let Some(t) = h.timeline {
            m.sample(
                "pgrepl_timeline",
                &[("cluster", c), ("host", &h.name)],
                t as f64,
            );
        }
    }
    m.family(
        "pgrepl_replica_streaming",
        "Whether the replica is streaming from its upstream (1) or not (0).",
    );
    for r in &v.replicas {
        m.sample(
            "pgrepl_replica_streaming",
            &[
                ("cluster", c),
                ("host", &r.host),
                ("upstream", r.upstream.as_deref().unwrap_or("")),
            ],
            if r.streaming { 1.0 } else { 0.0 },
        );
    }
    for (name, help, get) in [
        (
            "pgrepl_replica_lag_bytes",
            "WAL sent by the upstream and not yet replayed by the replica (sent_lsn - replay_lsn).",
            (|r: &crate::health::ReplicaView| r.lag_bytes.map(|b| b as f64))
                as fn(&crate::health::ReplicaView) -> Option<f64>,
        ),
        (
            "pgrepl_replica_behind_bytes",
            "The upstream's WAL position minus the replica's replay position.",
            |r| r.behind_bytes.map(|b| b as f64),
        ),
        (
            "pgrepl_replica_replay_lag_seconds",
            "replay_lag from the upstream's pg_stat_replication.",
            |r| r.replay_lag_seconds,
        ),
        (
            "pgrepl_replica_last_replay_age_seconds",
            "Age of the last transaction the replica replayed (grows while the primary is idle).",
            |r| r.last_replay_age_seconds,
        ),
    ] {
        m.family(name, help);
        for r in &v.replicas {
            if let Some(x) = get(r) {
                m.sample(
                    name,
                    &[
                        ("cluster", c),
                        ("host", &r.host),
                        ("upstream", r.upstream.as_deref().unwrap_or("")),
                    ],
                    x,
                );
            }
        }
    }
    m.family(
        "pgrepl_slot_active",
        "Whether the replication slot is in use (1) or not (0).",
    );
    for s in &v.slots {
        m.sample(
            "pgrepl_slot_active",
            &[("cluster", c), ("host", &s.host), ("slot", &s.name)],
            if s.active { 1.0 } else { 0.0 },
        );
    }
    m.family(
        "pgrepl_slot_retained_bytes",
        "WAL the slot keeps on its host (position minus restart_lsn).",
    );
    for s in &v.slots {
        if let Some(b) = s.retained_bytes {
            m.sample(
                "pgrepl_slot_retained_bytes",
                &[("cluster", c), ("host", &s.host), ("slot", &s.name)],
                b as f64,
            );
        }
    }
    m.family("pgrepl_findings", "Number of findings by severity.");
    for (sev, name) in [
        (Severity::Warning, "warning"),
        (Severity::Critical, "critical"),
    ] {
        m.sample(
            "pgrepl_findings",
            &[("cluster", c), ("severity", name)],
            v.findings.iter().filter(|f| f.severity == sev).count() as f64,
        );
    }
    m.family(
        "pgrepl_healthy",
        "Whether status found nothing to report (1) or not (0).",
    );
    m.sample(
        "pgrepl_healthy",
        &[("cluster", c)],
        if v.healthy { 1.0 } else { 0.0 },
    );
    m.family(
        "pgrepl_status_duration_seconds",
        "Wall time of this status run.",
    );
    m.sample(
        "pgrepl_status_duration_seconds",
        &[("cluster", c)],
        v.duration_seconds,
    );
    m.out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_formatting() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1536), "1.5 kB");
        assert_eq!(bytes(16 << 20), "16.0 MB");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn tables_pad_columns() {
        let t = table(&[
            vec!["A".into(), "BB".into()],
            vec!["CCC".into(), "D".into()],
        ]);
        assert_eq!(t, "A    BB\nCCC  D\n");
    }
}
