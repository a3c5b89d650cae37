//! Unit tests of `assess`, of each rule (one that makes it fire, and where meaningful one where
//! it must not) and of the fix commands.
#[cfg(test)]
use super::*;
use crate::inventory::Inventory;
use crate::pg::state::{NodeState, Sender, Slot};
use crate::pg::Lsn;
use crate::topology::Probe;

fn inv() -> Inventory {
    crate::inventory::parse(
        "cluster: c\npostgres: {version: 15}\nreplication: {password_env: X}\nhosts:\n  - {name: p, address: 10.0.0.1, role: primary}\n  - {name: r1, address: 10.0.0.2, role: replica}\n  - {name: r2, address: 10.0.0.3, role: replica}\n",
        std::path::Path::new("i.yml"),
    )
    .unwrap()
}

fn lsn(s: &str) -> Option<Lsn> {
    Lsn::parse(s)
}

fn primary(senders: Vec<Sender>, slots: Vec<Slot>) -> NodeState {
    NodeState {
        in_recovery: false,
        system_identifier: "7".into(),
        current_lsn: lsn("0/5000000"),
        senders,
        slots,
        ..Default::default()
    }
}

fn replica(replay: &str) -> NodeState {
    NodeState {
        in_recovery: true,
        system_identifier: "7".into(),
        replay_lsn: lsn(replay),
        receive_lsn: lsn(replay),
        ..Default::default()
    }
}

fn sender(name: &str, state: &str, replay: &str) -> Sender {
    Sender {
        application_name: name.into(),
        state: state.into(),
        sync_state: "async".into(),
        sent_lsn: lsn("0/5000000"),
        replay_lsn: lsn(replay),
        ..Default::default()
    }
}

fn slot(name: &str, active: bool, retained: i64) -> Slot {
    Slot {
        name: name.into(),
        slot_type: "physical".into(),
        active,
        wal_status: Some("reserved".into()),
        retained_bytes: Some(retained),
        ..Default::default()
    }
}

fn assess_probes(probes: Vec<Probe>, t: &Thresholds, d: f64) -> ClusterView {
    let inv = inv();
    assess(&Topology::discover(&inv, probes), t, d)
}

fn ok(s: NodeState) -> Probe {
    Probe {
        state: Ok(s),
        monitor_refused: None,
    }
}

#[test]
fn healthy_cluster_has_no_findings() {
    let p = primary(
        vec![
            sender("r1", "streaming", "0/5000000"),
            sender("r2", "streaming", "0/4FFFF00"),
        ],
        vec![slot("r1", true, 0), slot("r2", true, 256)],
    );
    let v = assess_probes(
        vec![ok(p), ok(replica("0/5000000")), ok(replica("0/4FFFF00"))],
        &Thresholds::default(),
        0.1,
    );
    assert!(v.healthy, "{:?}", v.findings);
    assert_eq!(v.primary.as_deref(), Some("p"));
    assert_eq!(v.replicas[1].behind_bytes, Some(0x100));
    assert_eq!(v.replicas[1].lag_bytes, Some(0x100));
    assert_eq!(v.replicas[0].upstream.as_deref(), Some("p"));
}

#[test]
fn stopped_replica_makes_unreachable_and_inactive_slot_warnings() {
    let p = primary(
        vec![sender("r1", "streaming", "0/5000000")],
        vec![slot("r1", true, 0), slot("r2", false, 1 << 20)],
    );
    let v = assess_probes(
        vec![
            ok(p),
            ok(replica("0/5000000")),
            Probe {
                state: Err("connection refused".into()),
                monitor_refused: None,
            },
        ],
        &Thresholds::default(),
        0.1,
    );
    assert_eq!(v.severity, Severity::Warning);
    let codes: Vec<_> = v.findings.iter().map(|f| f.code).collect();
    assert!(
        codes.contains(&FindingCode::Unreachable) && codes.contains(&FindingCode::SlotInactive),
        "{codes:?}"
    );
    let f = v
        .findings
        .iter()
        .find(|f| f.code == FindingCode::SlotInactive)
        .unwrap();
    assert!(f.fix.contains("pg_ctl start"), "{}", f.fix);
}

#[test]
fn two_writable_nodes_are_split_brain() {
    let p = primary(vec![sender("r1", "streaming", "0/5000000")], vec![]);
    let mut r2 = primary(vec![], vec![]);
    r2.current_lsn = lsn("0/5000100");
    let v = assess_probes(
        vec![ok(p), ok(replica("0/5000000")), ok(r2)],
        &Thresholds::default(),
        0.1,
    );
    assert_eq!(v.severity, Severity::Critical);
    let f = v
        .findings
        .iter()
        .find(|f| f.code == FindingCode::SplitBrain)
        .expect("split brain");
    assert!(
        f.message.contains("p, r2") && f.fix.contains("pg_ctl stop"),
        "{f:?}"
    );
    assert_eq!(v.primary, None);
}

