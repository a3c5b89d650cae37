//! Replication modes beyond asynchronous streaming, as resolved values: synchronous
//! replication (`replication.synchronous`), WAL archiving (`archive:`), and the settings that
//! differ by role and by host (`postgres.primary_settings`, `postgres.replica_settings`,
//! `hosts[].settings`, `hosts[].apply_delay`). Also the questions asked of them (a host's
//! effective settings, its `synchronous_standby_names`). No I/O.

use std::collections::BTreeMap;

use super::model::{Host, Inventory, Role};

/// How a synchronous rule counts its standbys (`replication.synchronous.method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncMethod {
    /// `ANY n (…)`: quorum; a commit waits for any n of the standbys.
    Any,
    /// `FIRST n (…)`: priority; a commit waits for the first n streaming standbys in list order.
    First,
}

/// `replication.synchronous`, defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SyncRule {
    /// any or first.
    pub method: SyncMethod,
    /// n: how many standbys confirm each commit (at least 1).
    pub count: u32,
    /// The candidate hosts, in priority order (default: every host, in inventory order). On
    /// each host the rule names the candidates but the host itself.
    pub standbys: Vec<String>,
    /// `synchronous_commit`: `on` (flushed on the standbys), `remote_write` or `remote_apply`.
    pub commit: String,
}

/// `archive:`, defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Archive {
    /// `archive_mode`: `on` (the primary archives) or `always` (standbys archive what they
    /// receive too).
    pub mode: String,
    /// `archive_command` (`%p`, `%f` as PostgreSQL defines them).
    pub command: String,
    /// `restore_command` on replicas (`%f`, `%p`, `%r`), if any.
    pub restore_command: Option<String>,
}

impl Inventory {
    /// `h`'s `postgres.settings`, then the settings of its role (`primary_settings` or
    /// `replica_settings`), then its own `settings`, later ones winning (sorted by name).
    pub fn settings_for(&self, h: &Host) -> BTreeMap<String, String> {
        let role = match h.role {
            Role::Primary => &self.primary_settings,
            Role::Replica => &self.replica_settings,
        };
        let mut out = self.settings.clone();
        out.extend(role.iter().map(|(k, v)| (k.clone(), v.clone())));
        out.extend(h.settings.iter().map(|(k, v)| (k.clone(), v.clone())));
        out
    }

    /// `synchronous_standby_names` for `h`: the rule over every candidate but `h` itself, names
    /// double-quoted (`ANY 1 ("pg2", "pg3")`); empty without a rule or without a candidate.
    /// Every host carries it, so a promoted standby enforces it from its first write.
    pub fn sync_names_for(&self, h: &Host) -> String {
        let Some(rule) = &self.synchronous else {
            return String::new();
        };
        let names: Vec<String> = rule
            .standbys
            .iter()
            .filter(|s| **s != h.name)
            .map(|s| format!("\"{s}\""))
            .collect();
        if names.is_empty() {
            return String::new();
        }
        let method = match rule.method {
            SyncMethod::Any => "ANY",
            SyncMethod::First => "FIRST",
        };
        format!("{method} {} ({})", rule.count, names.join(", "))
    }

    /// The replicas that apply WAL late on purpose (`apply_delay`): never a switchover's
    /// automatic candidate, never suggested for promotion.
    pub fn is_delayed(&self, name: &str) -> bool {
        self.host(name).is_some_and(|h| h.apply_delay.is_some())
    }
}
