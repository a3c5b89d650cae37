//! `promote`'s checks for replication modes (pure): under a synchronous rule, the candidate must
//! provably hold every acknowledged commit; a delayed replica is promoted only when asked by
//! name. Each refusal names the candidate that is safe, when there is one.

use crate::error::Problem;
use crate::topology::{Node, Topology};

/// Under `replication.synchronous`: the standbys the old primary waited for are the rule's
/// candidates but the inventory's primary (`S`, n of which flushed every acknowledged commit).
/// The target must be one of them, at least |S| − n + 1 of them must be readable (then one of
/// those has every acknowledged commit), and the target must have the most WAL among them.
pub fn sync_problem(topo: &Topology<'_>, target: &Node<'_>, inv_path: &str) -> Option<Problem> {
    let rule = topo.inv.synchronous.as_ref()?;
    let old = &topo.inv.primary().name;
    let set: Vec<&str> = rule
        .standbys
        .iter()
        .map(String::as_str)
        .filter(|s| s != old)
        .collect();
    let readable: Vec<&Node<'_>> = set
        .iter()
        .filter_map(|s| topo.find(s))
        .filter(|n| n.is_standby() && n.wal_received().is_some())
        .collect();
    let best = readable.iter().max_by_key(|n| n.wal_received()).copied();
    let need = set.len().saturating_sub(rule.count as usize) + 1;
    let rule_text = topo.inv.sync_names_for(topo.inv.primary());
    let next = |why: &str| {
        match best {
        Some(b) if readable.len() >= need && b.id != target.id => format!(
            "promote {} instead (it holds every acknowledged commit): pgrepl -i {inv_path} promote {}; or accept the loss with --allow-data-loss",
            b.name(),
            b.name()
        ),
        _ => format!("{why}; or accept the loss with --allow-data-loss"),
    }
    };
    let message = if !set.contains(&target.name()) {
        format!("{} is not one of the synchronous standbys of {old} ({rule_text}): it may lack commits {old} acknowledged", target.name())
    } else if readable.len() < need {
        format!(
            "only {} of the {} synchronous standbys of {old} ({rule_text}) can be read: at least {need} are needed to know which one has every acknowledged commit",
            readable.len(),
            set.len()
        )
    } else if best.is_some_and(|b| b.wal_received() > target.wal_received()) {
        format!(
            "{} has more WAL than {} ({} vs {}): under {rule_text} the acknowledged commits may be only there",
            best.map(|b| b.name()).unwrap_or("-"),
            target.name(),
            best.and_then(|b| b.wal_received()).map(|l| l.to_string()).unwrap_or_default(),
            target.wal_received().map(|l| l.to_string()).unwrap_or_else(|| "unknown".into())
        )
    } else {
        return None;
    };
    Some(Problem::new(
        target.name(),
        "synchronous",
        message,
        next("bring the other synchronous standbys back first"),
    ))
}