#[test]
fn no_primary_names_the_first_of_the_most_advanced_replicas() {
    let v = assess_probes(
        vec![
            Probe {
                state: Err("down".into()),
                monitor_refused: None,
            },
            ok(replica("0/6000000")),
            ok(replica("0/6000000")),
        ],
        &Thresholds::default(),
        0.1,
    );
    let f = v
        .findings
        .iter()
        .find(|f| f.code == FindingCode::NoPrimary)
        .unwrap();
    assert!(f.fix.contains("promote r1"), "{}", f.fix);
    assert!(
        !v.findings
            .iter()
            .any(|f| f.code == FindingCode::NotStreaming),
        "{:?}",
        v.findings
    );
}

#[test]
fn no_primary_names_the_most_advanced_replica() {
    let v = assess_probes(
        vec![
            Probe {
                state: Err("down".into()),
                monitor_refused: None,
            },
            ok(replica("0/5000000")),
            ok(replica("0/6000000")),
        ],
        &Thresholds::default(),
        0.1,
    );
    let f = v
        .findings
        .iter()
        .find(|f| f.code == FindingCode::NoPrimary)
        .unwrap();
    assert_eq!(f.severity, Severity::Critical);
    assert!(
        f.fix.contains("r2") && f.fix.contains("0/6000000"),
        "{}",
        f.fix
    );
}

#[test]
fn lag_thresholds_wrong_upstream_and_stale_inventory() {
    let t = Thresholds {
        lag_warning_bytes: 1000,
        lag_critical_bytes: 1 << 20,
        ..Thresholds::default()
    };
    // r1 became primary; p and r2 follow r1 (2000 bytes behind); the inventory says r2 follows p.
    let r1 = primary(
        vec![
            sender("p", "streaming", "0/4FFF830"),
            sender("r2", "streaming", "0/4FFF830"),
        ],
        vec![],
    );
    let p = replica("0/4FFF830");
    let v = assess_probes(vec![ok(p), ok(r1), ok(replica("0/4FFF830"))], &t, 0.1);
    let codes: Vec<_> = v.findings.iter().map(|f| (f.code, f.severity)).collect();
    assert!(
        codes.contains(&(FindingCode::InventoryPrimaryStale, Severity::Warning)),
        "{codes:?}"
    );
    assert!(
        codes.contains(&(FindingCode::Lag, Severity::Warning)),
        "{codes:?}"
    );
    assert!(
        codes.contains(&(FindingCode::WrongUpstream, Severity::Warning)),
        "{codes:?}"
    );
}

#[test]
fn foreign_cluster_and_lost_slot_are_critical() {
    let mut s = slot("r1", false, 1 << 30);
    s.wal_status = Some("lost".into());
    let p = primary(vec![], vec![s]);
    let mut r2 = replica("0/1");
    r2.system_identifier = "8".into();
    let v = assess_probes(
        vec![ok(p), ok(replica("0/1")), ok(r2)],
        &Thresholds::default(),
        0.1,
    );
    let codes: Vec<_> = v
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Critical)
        .map(|f| f.code)
        .collect();
    assert!(
        codes.contains(&FindingCode::SlotLost)
            && codes.contains(&FindingCode::ForeignSystemIdentifier),
        "{codes:?}"
    );
}

#[test]
fn finding_codes_serialize_as_their_stable_strings_and_match_the_schema() {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../../schemas/status.schema.json")).unwrap();
    let in_schema: Vec<&str> = schema["$defs"]["FindingCode"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["const"].as_str().unwrap())
        .collect();
    let ours: Vec<&str> = FindingCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(in_schema, ours);
    for c in FindingCode::ALL {
        assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        assert_eq!(c.to_string(), c.as_str());
    }
}

/// One test per rule that makes it fire, and where meaningful one where it must not.
mod rules {
    use super::super::rules;
    use super::super::*;
    use crate::inventory::Inventory;
    use crate::pg::state::Sender;
    use crate::topology::fixtures::*;
    use crate::topology::{Probe, Topology};

    /// p serves r1 and r2, everyone caught up.
    fn healthy() -> Vec<Probe> {
        vec![
            up(primary("0/5000000", &["r1", "r2"])),
            up(standby("0/5000000")),
            up(standby("0/5000000")),
        ]
    }

    /// The one finding of `f`, checked for its code, severity and host.
    fn one(f: Vec<Finding>, code: FindingCode, sev: Severity, host: Option<&str>) -> Finding {
        assert_eq!(f.len(), 1, "{f:?}");
        let f = f.into_iter().next().unwrap();
        assert_eq!((f.code, f.severity, f.host.as_deref()), (code, sev, host));
        f
    }

