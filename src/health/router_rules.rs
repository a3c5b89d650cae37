//! The rules of `status` for routers, over what each route was seen to point at
//! (`steps::routers::observe`): a write route that does not reach exactly the live primary is
//! critical (`router_stale`), a read route that differs from the read targets is a warning, and
//! a router that could not be read is a warning (`router_unreachable`). Pure.

use std::collections::BTreeSet;

use crate::render::{targets, Route};
use crate::router::RouterState;
use crate::topology::Topology;

use super::fixes::Fixes;
use super::rules::finding;
use super::{Finding, FindingCode, Severity};

/// Every route's finding, in the order the routes were observed.
pub fn routers(topo: &Topology, states: &[RouterState]) -> Vec<Finding> {
    let fix = Fixes::new(topo.inv);
    let Some(primary) = topo.primary() else {
        return Vec::new(); // no_primary says it all
    };
    let live = topo.inv.with_primary(primary.name());
    // PgBouncer's read list holds the replicas that answer (it cannot check them itself).
    let mut up = live.clone();
    up.hosts
        .retain(|h| h.name == primary.name() || topo.find(&h.name).is_some_and(|n| n.reachable()));
    let mut out = Vec::new();
    for s in states {
        let Some(r) = live.routers.iter().find(|r| r.name == s.router) else {
            continue;
        };
        let route = s.route.as_str();
        if !s.reachable {
            out.push(Finding {
                severity: Severity::Warning,
                code: FindingCode::RouterUnreachable,
                host: Some(s.router.clone()),
                message: format!(
                    "cannot tell where {}'s {route} route points: {}",
                    s.router,
                    s.error.as_deref().unwrap_or("no answer")
                ),
                fix: format!("start or reconfigure it: {}", fix.init()),
            });
            continue;
        }
        let seen: BTreeSet<&str> = s
            .targets
            .iter()
            .map(|t| t.host.as_deref().unwrap_or(t.address.as_str()))
            .collect();
        let from = if r.kind == crate::inventory::RouterKind::Pgbouncer {
            &up
        } else {
            &live
        };
        let want: BTreeSet<String> = targets(from, r, s.route)
            .iter()
            .map(|h| h.name.clone())
            .collect();
        let want: BTreeSet<&str> = want.iter().map(String::as_str).collect();
        if seen == want {
            continue;
        }
        let sev = if s.route == Route::Write {
            Severity::Critical
        } else {
            Severity::Warning
        };
        let list = |v: &BTreeSet<&str>| v.iter().copied().collect::<Vec<_>>().join(", ");
        let mut f = finding(
            sev,
            FindingCode::RouterStale,
            None,
            format!(
                "{}'s {route} route points at {} instead of {}",
                s.router,
                list(&seen),
                list(&want)
            ),
            format!("re-point it: {}", fix.init()),
        );
        f.host = Some(s.router.clone());
        out.push(f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::RouterKind;
    use crate::router::RouteTarget;
    use crate::topology::fixtures::*;

    fn inv() -> crate::inventory::Inventory {
        crate::inventory::parse(
            "cluster: c\npostgres: {version: 15}\nreplication: {password_env: X}\nhosts:\n  - {name: p, address: 10.0.0.1, role: primary}\n  - {name: r1, address: 10.0.0.2, role: replica}\n  - {name: r2, address: 10.0.0.3, role: replica}\nroles: [{name: app, password_env: A}]\nrouters:\n  - {name: ha, kind: haproxy, address: 10.0.0.9, ports: {write: 5435, read: 5436, stats: 8404}}\n",
            std::path::Path::new("i.yml"),
        )
        .unwrap()
    }

    fn state(route: Route, hosts: &[&str], reachable: bool) -> RouterState {
        RouterState {
            router: "ha".into(),
            kind: RouterKind::Haproxy,
            route,
            port: 5435,
            reachable,
            error: (!reachable).then(|| "connection refused".into()),
            targets: hosts
                .iter()
                .map(|h| RouteTarget {
                    host: Some(h.to_string()),
                    address: "x".into(),
                    port: 5432,
                    status: Some("UP".into()),
                })
                .collect(),
        }
    }

    #[test]
    fn a_write_route_off_the_live_primary_is_critical_and_a_read_route_warns() {
        let inv = inv();
        let probes = vec![
            up(primary("0/5000000", &["r1", "r2"])),
            up(standby("0/5000000")),
            up(standby("0/5000000")),
        ];
        let topo = Topology::discover(&inv, probes);
        let ok = routers(
            &topo,
            &[
                state(Route::Write, &["p"], true),
                state(Route::Read, &["r1", "r2"], true),
            ],
        );
        assert!(ok.is_empty(), "{ok:?}");
        let f = routers(
            &topo,
            &[
                state(Route::Write, &["r1"], true),
                state(Route::Read, &["r2"], true),
            ],
        );
        assert_eq!(f.len(), 2, "{f:?}");
        assert_eq!(
            (f[0].code, f[0].severity),
            (FindingCode::RouterStale, Severity::Critical)
        );
        assert!(
            f[0].message
                .contains("ha's write route points at r1 instead of p"),
            "{}",
            f[0].message
        );
        assert!(f[0].fix.contains("init"), "{}", f[0].fix);
        assert_eq!(f[1].severity, Severity::Warning);
        let f = routers(&topo, &[state(Route::Write, &[], false)]);
        assert_eq!(
            (f[0].code, f[0].severity),
            (FindingCode::RouterUnreachable, Severity::Warning)
        );
    }
}
