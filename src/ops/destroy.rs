//! `pgrepl destroy`: the end of a cluster — every server of the inventory stopped, its data
//! directory and everything pgrepl put beside it removed (password file, lock file, staging and
//! `.pgrepl-old` copies, kept WAL, the slot record, and the log unless `--keep-logs`).
//!
//! Check first, on every host at once ([`preflight`], pure): every host reachable, every data
//! directory a PostgreSQL one (or absent, or empty) of this cluster — one system identifier,
//! the live primary's. Then it asks (or `--yes`; no terminal and no `--yes`: exit 5), or with
//! `--dry-run` prints what it would stop and remove, changing nothing.

use crate::error::{exit, Error, Problem};
use crate::pg::datadir::DirState;
use crate::pg::teardown;
use crate::steps::exec::run_step;
use crate::steps::facts::{gather, HostFacts};
use crate::steps::server::stop_and_prove_down;
use crate::ui::Format;

use super::Context;

/// What `destroy` was asked.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Keep each host's server log (`<data_dir>.log`).
    pub keep_logs: bool,
    /// Check and print what would be stopped and removed; change nothing.
    pub dry_run: bool,
}

/// What destroy does on one host.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct HostPlan {
    /// The inventory host.
    pub name: String,
    /// Its server runs and is stopped first.
    pub stop: bool,
    /// The data directory, when there is one to remove.
    pub data_dir: Option<String>,
    /// pgrepl's files beside it that exist.
    pub siblings: Vec<String>,
}

/// The cluster's system identifier: the live primary's, else the first host's (in inventory
/// order) that has one.
fn cluster_identifier(facts: &[HostFacts]) -> Option<&str> {
    facts
        .iter()
        .find(|f| f.running && f.in_recovery == Some(false))
        .or_else(|| facts.iter().find(|f| f.system_identifier.is_some()))
        .and_then(|f| f.system_identifier.as_deref())
}

/// The plan from each host's facts (with, by host name, pgrepl's files found beside its data
/// directory), or every reason to refuse. Pure.
pub fn preflight(
    facts: &[HostFacts],
    found: &std::collections::BTreeMap<String, Vec<String>>,
    data_dirs: &std::collections::BTreeMap<String, String>,
) -> Result<Vec<HostPlan>, Vec<Problem>> {
    let ours = cluster_identifier(facts);
    let mut problems = Vec::new();
    let mut plan = Vec::new();
    for f in facts {
        let dir = data_dirs.get(&f.name).cloned().unwrap_or_default();
        if let Some(Err(e)) = &f.reach {
            problems.push(Problem::new(
                &f.name,
                "reachable",
                format!("{} cannot be inspected: {e}", f.name),
                "destroy needs every host: bring it back, or remove it from the inventory".into(),
            ));
            continue;
        }
        let remove_dir = match &f.data_dir {
            Some(DirState::PgData { .. }) => {
                if let (Some(mine), Some(ours)) = (f.system_identifier.as_deref(), ours) {
                    if mine != ours {
                        problems.push(Problem::new(&f.name, "cluster", format!("{dir} belongs to another cluster (system identifier {mine}; this cluster's is {ours})"), "pgrepl removes only this cluster's data: check the inventory's data_dir for this host".into()));
                        continue;
                    }
                }
                true
            }
            Some(DirState::Empty) => true,
            Some(DirState::Absent { .. }) | None => false,
            Some(other) => {
                problems.push(Problem::new(&f.name, "data directory", format!("{dir} is not a PostgreSQL data directory ({other:?})"), "pgrepl removes only what it made: check the inventory's data_dir for this host".into()));
                continue;
            }
        };
        plan.push(HostPlan {
            name: f.name.clone(),
            stop: f.running,
            data_dir: remove_dir.then_some(dir),
            siblings: found.get(&f.name).cloned().unwrap_or_default(),
        });
    }
    if problems.is_empty() {
        Ok(plan)
    } else {
        Err(problems)
    }
}

/// `pgrepl destroy`.
pub async fn run(ctx: &Context<'_>, o: Options) -> Result<u8, Error> {
    if !o.dry_run {
        ctx.ui.confirmable("destroy")?;
    }
    ctx.lock("destroy").await?;
    let transports = ctx.connect_all().await;
    let facts = gather(ctx, &transports, crate::context::Login::Superuser).await;
    let mut found = std::collections::BTreeMap::new();
    for h in &ctx.inv.hosts {
        if let Some(Ok(t)) = transports.get(&h.name) {
            let paths = teardown::siblings(&h.data_dir, o.keep_logs);
            if let Ok(out) = t.run(&teardown::existing(&paths), None).await {
                found.insert(
                    h.name.clone(),
                    out.stdout.lines().map(str::to_string).collect(),
                );
            }
        }
    }
    let dirs = ctx
        .inv
        .hosts
        .iter()
        .map(|h| (h.name.clone(), h.data_dir.clone()))
        .collect();
    let plan =
        preflight(&facts, &found, &dirs).map_err(|problems| Error::Preflight { problems })?;
    let mut described = describe(&plan);
    described.extend(ctx.inv.routers.iter().map(|r| {
        format!(
            "{}: stop its {} processes, remove its files under {}",
            r.name,
            r.kind.as_str(),
            r.dir
        )
    }));
    if o.dry_run {
        report(ctx, &plan, true, &described);
        return Ok(exit::OK);
    }
    ctx.ui.confirm("destroy", &described.join("; "))?;
    // The routers first: they front the servers.
    let routers = crate::steps::routers::teardown(ctx, &ctx.inv).await?;
    futures_util::future::try_join_all(plan.iter().map(|p| destroy_host(ctx, p))).await?;
    // Last, the lock files it held.
    ctx.release_locks().await;
    for h in &ctx.inv.hosts {
        if let Some(Ok(t)) = transports.get(&h.name) {
            let lock = vec![crate::lock::lock_file(&h.data_dir)];
            run_step(
                t.as_ref(),
                &teardown::remove_siblings(&h.data_dir, &lock),
                "remove the lock file",
                None,
            )
            .await?;
        }
    }
    described.truncate(plan.len());
    described.extend(routers);
    report(ctx, &plan, false, &described);
    Ok(exit::OK)
}