    fn with<T>(probes: Vec<Probe>, rule: impl FnOnce(&Topology) -> T) -> T {
        let inv = inventory();
        rule(&Topology::discover(&inv, probes))
    }

    #[test]
    fn every_rule_is_quiet_on_a_healthy_cluster() {
        with(healthy(), |t| {
            assert!(rules::all(t, &Thresholds::default()).is_empty());
            assert!(rules::unreachable(t).is_empty());
            assert!(rules::no_primary(t).is_none());
            assert!(rules::split_brain(t).is_none());
            assert!(rules::inventory_primary_stale(t).is_none());
            assert!(rules::foreign_system_identifier(t).is_empty());
            assert!(rules::not_streaming(t).is_empty());
            assert!(rules::wrong_upstream(t).is_empty());
            assert!(rules::replay_paused(t).is_empty());
            assert!(rules::lag(t, &Thresholds::default()).is_empty());
            assert!(rules::slots(t).is_empty());
            assert!(rules::pending_restart(t).is_empty());
        });
    }

    #[test]
    fn unreachable_names_the_host_and_its_pg_ctl_status() {
        let inv = inventory();
        let r2 = &inv.hosts[2];
        let mut probes = healthy();
        probes[2] = down("connection refused");
        let f = with(probes, rules::unreachable);
        let f = one(f, FindingCode::Unreachable, Severity::Warning, Some("r2"));
        assert_eq!(f.message, "r2 is unreachable: connection refused");
        assert_eq!(
            f.fix,
            format!(
                "check the host and its server: ssh postgres@10.0.0.3 '{}/pg_ctl status -D {}'",
                r2.bin_dir, r2.data_dir
            )
        );
    }

    #[test]
    fn no_primary_without_any_standby_says_start_the_primary() {
        let probes = vec![down("gone"), down("gone"), down("gone")];
        let f = with(probes, rules::no_primary).expect("fires");
        assert_eq!(
            (f.code, f.severity, f.host),
            (FindingCode::NoPrimary, Severity::Critical, None)
        );
        assert_eq!(f.message, "no reachable node accepts writes");
        assert_eq!(f.fix, "start the primary's server");
    }

    #[test]
    fn no_primary_promotes_the_most_advanced_standby() {
        let mut r1 = standby("0/5000000");
        r1.receive_lsn = None;
        r1.replay_lsn = None;
        let probes = vec![down("gone"), up(r1), down("gone")];
        let f = with(probes, rules::no_primary).expect("fires");
        assert_eq!(
            f.fix,
            "start the primary if it can come back; otherwise promote the most advanced replica, r1 (WAL up to unknown): pgrepl -i i.yml promote r1"
        );
    }

    #[test]
    fn no_primary_is_quiet_in_a_split_brain() {
        let probes = vec![
            up(primary("0/5000000", &[])),
            up(primary("0/5000000", &[])),
            up(standby("0/5000000")),
        ];
        assert!(with(probes, rules::no_primary).is_none());
    }

    #[test]
    fn split_brain_keeps_the_inventory_primary_and_stops_the_others() {
        let inv = inventory();
        let (r1, r2) = (&inv.hosts[1], &inv.hosts[2]);
        let probes = vec![
            up(primary("0/5000000", &[])),
            up(primary("0/5000000", &[])),
            up(primary("0/5000000", &[])),
        ];
        let f = with(probes, rules::split_brain).expect("fires");
        assert_eq!(
            (f.code, f.severity, f.host),
            (FindingCode::SplitBrain, Severity::Critical, None)
        );
        assert_eq!(f.message, "3 nodes accept writes: p, r1, r2 (split-brain)");
        assert_eq!(
            f.fix,
            format!(
                "keep p (timeline 1, WAL up to 0/5000000: the newest); stop every other writable node, now: ssh postgres@10.0.0.2 '{}/pg_ctl stop -m fast -D {}'; ssh postgres@10.0.0.3 '{}/pg_ctl stop -m fast -D {}'; then rebuild each as a replica: pgrepl -i i.yml rebuild r1; pgrepl -i i.yml rebuild r2",
                r1.bin_dir, r1.data_dir, r2.bin_dir, r2.data_dir
            )
        );
    }

