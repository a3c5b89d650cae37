//! Taking, holding and releasing the cluster lock (see `crate::lock` for the design): every
//! mutating command calls [`Context::lock`] before its preflight, and `lib::run` releases the
//! lock when the command ends, however it ends. The record, its parsing and the stale decision are
//! `crate::lock`'s; this file only runs them on hosts.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use crate::error::Error;
use crate::inventory::Host;
use crate::lock::{self, Holder, Liveness};
use crate::transport::{current_user, Transport};
use crate::wait::{poll_until, Poll};

use super::exec::run_step;
use crate::context::{Context, HeldLock};

/// What one attempt on one host found.
pub enum Attempt {
    /// Taken; the previous holder's record if it ended without releasing.
    Taken(HeldLock, Option<Holder>),
    /// Held by someone else (their record, if readable).
    Busy(Option<Holder>),
}

/// This process as a lock holder.
pub fn me(op: &str) -> Holder {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    let pid = std::process::id();
    Holder {
        op: op.into(),
        user: current_user().unwrap_or_else(|| "unknown".into()),
        machine: read("/proc/sys/kernel/hostname"),
        boot: read("/proc/sys/kernel/random/boot_id"),
        pid,
        start: start_of(pid).unwrap_or(0),
        since: now(),
        remote_pid: None,
    }
}

/// Unix time, in seconds.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A local process's start time (field 22 of /proc/<pid>/stat), `None` if it does not exist.
pub fn start_of(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// One non-blocking attempt to take the lock of `h`.
pub async fn attempt(
    ctx: &Context<'_>,
    t: &dyn Transport,
    h: &Host,
    me: &Holder,
) -> anyhow::Result<Attempt> {
    let file = lock::lock_file(&h.data_dir);
    let mut s = t.spawn(&lock::hold(&h.data_dir, me)).await?;
    let mut line = String::new();
    let read = tokio::time::timeout(ctx.inv.timeouts.connect, s.stdout.read_line(&mut line)).await;
    if let Some(prev) = line.strip_prefix("locked") {
        return Ok(Attempt::Taken(
            HeldLock {
                host: h.name.clone(),
                spawned: s,
            },
            Holder::parse(prev.trim()),
        ));
    }
    if let Some(rec) = line.strip_prefix("busy") {
        return Ok(Attempt::Busy(Holder::parse(rec.trim())));
    }
    let code = match read {
        Ok(_) => tokio::time::timeout(Duration::from_secs(2), &mut s.exit)
            .await
            .ok()
            .flatten(),
        Err(_) => None,
    };
    Err(Error::Preflight {
        problems: vec![crate::error::Problem::new(
            &h.name,
            "cluster lock",
            format!(
                "could not open the lock file {file} (exit status {})",
                code.map_or("unknown".into(), |c| c.to_string())
            ),
            format!(
                "make sure the directory that holds {} exists and {} can write to it",
                h.data_dir, ctx.inv.os_user
            ),
        )],
    }
    .into())
}

/// Stops the process holding the lock of `h` for `holder` (the clear script checks that it
/// is a lock holder for that file), then takes the lock, polling until it is free (5 s).
pub async fn clear_and_take(
    ctx: &Context<'_>,
    t: &dyn Transport,
    h: &Host,
    holder: &Holder,
    me: &Holder,
) -> anyhow::Result<HeldLock> {
    if let Some(rp) = holder.remote_pid {
        run_step(t, &lock::clear(&h.data_dir, rp), "clear the lock", None).await?;
    }
    poll_until(
        "lock released (5s)",
        Duration::from_secs(5),
        Duration::from_millis(50),
        || async move {
            Ok(match attempt(ctx, t, h, me).await? {
                Attempt::Taken(held, _) => Poll::Ready(held),
                Attempt::Busy(_) => Poll::Pending("still held".into()),
            })
        },
    )
    .await
    .map_err(|e| Error::step(&h.name, "clear the lock", format!("{e:#}")).into())
}

impl HeldLock {
    /// Empties the holder record and lets the holding process end.
    pub async fn release(mut self) {
        if let Some(mut w) = self.spawned.stdin.take() {
            let _ = w.write_all(b"release\n").await;
            let _ = w.shutdown().await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.spawned.exit).await;
    }
}

impl Context<'_> {
    /// Takes the cluster lock for `op` on every reachable host, in inventory order, without
    /// waiting. Another live holder → [`Error::Locked`] (exit 6) naming it. A holder that is
    /// provably dead (its pgrepl ran on this machine and is gone) is cleared and the lock taken.
    /// Unreachable hosts are skipped: the command's own checks decide what they mean.
    pub async fn lock(&self, op: &str) -> Result<(), Error> {
        let me = me(op);
        let conns = futures_util::future::join_all(self.inv.hosts.iter().map(|h| async move {
            // Bounded like a status probe: a dead host must not hold up a failover.
            let t = tokio::time::timeout(self.inv.timeouts.status, self.kept(h))
                .await
                .unwrap_or_else(|_| Err(anyhow::anyhow!("no answer")));
            (h, t)
        }))
        .await;
        for (h, t) in conns {
            let Ok(t) = t else {
                self.ui
                    .detail(format!("{}: unreachable, not locked", h.name));
                continue;
            };
            match self.take_one(t.as_ref(), h, &me).await {
                Ok(held) => self.locks.lock().await.push(held),
                Err(e) => {
                    self.release_locks().await;
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    async fn take_one(&self, t: &dyn Transport, h: &Host, me: &Holder) -> Result<HeldLock, Error> {
        match attempt(self, t, h, me).await? {
            Attempt::Taken(held, prev) => {
                if let Some(p) = prev {
                    self.ui.warn(format!(
                        "{}: the previous holder of the cluster lock ({}) ended without releasing it; taken over",
                        h.name,
                        p.describe(now())
                    ));
                }
                Ok(held)
            }
            Attempt::Busy(Some(holder))
                if lock::liveness(&holder, me, start_of) == Liveness::Dead =>
            {
                self.ui.warn(format!(
                    "{}: the cluster lock is held for {}, which no longer runs; clearing the stale lock",
                    h.name,
                    holder.describe(now())
                ));
                Ok(clear_and_take(self, t, h, &holder, me).await?)
            }
            Attempt::Busy(holder) => Err(self.locked_error(h, holder.as_ref())),
        }
    }

    /// The "locked" error for `h`, naming the holder and how to clear a stale lock.
    pub fn locked_error(&self, h: &Host, holder: Option<&Holder>) -> Error {
        Error::Locked {
            host: h.name.clone(),
            file: lock::lock_file(&h.data_dir),
            holder: holder.map_or_else(|| "another pgrepl run".into(), |x| x.describe(now())),
            hint: format!(
                "wait for it to finish (pgrepl status -i {0}); if that pgrepl no longer runs, \
                 clear the lock with: pgrepl unlock -i {0}",
                self.inv.file.display()
            ),
        }
    }

    /// Releases every lock this run holds (also after a failure or an interruption).
    pub async fn release_locks(&self) {
        let held: Vec<HeldLock> = std::mem::take(&mut *self.locks.lock().await);
        futures_util::future::join_all(held.into_iter().map(HeldLock::release)).await;
    }
}
