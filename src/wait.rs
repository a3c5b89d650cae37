//! The only way pgrepl waits: poll a real state until it holds, against a named deadline.
//!
//! No bare sleeps elsewhere. The interval is a back-off between probes, never a stand-in
//! for the state itself. Knows nothing about PostgreSQL.

use std::future::Future;
use std::time::{Duration, Instant};

/// What a probe reports each round.
pub enum Poll<T> {
    /// The awaited state holds; stop with this value.
    Ready(T),
    /// Not yet; the string says what was last seen (it goes into the timeout error).
    Pending(String),
}

/// Raised when the deadline passes before the state holds.
#[derive(Debug)]
pub struct TimedOut {
    /// The setting that bounds this wait (e.g. `timeouts.streaming`).
    pub deadline_name: String,
    /// Time spent from the first probe until giving up (at least the deadline).
    pub waited: Duration,
    /// What the probe last saw.
    pub last_seen: String,
}

impl std::fmt::Display for TimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "gave up after {:.1}s ({}); last seen: {}",
            self.waited.as_secs_f64(),
            self.deadline_name,
            self.last_seen
        )
    }
}

impl std::error::Error for TimedOut {}

/// Why a wait ended without the state it awaited.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// The deadline passed.
    #[error("{0}")]
    TimedOut(TimedOut),
    /// The probe itself failed (the wait ended at once).
    #[error("{0:#}")]
    Probe(anyhow::Error),
}

/// Polls `probe` every `interval` until it is ready or `deadline` has passed.
/// A probe error ends the wait at once.
pub async fn poll_until<T, F, Fut>(
    deadline_name: &str,
    deadline: Duration,
    interval: Duration,
    mut probe: F,
) -> Result<T, WaitError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Poll<T>>>,
{
    let start = Instant::now();
    loop {
        let last_seen = match probe().await.map_err(WaitError::Probe)? {
            Poll::Ready(v) => return Ok(v),
            Poll::Pending(seen) => seen,
        };
        let waited = start.elapsed();
        if waited >= deadline {
            return Err(WaitError::TimedOut(TimedOut {
                deadline_name: deadline_name.to_string(),
                waited,
                last_seen,
            }));
        }
        tokio::time::sleep(interval.min(deadline - waited)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_when_ready() {
        let mut n = 0;
        let v = poll_until(
            "t",
            Duration::from_secs(5),
            Duration::from_millis(1),
            || {
                n += 1;
                let k = n;
                async move {
                    Ok(if k >= 3 {
                        Poll::Ready(k)
                    } else {
                        Poll::Pending(format!("n={k}"))
                    })
                }
            },
        )
        .await
        .unwrap();
        assert_eq!(v, 3);
    }

    #[tokio::test]
    async fn names_the_deadline_and_last_state() {
        let err = poll_until::<(), _, _>(
            "timeouts.streaming",
            Duration::from_millis(20),
            Duration::from_millis(5),
            || async { Ok(Poll::Pending("state=startup".into())) },
        )
        .await
        .unwrap_err();
        let WaitError::TimedOut(t) = &err else {
            panic!("not a timeout: {err}")
        };
        assert_eq!(t.deadline_name, "timeouts.streaming");
        assert!(err.to_string().contains("last seen: state=startup"));
    }
}