    #[test]
    fn split_brain_keeps_the_newer_primary_whatever_the_inventory_says() {
        // The inventory's primary p is still writable on timeline 1; r1 was promoted (timeline
        // 2) and took writes since: keep r1, stop and rebuild p.
        let mut newer = primary("0/6000000", &[]);
        newer.timeline = Some(2);
        newer.timeline_history = Some("1\t0/5800000\tno recovery target specified\n".into());
        let probes = vec![
            up(primary("0/7000000", &[])),
            up(newer),
            up(standby("0/5000000")),
        ];
        let f = with(probes, rules::split_brain).expect("fires");
        assert!(
            f.message.ends_with(
                "; p wrote 25165824 bytes after the fork at 0/5800000 (a rebuild of it discards them)"
            ),
            "{}",
            f.message
        );
        assert!(
            f.fix
                .starts_with("keep r1 (timeline 2, WAL up to 0/6000000"),
            "{}",
            f.fix
        );
        assert!(
            f.fix
                .ends_with("rebuild each as a replica: pgrepl -i i.yml rebuild p"),
            "{}",
            f.fix
        );
    }

    #[test]
    fn split_brain_rebuilds_the_standbys_of_the_node_it_stops() {
        // r2 still streams from p, the old primary that kept taking writes: it replayed them.
        let mut newer = primary("0/6000000", &[]);
        newer.timeline = Some(2);
        let probes = vec![
            up(primary("0/7000000", &["r2"])),
            up(newer),
            up(standby("0/7000000")),
        ];
        let f = with(probes, rules::split_brain).expect("fires");
        assert!(
            f.fix.ends_with(
                "rebuild each as a replica: pgrepl -i i.yml rebuild p; and the standbys that replayed their writes: pgrepl -i i.yml rebuild r2"
            ),
            "{}",
            f.fix
        );
    }

    #[test]
    fn split_brain_without_the_inventory_primary_keeps_the_first_writable() {
        let probes = vec![
            down("gone"),
            up(primary("0/5000000", &[])),
            up(primary("0/5000000", &[])),
        ];
        let f = with(probes, rules::split_brain).expect("fires");
        assert!(
            f.fix
                .ends_with("then rebuild each as a replica: pgrepl -i i.yml rebuild r2"),
            "{}",
            f.fix
        );
    }

    /// p is down; r1 was promoted and serves r2.
    fn failed_over() -> Vec<Probe> {
        vec![
            down("gone"),
            up(primary("0/5000000", &["r2"])),
            up(standby("0/5000000")),
        ]
    }

    #[test]
    fn inventory_primary_stale_asks_for_the_role_edit() {
        let f = with(failed_over(), rules::inventory_primary_stale);
        let f = one(
            f.into_iter().collect(),
            FindingCode::InventoryPrimaryStale,
            Severity::Warning,
            Some("r1"),
        );
        assert_eq!(f.message, "the live primary is r1, the inventory says p");
        assert_eq!(f.fix, "edit i.yml: role: primary on r1, role: replica on p");
    }

    #[test]
    fn inventory_primary_stale_is_quiet_in_a_split_brain() {
        let mut probes = failed_over();
        probes[2] = up(primary("0/5000000", &[]));
        assert!(with(probes, rules::inventory_primary_stale).is_none());
    }

    #[test]
    fn foreign_system_identifier_asks_for_a_clone() {
        let mut r2 = standby("0/5000000");
        r2.system_identifier = "8".into();
        let mut probes = healthy();
        probes[2] = up(r2);
        let f = with(probes, rules::foreign_system_identifier);
        let f = one(
            f,
            FindingCode::ForeignSystemIdentifier,
            Severity::Critical,
            Some("r2"),
        );
        assert_eq!(
            f.message,
            "r2 has system identifier 8, the primary has 7: it is not a copy of this cluster"
        );
        assert_eq!(
            f.fix,
            "re-clone it as a copy of this cluster: pgrepl -i i.yml rebuild r2 --method clone"
        );
    }

    #[test]
    fn foreign_system_identifier_in_a_split_brain_compares_with_the_kept_primary() {
        let mut r2 = primary("0/5000000", &[]);
        r2.system_identifier = "8".into();
        let mut probes = healthy();
        probes[2] = up(r2);
        let f = with(probes, rules::foreign_system_identifier);
        one(
            f,
            FindingCode::ForeignSystemIdentifier,
            Severity::Critical,
            Some("r2"),
        );
    }

    #[test]
    fn foreign_system_identifier_needs_a_primary() {
        let mut r2 = standby("0/5000000");
        r2.system_identifier = "8".into();
        let probes = vec![down("gone"), up(standby("0/5000000")), up(r2)];
        assert!(with(probes, rules::foreign_system_identifier).is_empty());
    }

