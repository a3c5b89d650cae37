//! `pgrepl check`: preflight on every host at once, changing nothing: `init`'s own fact
//! gathering (`steps::facts`) and its pure preflight (`init::preflight`, no I/O), printed as a
//! table (text) or one JSON document, with every problem; exit 4 when there is one.
//!
//! `check` is `init`'s first half shown to the user, so it lives in `init`'s directory and
//! reads its pure preflight and plan types; it calls nothing of `init` that acts.

use std::collections::BTreeMap;

use crate::error::{exit, Error, Problem};
use crate::ops::documents::{CheckDocument, CheckHost};
use crate::pg::datadir::DirState;
use crate::steps::facts::{gather, HostFacts};
use crate::ui::Format;

use super::{live_primary, preflight, warnings, Context, HostPlan};

/// `pgrepl check`: exit 0 and "no problems found", or [`Error::Preflight`] (exit 4) listing
/// every problem after the table or JSON document (on stdout) is printed. Warnings
/// ([`warnings`]) are printed on stderr (and in the JSON document) and do not change the exit.
pub async fn run(ctx: &Context<'_>) -> Result<u8, Error> {
    // init reads the password first: so does its check, before anything is contacted.
    ctx.inv.replication_password()?;
    ctx.inv.role_passwords()?;
    let transports = ctx.connect_all().await;
    let facts = gather(ctx, &transports, crate::context::Login::Monitor).await;
    // As init does: once the cluster exists, the live primary is the primary.
    let live = live_primary(&ctx.inv, &facts).map(|p| ctx.inv.with_primary(p));
    let outcome = preflight(live.as_ref().unwrap_or(&ctx.inv), &facts);
    let mut problems: Vec<Problem> = outcome.as_ref().err().cloned().unwrap_or_default();
    problems.extend(crate::steps::routers::preflight::problems(ctx, &ctx.inv).await);
    problems.extend(tls_problems(ctx));
    let plan = outcome.map(|p| p.hosts).unwrap_or_default();
    let warned = warnings(&ctx.inv, &facts);
    match ctx.ui.format() {
        Format::Json => {
            let mut doc = document(&ctx.inv.cluster, &facts, &plan, &problems);
            doc.warnings = warned.clone();
            ctx.ui.json(&doc)
        }
        Format::Text | Format::Prometheus => ctx.ui.data(&table(&facts, &plan)),
    }
    for w in &warned {
        ctx.ui.warn(w.to_string());
    }
    warn_auto_conf(ctx, &facts);
    if problems.is_empty() {
        ctx.ui.info("check: no problems found");
        Ok(exit::OK)
    } else {
        Err(Error::Preflight { problems })
    }
}

/// What init relies on for TLS on this machine: the CA's files (usable, the key 0600; a
/// missing CA is noted: init creates it), or the user's files (each host's certificate signed
/// by the CA, covering its address, valid, with its own key).
fn tls_problems(ctx: &Context<'_>) -> Vec<Problem> {
    let missing = match crate::steps::tls::ca::missing(&ctx.inv) {
        Ok(m) => m,
        Err(Error::Preflight { problems }) => return problems,
        Err(e) => return vec![Problem::new("local", "tls", e.to_string(), String::new())],
    };
    if let Some(m) = missing {
        ctx.ui.info(format!("check: init will {m}"));
        return Vec::new();
    }
    match crate::steps::tls::ca::load(&ctx.inv, false) {
        Ok(_) => Vec::new(),
        Err(Error::Preflight { problems }) => problems,
        Err(e) => vec![Problem::new("local", "tls", e.to_string(), String::new())],
    }
}

/// A warning (with its fix) per host whose `postgresql.auto.conf` sets what a standby must not
/// inherit: status's `auto_conf_override`, read from the file (the server may not run).
fn warn_auto_conf(ctx: &Context<'_>, facts: &[HostFacts]) {
    let fix = crate::health::fixes::Fixes::new(&ctx.inv);
    for f in facts.iter().filter(|f| !f.auto_conf_overrides.is_empty()) {
        let Some(h) = ctx.inv.host(&f.name) else {
            continue;
        };
        let names: Vec<&str> = f
            .auto_conf_overrides
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        let lines: Vec<String> = f
            .auto_conf_overrides
            .iter()
            .map(|(n, l)| format!("{n} (line {l})"))
            .collect();
        ctx.ui.warn(format!(
            "{}: its postgresql.auto.conf sets {}: it overrides pgrepl's postgresql.conf, and a standby must not inherit it; remove it: {}",
            f.name,
            lines.join(", "),
            fix.alter_system_reset(h, &names)
        ));
    }
}