/// One line per host: what is stopped and removed there.
fn describe(plan: &[HostPlan]) -> Vec<String> {
    plan.iter()
        .map(|p| {
            let mut what: Vec<String> = Vec::new();
            if p.stop {
                what.push("stop PostgreSQL".into());
            }
            let removed: Vec<&str> = p
                .data_dir
                .iter()
                .chain(&p.siblings)
                .map(String::as_str)
                .collect();
            if !removed.is_empty() {
                what.push(format!("remove {}", removed.join(" ")));
            }
            if what.is_empty() {
                what.push("nothing to do".into());
            }
            format!("{}: {}", p.name, what.join(", "))
        })
        .collect()
}

/// Stops the host's server (proven down) and removes what the plan says.
async fn destroy_host(ctx: &Context<'_>, p: &HostPlan) -> Result<(), Error> {
    let h = ctx.host_named(&p.name)?;
    let t = ctx
        .kept(h)
        .await
        .map_err(|e| Error::step(&p.name, "connect", format!("{e:#}")))?;
    let t = t.as_ref();
    if p.stop {
        stop_and_prove_down(ctx, t, h).await?;
    }
    if let Some(d) = &p.data_dir {
        run_step(
            t,
            &teardown::remove_data_dir(d),
            "remove the data directory",
            None,
        )
        .await?;
    }
    if !p.siblings.is_empty() {
        run_step(
            t,
            &teardown::remove_siblings(&h.data_dir, &p.siblings),
            "remove pgrepl's files",
            None,
        )
        .await?;
    }
    Ok(())
}

/// The result: one line per host on stderr, or the JSON document.
fn report(ctx: &Context<'_>, plan: &[HostPlan], dry_run: bool, described: &[String]) {
    if ctx.ui.format() == Format::Json {
        ctx.ui.json(&super::documents::DestroyDocument {
            dry_run,
            hosts: plan.to_vec(),
            routers: described[plan.len()..].to_vec(),
        });
        return;
    }
    let head = if dry_run {
        "destroy --dry-run (nothing was changed): would"
    } else {
        "destroy: done:"
    };
    for line in described {
        ctx.ui.info(format!("{head} {line}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn host(
        name: &str,
        dir: DirState,
        sysid: Option<&str>,
        running: bool,
        primary: bool,
    ) -> HostFacts {
        HostFacts {
            name: name.into(),
            reach: Some(Ok("local".into())),
            data_dir: Some(dir),
            running,
            system_identifier: sysid.map(str::to_string),
            in_recovery: running.then_some(!primary),
            ..HostFacts::default()
        }
    }

    fn pg() -> DirState {
        DirState::PgData {
            major: Some(15),
            standby: false,
        }
    }

    fn dirs() -> BTreeMap<String, String> {
        ["a", "b", "c"]
            .iter()
            .map(|n| (n.to_string(), format!("/d/{n}")))
            .collect()
    }

    #[test]
    fn plans_every_host_and_removes_only_what_exists() {
        let facts = [
            host("a", pg(), Some("7"), true, true),
            host("b", pg(), Some("7"), false, false),
            host(
                "c",
                DirState::Absent {
                    parent_writable: true,
                },
                None,
                false,
                false,
            ),
        ];
        let mut found = BTreeMap::new();
        found.insert("a".to_string(), vec!["/d/a.log".to_string()]);
        let plan = preflight(&facts, &found, &dirs()).unwrap();
        assert_eq!(
            plan[0],
            HostPlan {
                name: "a".into(),
                stop: true,
                data_dir: Some("/d/a".into()),
                siblings: vec!["/d/a.log".into()]
            }
        );
        assert!(!plan[1].stop && plan[1].data_dir.is_some());
        assert_eq!(plan[2].data_dir, None);
        assert_eq!(describe(&plan)[2], "c: nothing to do");
    }

    #[test]
    fn refuses_another_clusters_data_and_foreign_files() {
        let facts = [
            host("a", pg(), Some("7"), true, true),
            host("b", pg(), Some("8"), false, false),
            host("c", DirState::Other, None, false, false),
        ];
        let problems = preflight(&facts, &BTreeMap::new(), &dirs()).unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0]
            .message
            .contains("belongs to another cluster (system identifier 8; this cluster's is 7)"));
        assert!(problems[1]
            .message
            .contains("not a PostgreSQL data directory"));
    }
}