    #[test]
    fn not_streaming_says_why() {
        let inv = inventory();
        let r2 = &inv.hosts[2];
        // Not served at all, its receiver still says streaming.
        let mut probes = healthy();
        probes[0] = up(primary("0/5000000", &["r1"]));
        let f = with(probes, rules::not_streaming);
        let f = one(f, FindingCode::NotStreaming, Severity::Warning, Some("r2"));
        assert_eq!(
            f.message,
            "r2 is a standby but not streaming: its WAL receiver is streaming but no host serves it"
        );
        assert_eq!(
            f.fix,
            format!(
                "read its server log (ssh postgres@10.0.0.3 'tail -n 50 {}'); if it cannot catch up, rebuild it: pgrepl -i i.yml rebuild r2",
                r2.log_file
            )
        );
        // Served, but catching up.
        let mut p = primary("0/5000000", &["r1", "r2"]);
        p.senders[1].state = "catchup".into();
        let mut probes = healthy();
        probes[0] = up(p);
        let f = with(probes, rules::not_streaming);
        assert!(
            f[0].message
                .ends_with(": its WAL sender on p is in state catchup"),
            "{f:?}"
        );
        // No receiver at all.
        let mut r2 = standby("0/5000000");
        r2.receiver = None;
        let probes = vec![
            up(primary("0/5000000", &["r1"])),
            up(standby("0/5000000")),
            up(r2),
        ];
        let f = with(probes, rules::not_streaming);
        assert!(f[0].message.ends_with(": it has no WAL receiver"), "{f:?}");
    }

    #[test]
    fn not_streaming_is_quiet_without_a_primary() {
        let probes = vec![
            down("gone"),
            up(standby("0/5000000")),
            up(standby("0/5000000")),
        ];
        assert!(with(probes, rules::not_streaming).is_empty());
    }

    #[test]
    fn wrong_upstream_names_the_live_upstream() {
        let f = with(failed_over(), rules::wrong_upstream);
        let f = one(f, FindingCode::WrongUpstream, Severity::Warning, Some("r2"));
        assert_eq!(f.message, "r2 streams from r1, the inventory says p");
        assert_eq!(
            f.fix,
            "set upstream: r1 for r2 in i.yml, or re-point it with pgrepl init -i i.yml"
        );
    }

    #[test]
    fn wrong_upstream_is_quiet_for_a_standby_that_does_not_stream() {
        let mut r1 = primary("0/5000000", &["r2"]);
        r1.senders[0].state = "catchup".into();
        let mut probes = failed_over();
        probes[1] = up(r1);
        with(probes, |t| {
            assert!(rules::wrong_upstream(t).is_empty());
            assert_eq!(rules::not_streaming(t).len(), 1);
        });
    }

    #[test]
    fn replay_paused_asks_to_resume() {
        let mut r1 = standby("0/5000000");
        r1.replay_paused = true;
        let mut probes = healthy();
        probes[1] = up(r1);
        let f = with(probes, rules::replay_paused);
        let f = one(f, FindingCode::ReplayPaused, Severity::Warning, Some("r1"));
        assert_eq!(f.message, "WAL replay is paused on r1");
        assert_eq!(
            f.fix,
            "resume it: ssh postgres@10.0.0.2 'psql -h /var/run/postgresql -p 5432 -d postgres -c \"SELECT pg_catalog.pg_wal_replay_resume()\"'"
        );
    }

    #[test]
    fn replay_paused_is_only_for_standbys() {
        let mut p = primary("0/5000000", &["r1", "r2"]);
        p.replay_paused = true;
        let mut probes = healthy();
        probes[0] = up(p);
        assert!(with(probes, rules::replay_paused).is_empty());
    }

    #[test]
    fn lag_grades_bytes_behind_and_replay_lag() {
        let t = Thresholds::default();
        // Exactly the warning threshold behind (16 MiB).
        let mut probes = healthy();
        probes[1] = up(standby("0/4000000"));
        let f = with(probes, |topo| rules::lag(topo, &t));
        let f = one(f, FindingCode::Lag, Severity::Warning, Some("r1"));
        assert_eq!(
            f.message,
            "r1 is 16777216 bytes behind (thresholds: 16777216/1073741824 bytes, 30/300 s)"
        );
        assert_eq!(
            f.fix,
            "check the replica's disk and network; watch it with pgrepl -i i.yml status --watch"
        );
        // Caught up, but replay_lag over the critical threshold: the worse decides.
        let mut p = primary("0/5000000", &["r1", "r2"]);
        p.senders[0].replay_lag_s = Some(301.0);
        let mut probes = healthy();
        probes[0] = up(p);
        let f = with(probes, |topo| rules::lag(topo, &t));
        let f = one(f, FindingCode::Lag, Severity::Critical, Some("r1"));
        assert_eq!(
            f.message,
            "r1 is 0 bytes behind, replay lag 301.0 s (thresholds: 16777216/1073741824 bytes, 30/300 s)"
        );
    }

