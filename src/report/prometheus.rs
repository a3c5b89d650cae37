//! `pgrepl status --format prometheus`: the view as gauges in the Prometheus text exposition
//! format (version 0.0.4), for node_exporter's textfile collector. One writer per section of the
//! view (hosts, replicas, slots, the cluster), one `gauge` call per metric family; families keep
//! their order and always print their HELP and TYPE lines. No I/O.

use std::fmt::Write as _;

use crate::health::{ClusterView, HostView, ReplicaView, Severity, SlotView};
use crate::inventory::Role;

/// Prometheus text exposition format (version 0.0.4), gauges only.
pub fn prometheus(v: &ClusterView) -> String {
    let mut m = Metrics { out: String::new() };
    hosts(&mut m, &v.cluster, &v.hosts);
    replicas(&mut m, &v.cluster, &v.replicas);
    slots(&mut m, &v.cluster, &v.slots);
    routers(&mut m, &v.cluster, &v.routers);
    tls(&mut m, &v.cluster, &v.tls);
    cluster(&mut m, v);
    m.out
}

/// The labels of one sample, in order.
type Labels<'a> = Vec<(&'static str, &'a str)>;

struct Metrics {
    out: String,
}

impl Metrics {
    /// One gauge family: its HELP and TYPE lines, then its samples (non-finite values left out).
    fn gauge<'a>(
        &mut self,
        name: &str,
        help: &str,
        samples: impl IntoIterator<Item = (Labels<'a>, f64)>,
    ) {
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (labels, value) in samples {
            if !value.is_finite() {
                continue;
            }
            let l: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", label(v)))
                .collect();
            let _ = writeln!(self.out, "{name}{{{}}} {value}", l.join(","));
        }
    }
}

/// A label value, escaped (backslash, double quote, newline).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn flag(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

fn host<'a>(c: &'a str, h: &'a HostView) -> Labels<'a> {
    vec![("cluster", c), ("host", &h.name)]
}

fn replica<'a>(c: &'a str, r: &'a ReplicaView) -> Labels<'a> {
    let upstream = r.upstream.as_deref().unwrap_or("");
    vec![("cluster", c), ("host", &r.host), ("upstream", upstream)]
}

fn router<'a>(c: &'a str, r: &'a crate::router::RouterState) -> Labels<'a> {
    vec![
        ("cluster", c),
        ("router", &r.router),
        ("route", r.route.as_str()),
    ]
}

fn slot<'a>(c: &'a str, s: &'a SlotView) -> Labels<'a> {
    vec![("cluster", c), ("host", &s.host), ("slot", &s.name)]
}

/// `pgrepl_up`, `pgrepl_is_primary`, `pgrepl_timeline`.
fn hosts(m: &mut Metrics, c: &str, hosts: &[HostView]) {
    m.gauge(
        "pgrepl_up",
        "Whether pgrepl could query the host's PostgreSQL server (1) or not (0).",
        hosts.iter().map(|h| (host(c, h), flag(h.reachable))),
    );
    m.gauge(
        "pgrepl_is_primary",
        "Whether the host accepts writes (1), from pg_is_in_recovery(); absent when unreachable.",
        hosts
            .iter()
            .filter(|h| h.reachable)
            .map(|h| (host(c, h), flag(h.role == Some(Role::Primary)))),
    );
    m.gauge(
        "pgrepl_timeline",
        "The host's current timeline ID.",
        hosts
            .iter()
            .filter_map(|h| Some((host(c, h), h.timeline? as f64))),
    );
}

