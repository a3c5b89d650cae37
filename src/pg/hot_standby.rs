//! The settings a standby must keep at or above its primary's: `max_connections`,
//! `max_worker_processes`, `max_wal_senders`, `max_prepared_transactions`,
//! `max_locks_per_transaction`. The primary WAL-logs its values (XLOG_PARAMETER_CHANGE) when
//! it starts with new ones; a standby records the last values it replayed in its control file
//! (`pg_controldata`: "max_connections setting", …) and refuses to start or go on replaying with
//! a lower value of its own. So raising goes standbys first, lowering primary first and each
//! standby only once its control file shows the lower values. Pure: parsing and comparing.

use std::collections::BTreeMap;

/// (setting, its `pg_controldata` label, PostgreSQL's default).
pub const PARAMS: [(&str, &str, u64); 5] = [
    ("max_connections", "max_connections setting", 100),
    ("max_worker_processes", "max_worker_processes setting", 8),
    ("max_wal_senders", "max_wal_senders setting", 10),
    ("max_prepared_transactions", "max_prepared_xacts setting", 0),
    (
        "max_locks_per_transaction",
        "max_locks_per_xact setting",
        64,
    ),
];

/// The five values by setting name.
pub type Values = BTreeMap<&'static str, u64>;

/// The five values recorded in `pg_controldata` output (C locale); missing lines are left out.
pub fn from_controldata(out: &str) -> Values {
    let mut v = Values::new();
    for line in out.lines() {
        let Some((k, val)) = line.split_once(':') else {
            continue;
        };
        if let Some((name, _, _)) = PARAMS.iter().find(|(_, label, _)| *label == k.trim()) {
            if let Ok(n) = val.trim().parse() {
                v.insert(name, n);
            }
        }
    }
    v
}

/// The five values a server gets from a postgresql.conf text (PostgreSQL's default when the
/// file does not set one).
pub fn from_conf(conf: &str) -> Values {
    let set = super::parse_conf(conf);
    PARAMS
        .iter()
        .map(|(name, _, default)| {
            let v = set
                .get(*name)
                .map(|s| s.trim_matches('\''))
                .and_then(|s| s.parse().ok())
                .unwrap_or(*default);
            (*name, v)
        })
        .collect()
}

/// The settings `wanted` sets below what `recorded` (a standby's control file) holds:
/// (name, wanted, recorded). Empty when the standby can start with `wanted`.
pub fn too_low(wanted: &Values, recorded: &Values) -> Vec<(&'static str, u64, u64)> {
    PARAMS
        .iter()
        .filter_map(|(name, _, _)| {
            let (w, r) = (*wanted.get(name)?, *recorded.get(name)?);
            (w < r).then_some((*name, w, r))
        })
        .collect()
}

/// "max_connections 100 < 200, …": what [`too_low`] found, for messages.
pub fn describe(low: &[(&str, u64, u64)]) -> String {
    low.iter()
        .map(|(n, w, r)| format!("{n} {w} < {r}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTROL: &str = "wal_level setting:                    replica
wal_log_hints setting:                on
max_connections setting:              200
max_worker_processes setting:         8
max_wal_senders setting:              10
max_prepared_xacts setting:           0
max_locks_per_xact setting:           64
";

    #[test]
    fn lowering_below_the_recorded_values_is_seen() {
        let recorded = from_controldata(CONTROL);
        assert_eq!(recorded.len(), 5);
        assert_eq!(recorded["max_connections"], 200);
        let conf = "# x\nmax_wal_senders = '12'\nshared_buffers = '16MB'\n";
        let wanted = from_conf(conf);
        assert_eq!(wanted["max_connections"], 100);
        assert_eq!(wanted["max_wal_senders"], 12);
        assert_eq!(too_low(&wanted, &recorded), [("max_connections", 100, 200)]);
        assert_eq!(
            describe(&too_low(&wanted, &recorded)),
            "max_connections 100 < 200"
        );
        let raised = from_conf("max_connections = '300'\nmax_wal_senders = '12'\n");
        assert!(too_low(&raised, &recorded).is_empty());
        assert!(too_low(&raised, &Values::new()).is_empty());
    }
}