    #[test]
    fn lag_is_quiet_below_the_thresholds() {
        let mut probes = healthy();
        probes[1] = up(standby("0/4000001"));
        assert!(with(probes, |t| rules::lag(t, &Thresholds::default())).is_empty());
    }

    /// p's slot `name` (made by the fixture for each follower, or added), with `edit` applied.
    fn slot_on_p(
        followers: &[&str],
        name: &str,
        edit: impl FnOnce(&mut crate::pg::state::Slot),
    ) -> Vec<Probe> {
        let mut p = primary("0/5000000", followers);
        if !p.slots.iter().any(|s| s.name == name) {
            let mut s = primary("0/5000000", &[name]).slots.remove(0);
            s.active = false;
            p.slots.push(s);
        }
        edit(p.slots.iter_mut().find(|s| s.name == name).unwrap());
        let mut probes = healthy();
        probes[0] = up(p);
        probes
    }

    /// The findings of `rule` for every slot of p.
    fn on_p(
        probes: Vec<Probe>,
        rule: fn(&Topology, &crate::topology::Node, &crate::pg::state::Slot) -> Option<Finding>,
    ) -> Vec<Finding> {
        with(probes, |t| {
            let p = t.find("p").unwrap();
            p.live()
                .unwrap()
                .slots
                .iter()
                .filter_map(|s| rule(t, p, s))
                .collect()
        })
    }

    #[test]
    fn slot_lost_reclones_its_replica_or_drops_an_orphan() {
        let probes = slot_on_p(&["r1", "r2"], "r1", |s| s.wal_status = Some("lost".into()));
        let f = one(
            on_p(probes, rules::slot_lost),
            FindingCode::SlotLost,
            Severity::Critical,
            Some("p"),
        );
        assert_eq!(f.message, "slot r1 on p has lost WAL its replica needs");
        assert_eq!(
            f.fix,
            "re-clone r1: pgrepl -i i.yml rebuild r1 --method clone"
        );
        let probes = slot_on_p(&["r1", "r2"], "orphan", |s| {
            s.wal_status = Some("lost".into())
        });
        let f = one(
            on_p(probes, rules::slot_lost),
            FindingCode::SlotLost,
            Severity::Critical,
            Some("p"),
        );
        assert_eq!(
            f.fix,
            "drop it if unused: pgrepl -i i.yml slot drop p orphan"
        );
    }

    #[test]
    fn slot_lost_is_worded_by_its_invalidation_reason() {
        // PostgreSQL 17 says why; wal_removed is the classic loss: re-clone.
        let probes = slot_on_p(&["r1", "r2"], "r1", |s| {
            s.wal_status = Some("lost".into());
            s.invalidation_reason = Some("wal_removed".into());
        });
        let f = one(
            on_p(probes, rules::slot_lost),
            FindingCode::SlotLost,
            Severity::Critical,
            Some("p"),
        );
        assert_eq!(f.message, "slot r1 on p has lost WAL its replica needs");
        assert_eq!(
            f.fix,
            "re-clone r1: pgrepl -i i.yml rebuild r1 --method clone"
        );
        // 18's idle_replication_slot_timeout: the WAL may still be there; a plain rebuild (or
        // init) re-creates the slot, no clone.
        let probes = slot_on_p(&["r1", "r2"], "r1", |s| {
            s.wal_status = Some("lost".into());
            s.invalidation_reason = Some("idle_timeout".into());
        });
        let f = one(
            on_p(probes, rules::slot_lost),
            FindingCode::SlotLost,
            Severity::Critical,
            Some("p"),
        );
        assert_eq!(
            f.message,
            "slot r1 on p was invalidated after sitting idle longer than idle_replication_slot_timeout (its WAL may still be there)"
        );
        assert_eq!(
            f.fix,
            "re-create the slot and stream again: pgrepl -i i.yml rebuild r1 (or pgrepl init -i i.yml); set idle_replication_slot_timeout to 0"
        );
        assert!(!f.fix.contains("--method clone"));
        let probes = slot_on_p(&["r1", "r2"], "r1", |s| {
            s.wal_status = Some("lost".into());
            s.invalidation_reason = Some("rows_removed".into());
        });
        let f = one(
            on_p(probes, rules::slot_lost),
            FindingCode::SlotLost,
            Severity::Critical,
            Some("p"),
        );
        assert_eq!(f.message, "slot r1 on p was invalidated (rows_removed)");
        assert_eq!(f.fix, "re-create the slot: pgrepl -i i.yml rebuild r1");
    }

    #[test]
    fn slot_lost_is_quiet_while_the_wal_is_there() {
        let probes = slot_on_p(&["r1", "r2"], "r1", |s| {
            s.wal_status = Some("unreserved".into())
        });
        assert!(on_p(probes, rules::slot_lost).is_empty());
    }

