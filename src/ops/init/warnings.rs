//! What `check` (and `init`) warn about without refusing: settings that work against pgrepl's
//! model, methods the inventory's PostgreSQL major deprecates, and a server that refused the
//! monitor role's login (`check` read it as the superuser; `init` reads as the superuser and
//! creates the role). Pure, like the preflight: the
//! inventory and the facts gathered on every host in, the warnings out (as `Problem`s, each with
//! its host or the inventory file, and the next step).

use crate::error::Problem;
use crate::health::fixes::Fixes;
use crate::inventory::Inventory;
use crate::steps::facts::HostFacts;

/// The setting (PostgreSQL 18+) that invalidates a slot left unused longer than it says.
const IDLE_SLOT_TIMEOUT: &str = "idle_replication_slot_timeout";

/// MD5 password authentication is deprecated from PostgreSQL 18 on.
const MD5_DEPRECATED_SINCE: u32 = 18;

/// Every warning for this inventory and these facts, inventory first, then host by host.
pub fn warnings(inv: &Inventory, facts: &[HostFacts]) -> Vec<Problem> {
    let file = inv.file.display().to_string();
    let mut w = Vec::new();
    if inv.version >= MD5_DEPRECATED_SINCE {
        for r in inv.hba.iter().filter(|r| r.method == "md5") {
            w.push(Problem::new(
                &file,
                "pg_hba",
                format!(
                    "pg_hba method md5 ({} {} {}) is deprecated in PostgreSQL {}",
                    r.kind, r.database, r.user, inv.version
                ),
                format!("use method: scram-sha-256 in postgres.hba of {file} (the roles' passwords must then be SCRAM verifiers)"),
            ));
        }
    }
    let in_inventory = inv.settings.get(IDLE_SLOT_TIMEOUT);
    if let Some(v) = in_inventory.filter(|v| timeout_is_set(v)) {
        w.push(Problem::new(
            &file,
            "settings",
            format!("{IDLE_SLOT_TIMEOUT} = {v} invalidates the slot of a replica that is down longer than that; pgrepl keeps each replica's slot through its downtime"),
            format!("remove {IDLE_SLOT_TIMEOUT} from postgres.settings in {file} (or set it to 0), then run: {}", Fixes::new(inv).init()),
        ));
    }
    for f in facts {
        if let Some(why) = &f.monitor_refused {
            w.push(Problem::new(
                &f.name,
                "monitor_login_missing",
                format!(
                    "{} refused the monitor role {} ({why}): check read it as the superuser",
                    f.name, inv.monitor_user
                ),
                format!(
                    "create the role and its pg_ident.conf mapping: {}",
                    Fixes::new(inv).init()
                ),
            ));
        }
        let (Some(secs), Some(h)) = (f.idle_slot_timeout_s, inv.host(&f.name)) else {
            continue;
        };
        if secs > 0 && in_inventory.is_none() {
            w.push(Problem::new(
                &f.name,
                "settings",
                format!("the running server has {IDLE_SLOT_TIMEOUT} = {secs}s: it invalidates the slot of a replica that is down longer than that"),
                format!("reset it: {}", Fixes::new(inv).on(h, &format!("psql -h {} -p {} -d postgres -c \"ALTER SYSTEM RESET {IDLE_SLOT_TIMEOUT}\" -c \"SELECT pg_catalog.pg_reload_conf()\"", h.socket_dir, h.port))),
            ));
        }
    }
    w
}

/// A postgresql.conf duration above 0 (`0`, `0s` and `'0'` are off; `10min`, `1h`, `30` are on).
fn timeout_is_set(value: &str) -> bool {
    let v = value.trim().trim_matches('\'');
    let digits: String = v.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse::<u64>().map_or(true, |n| n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn inventory(version: u32, extra: &str) -> Inventory {
        let text = format!(
            "cluster: main\npostgres:\n  version: {version}\n{extra}replication:\n  password_env: PGREPL_TEST_PW\nhosts:\n  - {{name: pg1, address: 10.0.0.1, role: primary}}\n  - {{name: pg2, address: 10.0.0.2, role: replica}}\n"
        );
        crate::inventory::parse(&text, Path::new("i.yml")).unwrap()
    }

    fn running(name: &str, idle: Option<i64>) -> HostFacts {
        HostFacts {
            name: name.into(),
            running: true,
            idle_slot_timeout_s: idle,
            ..HostFacts::default()
        }
    }

    #[test]
    fn a_refused_monitor_login_is_a_warning_with_init_as_its_fix() {
        let mut f = running("pg2", None);
        f.monitor_refused = Some("FATAL: role \"pgrepl_monitor\" does not exist".into());
        let w = warnings(&inventory(15, ""), &[running("pg1", None), f]);
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(
            (w[0].host.as_str(), w[0].check.as_str()),
            ("pg2", "monitor_login_missing")
        );
        assert!(w[0].message.contains("does not exist"), "{}", w[0].message);
        assert_eq!(
            w[0].hint.as_deref(),
            Some("create the role and its pg_ident.conf mapping: pgrepl init -i i.yml")
        );
    }

    #[test]
    fn md5_is_a_warning_from_18_on() {
        let md5 = "  hba:\n    - {type: local, database: all, user: app, method: md5}\n";
        assert!(warnings(&inventory(17, md5), &[]).is_empty());
        let w = warnings(&inventory(18, md5), &[]);
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(
            (w[0].host.as_str(), w[0].check.as_str()),
            ("i.yml", "pg_hba")
        );
        assert_eq!(
            w[0].message,
            "pg_hba method md5 (local all app) is deprecated in PostgreSQL 18"
        );
        assert!(w[0].hint.as_deref().unwrap().contains("scram-sha-256"));
    }

    #[test]
    fn idle_slot_timeout_above_0_is_a_warning_in_the_inventory_or_on_a_server() {
        let set = |v: &str| format!("  settings:\n    idle_replication_slot_timeout: {v}\n");
        for off in ["0", "'0'", "0s"] {
            assert!(warnings(&inventory(18, &set(off)), &[]).is_empty(), "{off}");
        }
        let w = warnings(&inventory(18, &set("10min")), &[running("pg1", Some(600))]);
        assert_eq!(w.len(), 1, "the server's value is the inventory's: {w:?}");
        assert_eq!(w[0].check, "settings");
        assert!(w[0]
            .message
            .starts_with("idle_replication_slot_timeout = 10min invalidates"));
        // Set on a server (ALTER SYSTEM), not in the inventory: that host is named.
        let w = warnings(
            &inventory(18, ""),
            &[
                running("pg1", Some(0)),
                running("pg2", Some(30)),
                running("pg3", Some(9)),
            ],
        );
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(w[0].host, "pg2");
        assert!(w[0].message.contains("= 30s"), "{}", w[0].message);
        assert!(
            w[0].hint
                .as_deref()
                .unwrap()
                .contains("ALTER SYSTEM RESET idle_replication_slot_timeout"),
            "{w:?}"
        );
        assert!(warnings(&inventory(17, ""), &[running("pg1", None)]).is_empty());
    }
}
