//! The rule of `status` about how it read the hosts: through the monitor role, as it should,
//! or as the superuser because the server refused the monitor login. Pure, like `rules`.

use crate::topology::Topology;

use super::fixes::Fixes;
use super::rules::finding;
use super::{Finding, FindingCode, Severity};

/// `monitor_login_missing` (warning), one per host whose server refused the monitor role's
/// login (`Context::monitor_db`): the role or its pg_ident.conf mapping is missing (a cluster
/// built before pgrepl had it, or a role dropped by hand), so status read that host as the
/// superuser. Fix: `pgrepl init`, which creates the role and installs the mapping.
pub fn monitor_login_missing(topo: &Topology) -> Vec<Finding> {
    let fix = Fixes::new(topo.inv);
    topo.nodes
        .iter()
        .filter_map(|n| {
            let why = n.monitor_refused.as_deref()?;
            Some(finding(
                Severity::Warning,
                FindingCode::MonitorLoginMissing,
                Some(n.host),
                format!(
                    "{} refused the monitor role {} ({why}): status read it as the superuser",
                    n.name(),
                    topo.inv.monitor_user
                ),
                format!(
                    "create the role and its pg_ident.conf mapping: {}",
                    fix.init()
                ),
            ))
        })
        .collect()
}