    #[test]
    fn slot_inactive_brings_its_replica_back() {
        let inv = inventory();
        let r2 = &inv.hosts[2];
        let mut probes = slot_on_p(&["r1", "r2"], "r2", |s| {
            s.active = false;
            s.retained_bytes = Some(1 << 20);
        });
        probes[2] = down("gone");
        let f = one(
            on_p(probes, rules::slot_inactive),
            FindingCode::SlotInactive,
            Severity::Warning,
            Some("p"),
        );
        assert_eq!(
            f.message,
            "slot r2 on p is inactive and retains 1048576 bytes of WAL (wal_status reserved)"
        );
        assert_eq!(
            f.fix,
            format!(
                "bring r2 back (ssh postgres@10.0.0.3 '{}/pg_ctl start -D {} -l {}'), or drop the slot if it is gone for good",
                r2.bin_dir, r2.data_dir, r2.log_file
            )
        );
    }

    #[test]
    fn slot_inactive_is_critical_when_unreserved_and_drops_a_stale_slot() {
        // r2 streams from r1 now; p still keeps r2's slot, and its WAL is about to go.
        let mut r1 = standby("0/5000000");
        r1.senders.push(Sender {
            application_name: "r2".into(),
            state: "streaming".into(),
            ..Default::default()
        });
        let mut probes = slot_on_p(&["r1"], "r2", |s| {
            s.wal_status = Some("unreserved".into());
            s.retained_bytes = Some(1);
        });
        probes[1] = up(r1);
        let f = one(
            on_p(probes, rules::slot_inactive),
            FindingCode::SlotInactive,
            Severity::Critical,
            Some("p"),
        );
        assert_eq!(
            f.fix,
            "r2 now streams from another host: drop this stale slot: pgrepl -i i.yml slot drop p r2"
        );
    }

    #[test]
    fn slot_inactive_is_quiet_for_active_empty_or_lost_slots() {
        let quiet = |edit: fn(&mut crate::pg::state::Slot)| {
            on_p(slot_on_p(&["r1"], "r2", edit), rules::slot_inactive).is_empty()
        };
        assert!(quiet(|s| s.retained_bytes = Some(0)));
        assert!(quiet(|s| s.retained_bytes = None));
        assert!(quiet(|s| {
            s.active = true;
            s.retained_bytes = Some(1 << 20);
        }));
        assert!(quiet(|s| {
            s.wal_status = Some("lost".into());
            s.retained_bytes = Some(1 << 20);
        }));
    }

    #[test]
    fn pending_restart_lists_the_settings() {
        let inv = inventory();
        let r1h = &inv.hosts[1];
        let mut r1 = standby("0/5000000");
        r1.pending_restart = vec!["shared_buffers".into(), "max_connections".into()];
        let mut probes = healthy();
        probes[1] = up(r1);
        let f = with(probes, rules::pending_restart);
        let f = one(
            f,
            FindingCode::PendingRestart,
            Severity::Warning,
            Some("r1"),
        );
        assert_eq!(
            f.message,
            "r1 has settings waiting for a restart: shared_buffers, max_connections"
        );
        assert_eq!(
            f.fix,
            format!(
                "restart it when convenient: ssh postgres@10.0.0.2 '{}/pg_ctl restart -m fast -D {} -l {}'",
                r1h.bin_dir, r1h.data_dir, r1h.log_file
            )
        );
    }

    #[test]
    fn auto_conf_override_names_the_settings_and_their_lines() {
        let mut p = primary("0/5000000", &["r1", "r2"]);
        p.auto_conf = vec![
            ("work_mem".into(), 3),
            ("primary_slot_name".into(), 4),
            ("recovery_target_time".into(), 5),
        ];
        let mut probes = healthy();
        probes[0] = up(p);
        let f = with(probes, rules::auto_conf_override);
        let f = one(
            f,
            FindingCode::AutoConfOverride,
            Severity::Warning,
            Some("p"),
        );
        assert_eq!(
            f.message,
            "p's postgresql.auto.conf sets primary_slot_name (line 4), recovery_target_time (line 5): it overrides pgrepl's postgresql.conf, and a standby must not inherit it"
        );
        assert!(
            f.fix.contains("-c \"ALTER SYSTEM RESET primary_slot_name\" -c \"ALTER SYSTEM RESET recovery_target_time\" -c \"SELECT pg_catalog.pg_reload_conf()\""),
            "{}",
            f.fix
        );
        let mut p = primary("0/5000000", &["r1", "r2"]);
        p.auto_conf = vec![("work_mem".into(), 3)];
        let mut probes = healthy();
        probes[0] = up(p);
        assert!(with(probes, rules::auto_conf_override).is_empty());
    }