/// A delayed replica (`apply_delay`) is promoted only with `--allow-delayed`: it holds back
/// WAL it has received, and says how much.
pub fn delayed_problem(topo: &Topology<'_>, target: &Node<'_>, inv_path: &str) -> Option<Problem> {
    let delay = target.host.apply_delay?;
    let s = target.live()?;
    let held = match (s.replay_lsn, s.receive_lsn) {
        (Some(r), Some(x)) if x > r => r.bytes_until(x),
        _ => 0,
    };
    let age = s
        .last_replay_age_s
        .map(|a| format!(", its last replayed transaction is {a:.0}s old"))
        .unwrap_or_default();
    let other = topo
        .most_advanced_standby(Some(target.id))
        .filter(|n| n.host.apply_delay.is_none())
        .map(|n| {
            format!(
                "promote {} (not delayed): pgrepl -i {inv_path} promote {}; or ",
                n.name(),
                n.name()
            )
        })
        .unwrap_or_default();
    Some(Problem::new(
        target.name(),
        "delayed",
        format!(
            "{} is a delayed replica (apply_delay {delay}s): {held} bytes received are not replayed yet{age}; promoting it replays them first",
            target.name()
        ),
        format!("{other}promote it anyway with --allow-delayed"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Inventory;
    use crate::topology::fixtures::*;

    /// p, r1, r2, r3 (r3 delayed by 1h), with `sync` as replication.synchronous.
    fn inv_with(sync: &str) -> Inventory {
        crate::inventory::parse(
            &format!("cluster: c\npostgres: {{version: 15}}\nreplication: {{password_env: X{sync}}}\nhosts:\n  - {{name: p, address: 10.0.0.1, role: primary}}\n  - {{name: r1, address: 10.0.0.2, role: replica}}\n  - {{name: r2, address: 10.0.0.3, role: replica}}\n  - {{name: r3, address: 10.0.0.4, role: replica, apply_delay: 1h}}\n"),
            std::path::Path::new("i.yml"),
        )
        .unwrap()
    }

    fn sync_check(inv: &Inventory, lsns: [Option<&str>; 3], target: &str) -> Option<String> {
        let probes = [down("gone")]
            .into_iter()
            .chain(lsns.iter().map(|l| {
                l.map(|l| up(standby(l)))
                    .unwrap_or_else(|| down("no answer"))
            }))
            .collect();
        let topo = Topology::discover(inv, probes);
        sync_problem(&topo, topo.find(target).unwrap(), "i.yml")
            .map(|p| format!("{} | {}", p.message, p.hint.unwrap_or_default()))
    }

    #[test]
    fn under_any_1_the_most_advanced_synchronous_standby_is_safe() {
        let inv = inv_with(", synchronous: {method: any, count: 1}");
        assert_eq!(
            inv.synchronous.as_ref().unwrap().standbys,
            ["p", "r1", "r2"],
            "r3 is delayed: not a candidate"
        );
        assert_eq!(
            sync_check(
                &inv,
                [Some("0/6000000"), Some("0/5000000"), Some("0/9000000")],
                "r1"
            ),
            None
        );
        let m = sync_check(&inv, [Some("0/5000000"), Some("0/6000000"), None], "r1").unwrap();
        assert!(
            m.contains("r2 has more WAL than r1") && m.contains("promote r2 instead"),
            "{m}"
        );
    }

    #[test]
    fn too_few_readable_standbys_prove_nothing() {
        let inv = inv_with(", synchronous: {method: any, count: 1}");
        let m = sync_check(&inv, [Some("0/6000000"), None, None], "r1").unwrap();
        assert!(
            m.contains("only 1 of the 2 synchronous standbys of p") && m.contains("at least 2"),
            "{m}"
        );
        let inv = inv_with(", synchronous: {method: first, count: 2, standbys: [r1, r2]}");
        assert_eq!(
            sync_check(&inv, [Some("0/6000000"), None, None], "r1"),
            None,
            "FIRST 2 of 2: each has all"
        );
    }

    #[test]
    fn a_host_outside_the_rule_is_refused_and_the_safe_one_named() {
        let inv = inv_with(", synchronous: {method: first, count: 1, standbys: [r1]}");
        let m = sync_check(&inv, [Some("0/6000000"), Some("0/7000000"), None], "r2").unwrap();
        assert!(
            m.contains("r2 is not one of the synchronous standbys of p")
                && m.contains("promote r1 instead"),
            "{m}"
        );
    }

    #[test]
    fn a_delayed_replica_needs_to_be_asked_for() {
        let inv = inv_with("");
        let mut late = standby("0/5000000");
        late.receive_lsn = crate::pg::Lsn::parse("0/6000000");
        let probes = vec![
            down("gone"),
            up(standby("0/6000000")),
            up(standby("0/6000000")),
            up(late),
        ];
        let topo = Topology::discover(&inv, probes);
        let p = delayed_problem(&topo, topo.find("r3").unwrap(), "i.yml").unwrap();
        let hint = p.hint.clone().unwrap_or_default();
        assert!(
            p.message.contains("apply_delay 3600s") && p.message.contains("16777216 bytes"),
            "{}",
            p.message
        );
        assert!(
            hint.contains("promote r1 (not delayed)") && hint.contains("--allow-delayed"),
            "{hint}"
        );
        assert!(delayed_problem(&topo, topo.find("r1").unwrap(), "i.yml").is_none());
    }
}
