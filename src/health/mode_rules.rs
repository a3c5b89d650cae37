//! The rules of `status` for replication modes: synchronous replication that cannot be
//! satisfied (writes wait) and WAL archiving that fails or falls behind. Pure, like `rules`.

use crate::pg::state::ARCHIVE_BACKLOG_MAX;
use crate::topology::Topology;

use super::fixes::Fixes;
use super::rules::finding;
use super::{Finding, FindingCode, Severity};

/// `sync_standbys_missing` (critical): under `replication.synchronous`, fewer of the primary's
/// synchronous standbys stream than the rule needs, so every commit on it waits.
/// Fix: bring the missing standbys back (start or rebuild them).
pub fn sync_standbys_missing(topo: &Topology) -> Option<Finding> {
    let rule = topo.inv.synchronous.as_ref()?;
    let p = topo.primary()?;
    let names = topo.inv.sync_names_for(p.host);
    let candidates: Vec<&str> = rule
        .standbys
        .iter()
        .map(String::as_str)
        .filter(|s| *s != p.name())
        .collect();
    let streaming: Vec<&str> = p
        .live()?
        .senders
        .iter()
        .filter(|s| {
            s.state == "streaming"
                && candidates
                    .iter()
                    .any(|c| c.eq_ignore_ascii_case(&s.application_name))
        })
        .map(|s| s.application_name.as_str())
        .collect();
    if streaming.len() >= rule.count as usize {
        return None;
    }
    let fix = Fixes::new(topo.inv);
    let missing: Vec<String> = candidates
        .iter()
        .filter(|c| !streaming.iter().any(|s| s.eq_ignore_ascii_case(c)))
        .filter_map(|c| topo.inv.host(c))
        .map(|h| match topo.find(&h.name) {
            Some(n) if n.reachable() => fix.rebuild(h),
            _ => fix.pg_ctl_start(h),
        })
        .collect();
    Some(finding(
        Severity::Critical,
        FindingCode::SyncStandbysMissing,
        Some(p.host),
        format!(
            "commits on {} wait: {} of the {} synchronous standbys it needs stream ({names})",
            p.name(),
            streaming.len(),
            rule.count
        ),
        format!("bring a synchronous standby back: {}", missing.join(" ; ")),
    ))
}

/// `archive_failing` (critical on the primary, warning on a standby archiving with `always`):
/// the archiver's last attempt failed; WAL piles up in `pg_wal` and a clean shutdown waits.
/// `archive_backlog` (warning): more than [`ARCHIVE_BACKLOG_MAX`] segments wait.
/// Fix: correct `archive.command` (its errors are in the server log).
pub fn archiving(topo: &Topology) -> Vec<Finding> {
    let fix = Fixes::new(topo.inv);
    let mut out = Vec::new();
    for n in &topo.nodes {
        let Some(s) = n.live() else { continue };
        let a = &s.archive;
        if a.mode == "off" || (s.in_recovery && a.mode != "always") {
            continue;
        }
        let age = a
            .last_archived_age_s
            .map(|x| format!("last segment archived {x:.0}s ago"))
            .unwrap_or_else(|| "nothing archived yet".into());
        let log = format!(
            "see {}; fix archive.command (or archive_command) and run {}",
            fix.tail_log(n.host),
            fix.init()
        );
        if a.failing {
            let sev = if s.in_recovery {
                Severity::Warning
            } else {
                Severity::Critical
            };
            let seg = a.last_failed_wal.as_deref().unwrap_or("?");
            let msg = format!(
                "{}'s WAL archiver is failing (segment {seg}); {} segments wait, {age}",
                n.name(),
                a.ready
            );
            out.push(finding(
                sev,
                FindingCode::ArchiveFailing,
                Some(n.host),
                msg,
                log,
            ));
        } else if a.ready > ARCHIVE_BACKLOG_MAX {
            let msg = format!(
                "{} segments wait to be archived on {} ({age})",
                a.ready,
                n.name()
            );
            out.push(finding(
                Severity::Warning,
                FindingCode::ArchiveBacklog,
                Some(n.host),
                msg,
                log,
            ));
        }
    }
    out
}
