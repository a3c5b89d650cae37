//! A switchover that fails: before the promotion it rolls back (the old primary is the primary
//! again, verified writable: exit 8; if that fails, exit 1 with the command that starts it);
//! after it, exit 7 with each node's state and the next command.

use super::*;

impl Switchover<'_, '_, '_> {
    /// Before the point of no return: start the old primary again, verify it writable, and fail
    /// with "switchover failed, nothing changed" (exit 8); exit 7 if it does not come back.
    pub(super) async fn rollback(&self, why: &str) -> Error {
        let (ctx, old) = (self.ctx, self.plan.old);
        ctx.ui.warn(format!(
            "switchover failed before the promotion ({why}); starting {} again as primary",
            old.name
        ));
        ctx.take_pending_rollback();
        let restarted = async {
            run_step(
                self.old_t,
                &datadir::remove_file(&standby_signal(old)),
                "lift the fence",
                None,
            )
            .await?;
            // Asked to stop, it may still be shutting down (held up by its archiver or WAL
            // senders) and accept nothing: stopped for good first, then started.
            if is_running(self.old_t, old).await? {
                stop_and_prove_down(ctx, self.old_t, old).await?;
            }
            start(ctx, self.old_t, old).await?;
            let db = ctx.db(self.old_t, old).await?;
            anyhow::ensure!(
                !db.in_recovery().await?,
                "{} came back in recovery",
                old.name
            );
            db.write_check().await
        }
        .await;
        // Writes held by PgBouncer go on to the old primary, back in charge.
        if ctx.take_writes_paused() {
            if let Err(e) = routers::resume_writes(ctx, &ctx.inv).await {
                ctx.ui
                    .warn(format!("resuming PgBouncer's writes failed: {e}"));
            }
        }
        match restarted {
            Ok(()) => Error::SwitchoverRolledBack(failure(
                &old.name,
                "switchover",
                format!("{why}; rolled back: {} is the primary again, verified writable; nothing changed", old.name),
                "pgrepl status; fix the cause, then retry the switchover".into(),
            )),
            // Nothing was promoted: not "incomplete" (exit 7), a failed step (exit 1).
            Err(e) => Error::Step(failure(
                &old.name,
                "switchover rollback",
                format!("{why}; and restarting {} failed: {e:#}", old.name),
                format!("start it by hand: {}/pg_ctl start -D {} -l {}", old.bin_dir, old.data_dir, old.log_file),
            )),
        }
    }

    /// After the point of no return: exit 7 with each node's state and the next command. The
    /// candidate is the primary now: the inventory says so.
    pub(super) async fn incomplete(&self, step: &str, why: String, next: String) -> Error {
        let ctx = self.ctx;
        let view = collect(ctx, ctx.inv.timeouts.status, &ctx.inv.thresholds).await;
        if view.primary.as_deref() == Some(self.plan.candidate.name.as_str()) {
            keep_inventory_true(ctx, &self.eff);
        }
        let states: Vec<String> = view
            .hosts
            .iter()
            .map(|h| {
                let what = match (h.reachable, h.role) {
                    (false, _) => "unreachable".to_string(),
                    (true, Some(Role::Primary)) => "primary (accepts writes)".into(),
                    (true, _) => match view
                        .replicas
                        .iter()
                        .find(|r| r.host == h.name)
                        .and_then(|r| r.upstream.clone())
                    {
                        Some(u) => format!("replica streaming from {u}"),
                        None => "replica, not streaming".into(),
                    },
                };
                format!("{}: {what}", h.name)
            })
            .collect();
        let failure = failure(
            &self.plan.candidate.name,
            step,
            format!("switchover incomplete: {why}; now: {}", states.join("; ")),
            next,
        );
        let nodes = states
            .iter()
            .filter_map(|s| s.split_once(": "))
            .map(|(n, s)| (n.to_string(), s.to_string()))
            .collect();
        Error::SwitchoverIncomplete(Box::new(Incomplete { failure, nodes }))
    }
}

/// A step failure with its hint, for the exit-7/8 variants.
fn failure(host: &str, step: &str, message: String, hint: String) -> StepFailure {
    StepFailure {
        host: Some(host.into()),
        step: step.into(),
        message,
        hint: Some(hint),
        ..StepFailure::default()
    }
}