    #[test]
    fn monitor_login_missing_names_the_host_the_server_words_and_init() {
        let mut probes = healthy();
        probes[1].monitor_refused = Some("FATAL: role \"pgrepl_monitor\" does not exist".into());
        let f = one(
            with(probes, super::super::login_rules::monitor_login_missing),
            FindingCode::MonitorLoginMissing,
            Severity::Warning,
            Some("r1"),
        );
        assert_eq!(
            f.message,
            "r1 refused the monitor role pgrepl_monitor (FATAL: role \"pgrepl_monitor\" does not exist): status read it as the superuser"
        );
        assert!(f.fix.ends_with("pgrepl init -i i.yml"), "{}", f.fix);
        assert!(with(healthy(), super::super::login_rules::monitor_login_missing).is_empty());
        // A host read as the superuser is otherwise reported in full: only this warning.
        let mut probes = healthy();
        probes[0].monitor_refused = Some("FATAL: Peer authentication failed".into());
        let v = assess(
            &Topology::discover(&inventory(), probes),
            &Thresholds::default(),
            0.1,
        );
        let codes: Vec<_> = v.findings.iter().map(|f| f.code).collect();
        assert_eq!(codes, [FindingCode::MonitorLoginMissing]);
        assert_eq!(v.severity, Severity::Warning);
    }

    #[test]
    fn findings_sort_worst_first_then_by_host_then_slot_by_slot() {
        // p: r1's slot inactive and unreserved, then an orphan slot lost (both critical on p);
        // r1 is down; r2 has a pending restart.
        let mut p = primary("0/5000000", &["r2"]);
        let mut s = primary("0/5000000", &["r1"]).slots.remove(0);
        s.active = false;
        s.wal_status = Some("unreserved".into());
        s.retained_bytes = Some(1);
        p.slots.push(s);
        let mut s = primary("0/5000000", &["orphan"]).slots.remove(0);
        s.wal_status = Some("lost".into());
        p.slots.push(s);
        let mut r2 = standby("0/5000000");
        r2.pending_restart = vec!["shared_buffers".into()];
        let inv = inventory();
        let v = assess(
            &Topology::discover(&inv, vec![up(p), down("gone"), up(r2)]),
            &Thresholds::default(),
            0.0,
        );
        let seen: Vec<_> = v
            .findings
            .iter()
            .map(|f| (f.severity, f.code, f.host.as_deref()))
            .collect();
        assert_eq!(
            seen,
            [
                (Severity::Critical, FindingCode::SlotInactive, Some("p")),
                (Severity::Critical, FindingCode::SlotLost, Some("p")),
                (Severity::Warning, FindingCode::Unreachable, Some("r1")),
                (Severity::Warning, FindingCode::PendingRestart, Some("r2")),
            ]
        );
        assert_eq!(v.severity, Severity::Critical);
    }

    #[test]
    fn fixes_run_as_the_os_user_with_the_local_transport() {
        let inv: Inventory = crate::inventory::parse(
            "cluster: c\npostgres: {version: 15, os_user: postgres, data_dir: \"/var/tmp/c/{host}\"}\nreplication: {password_env: X}\naccess: {transport: local}\nhosts:\n  - {name: p, address: 127.0.0.1, port: 5432, role: primary}\n  - {name: r1, address: 127.0.0.1, port: 5433, role: replica}\n",
            std::path::Path::new("/etc/pgrepl/c.yml"),
        )
        .unwrap();
        let r1 = &inv.hosts[1];
        // As root: runuser, which every Linux has (sudo may not be installed).
        assert_eq!(
            fixes::Fixes::as_user(&inv, Some("root")).tail_log(r1),
            format!("runuser -u postgres -- tail -n 50 {}", r1.log_file)
        );
        // As the OS user: no switch.
        assert_eq!(
            fixes::Fixes::as_user(&inv, Some("postgres")).tail_log(r1),
            format!("tail -n 50 {}", r1.log_file)
        );
        let fix = fixes::Fixes::as_user(&inv, Some("dba"));
        assert_eq!(
            fix.resume_replay(r1),
            "sudo -u postgres psql -h /var/run/postgresql -p 5433 -d postgres -c \"SELECT pg_catalog.pg_wal_replay_resume()\""
        );
        assert_eq!(
            fix.tail_log(r1),
            format!("sudo -u postgres tail -n 50 {}", r1.log_file)
        );
        assert_eq!(
            fix.rebuild_clone(r1),
            "pgrepl -i /etc/pgrepl/c.yml rebuild r1 --method clone"
        );
        assert_eq!(fix.promote(r1), "pgrepl -i /etc/pgrepl/c.yml promote r1");
        assert_eq!(fix.init(), "pgrepl init -i /etc/pgrepl/c.yml");
    }
}