/// The JSON document (`ops::documents::CheckDocument`); `run` adds the `warnings`.
fn document(
    cluster: &str,
    facts: &[HostFacts],
    plan: &BTreeMap<String, HostPlan>,
    problems: &[Problem],
) -> CheckDocument {
    let hosts = facts
        .iter()
        .map(|f| CheckHost {
            name: f.name.clone(),
            reachable: matches!(f.reach, Some(Ok(_))),
            reached_by: f.reach.clone().and_then(Result::ok),
            server_major_version: f.binaries.clone().and_then(Result::ok),
            data_dir: f.data_dir.clone(),
            running: f.running,
            system_identifier: f.system_identifier.clone(),
            in_recovery: f.in_recovery,
            auto_conf_overrides: f.auto_conf_overrides.clone(),
            init_would: plan.get(&f.name).copied(),
        })
        .collect();
    CheckDocument {
        cluster: cluster.to_string(),
        ok: problems.is_empty(),
        hosts,
        problems: problems.to_vec(),
        warnings: Vec::new(),
    }
}

/// The text table: HOST, REACHABLE, VERSION, DATA DIRECTORY, INIT WOULD; one row per host.
fn table(facts: &[HostFacts], plan: &BTreeMap<String, HostPlan>) -> String {
    let mut out = format!(
        "{:<12} {:<9} {:<8} {:<26} {}\n",
        "HOST", "REACHABLE", "VERSION", "DATA DIRECTORY", "INIT WOULD"
    );
    for f in facts {
        let would = match plan.get(&f.name) {
            Some(HostPlan::Initdb) => "initdb",
            Some(HostPlan::KeepPrimary) => "keep (primary)",
            Some(HostPlan::Clone) => "clone",
            Some(HostPlan::KeepReplica) => "keep (replica)",
            None => "-",
        };
        let version = f
            .binaries
            .as_ref()
            .and_then(|b| b.as_ref().ok())
            .map(|v| v.to_string())
            .unwrap_or_else(|| "-".into());
        let reach = if matches!(f.reach, Some(Ok(_))) {
            "yes"
        } else {
            "no"
        };
        out.push_str(&format!(
            "{:<12} {:<9} {:<8} {:<26} {}\n",
            f.name,
            reach,
            version,
            dir_column(f),
            would
        ));
    }
    out
}

/// The DATA DIRECTORY column: `primary`/`standby` (`, running`), or the state's name.
fn dir_column(f: &HostFacts) -> String {
    let running = if f.running { ", running" } else { "" };
    match &f.data_dir {
        Some(DirState::PgData { standby: true, .. }) => format!("standby{running}"),
        Some(DirState::PgData { standby: false, .. }) => format!("primary{running}"),
        Some(d) => format!("{d:?}")
            .split([' ', '{'])
            .next()
            .unwrap_or("")
            .to_lowercase(),
        None => "-".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(name: &str, dir: Option<DirState>, running: bool) -> HostFacts {
        HostFacts {
            name: name.into(),
            reach: Some(Ok("local".into())),
            binaries: Some(Ok(15)),
            data_dir: dir,
            running,
            system_identifier: None,
            in_recovery: None,
            ..HostFacts::default()
        }
    }

    #[test]
    fn table_rows_as_before() {
        let mut down = fact("pg3", None, false);
        down.reach = Some(Err("refused".into()));
        down.binaries = None;
        let facts = vec![
            fact(
                "pg1",
                Some(DirState::PgData {
                    major: Some(15),
                    standby: false,
                }),
                true,
            ),
            fact(
                "pg2",
                Some(DirState::Absent {
                    parent_writable: true,
                }),
                false,
            ),
            down,
        ];
        let plan: BTreeMap<String, HostPlan> = [
            ("pg1".to_string(), HostPlan::KeepPrimary),
            ("pg2".to_string(), HostPlan::Clone),
        ]
        .into();
        assert_eq!(
            table(&facts, &plan),
            "HOST         REACHABLE VERSION  DATA DIRECTORY             INIT WOULD\n\
             pg1          yes       15       primary, running           keep (primary)\n\
             pg2          yes       15       absent                     clone\n\
             pg3          no        -        -                          -\n"
        );
        let j = serde_json::to_value(document("c", &facts, &plan, &[])).unwrap();
        assert_eq!(j["ok"], true);
        assert_eq!(j["hosts"][0]["init_would"], "keep_primary");
        assert_eq!(j["hosts"][1]["data_dir"]["kind"], "absent");
        assert_eq!(j["hosts"][2]["reached_by"], serde_json::Value::Null);
    }
}