/// `pgrepl_replica_streaming` and the replicas' lag gauges.
fn replicas(m: &mut Metrics, c: &str, replicas: &[ReplicaView]) {
    m.gauge(
        "pgrepl_replica_streaming",
        "Whether the replica is streaming from its upstream (1) or not (0).",
        replicas.iter().map(|r| (replica(c, r), flag(r.streaming))),
    );
    let each = |value: fn(&ReplicaView) -> Option<f64>| {
        replicas
            .iter()
            .filter_map(move |r| Some((replica(c, r), value(r)?)))
    };
    m.gauge(
        "pgrepl_replica_lag_bytes",
        "WAL sent by the upstream and not yet replayed by the replica (sent_lsn - replay_lsn).",
        each(|r| r.lag_bytes.map(|b| b as f64)),
    );
    m.gauge(
        "pgrepl_replica_behind_bytes",
        "The upstream's WAL position minus the replica's replay position.",
        each(|r| r.behind_bytes.map(|b| b as f64)),
    );
    m.gauge(
        "pgrepl_replica_replay_lag_seconds",
        "replay_lag from the upstream's pg_stat_replication.",
        each(|r| r.replay_lag_seconds),
    );
    m.gauge(
        "pgrepl_replica_last_replay_age_seconds",
        "Age of the last transaction the replica replayed (grows while the primary is idle).",
        each(|r| r.last_replay_age_seconds),
    );
}

/// `pgrepl_slot_active`, `pgrepl_slot_retained_bytes`.
fn slots(m: &mut Metrics, c: &str, slots: &[SlotView]) {
    m.gauge(
        "pgrepl_slot_active",
        "Whether the replication slot is in use (1) or not (0).",
        slots.iter().map(|s| (slot(c, s), flag(s.active))),
    );
    m.gauge(
        "pgrepl_slot_retained_bytes",
        "WAL the slot keeps on its host (position minus restart_lsn).",
        slots
            .iter()
            .filter_map(|s| Some((slot(c, s), s.retained_bytes? as f64))),
    );
}

/// `pgrepl_tls_cert_expiry_seconds`: per host whose server certificate could be read.
fn tls(m: &mut Metrics, c: &str, states: &[crate::health::tls_rules::TlsState]) {
    m.gauge(
        "pgrepl_tls_cert_expiry_seconds",
        "Seconds until the host's server certificate expires (negative: expired).",
        states.iter().filter_map(|s| {
            s.seconds_left
                .map(|d| (vec![("cluster", c), ("host", s.host.as_str())], d as f64))
        }),
    );
}

/// `pgrepl_router_reachable`, `pgrepl_router_target` (one sample per node a route points at).
fn routers(m: &mut Metrics, c: &str, routers: &[crate::router::RouterState]) {
    m.gauge(
        "pgrepl_router_reachable",
        "Whether pgrepl could read where the router's route points (1) or not (0).",
        routers.iter().map(|r| (router(c, r), flag(r.reachable))),
    );
    m.gauge(
        "pgrepl_router_target",
        "A node the router's route points at (1; 0 when HAProxy's check marks it down).",
        routers.iter().flat_map(|r| {
            r.targets.iter().map(move |t| {
                let mut l = router(c, r);
                l.push(("host", t.host.as_deref().unwrap_or(t.address.as_str())));
                let up = t.status.as_deref().is_none_or(|s| s.starts_with("UP"));
                (l, flag(up))
            })
        }),
    );
}

/// `pgrepl_findings` by severity, `pgrepl_healthy`, `pgrepl_status_duration_seconds`.
fn cluster(m: &mut Metrics, v: &ClusterView) {
    let c = v.cluster.as_str();
    let count = |sev| v.findings.iter().filter(|f| f.severity == sev).count() as f64;
    m.gauge(
        "pgrepl_findings",
        "Number of findings by severity.",
        [
            (Severity::Notice, "notice"),
            (Severity::Warning, "warning"),
            (Severity::Critical, "critical"),
        ]
        .map(|(sev, name)| (vec![("cluster", c), ("severity", name)], count(sev))),
    );
    m.gauge(
        "pgrepl_healthy",
        "Whether status found nothing to report (1) or not (0).",
        [(vec![("cluster", c)], flag(v.healthy))],
    );
    m.gauge(
        "pgrepl_status_duration_seconds",
        "Wall time of this status run.",
        [(vec![("cluster", c)], v.duration_seconds)],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
