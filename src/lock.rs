//! The cluster lock: at most one mutating pgrepl command (init, promote, rebuild, switchover)
//! per cluster at a time. No I/O here: the holder record, its parsing, the stale decision and
//! the fixed shell snippets that hold and clear a lock on a host.
//!
//! A lock is a `flock` on `<data_dir>.pgrepl-lock`, beside each data directory, taken by a small
//! shell that pgrepl starts on every reachable host (in inventory order, never waiting) and that
//! lives exactly as long as its stdin: when pgrepl exits, is killed, or loses the connection,
//! the kernel drops the lock. The file keeps one line naming the holder, so a contender can say
//! who holds it. A clean release empties the file; a line left behind by a holder that is gone
//! tells the next run that the previous one ended without releasing it (it was killed).
//!
//! A holder process can outlive its pgrepl only while the host still believes the connection
//! is up (a half-open TCP connection after the client machine vanished). When the holder's
//! pgrepl ran on this machine, pgrepl can prove it is dead (same boot, PID gone or reused) and
//! clears the lock itself; otherwise `pgrepl unlock` clears it after the DBA confirms.

use crate::transport::Cmd;

/// The lock file of a host's data directory.
pub fn lock_file(data_dir: &str) -> String {
    format!("{data_dir}.pgrepl-lock")
}

/// Exit status of [`HOLD`] when another process holds the lock.
pub const BUSY: i32 = 75;

/// `$1` lock file, `$2` holder record. Prints `locked <previous record>` or `busy <record>`,
/// then holds the lock until stdin ends; `release` on stdin empties the record first.
const HOLD: &str = r#"exec 9<>"$1" || exit 3
if ! flock -n 9; then
  # The holder writes its record just after taking the lock: poll for it (at most 1 s).
  n=0
  rec=$(head -n 1 -- "$1")
  while [ -z "$rec" ] && [ "$n" -lt 20 ]; do sleep 0.05; n=$((n + 1)); rec=$(head -n 1 -- "$1"); done
  printf 'busy %s\n' "$rec"
  exit 75
fi
prev=$(head -n 1 -- "$1")
printf '%s remote_pid=%s\n' "$2" "$$" >"$1"
printf 'locked %s\n' "$prev"
read -r cmd || cmd=
if [ "$cmd" = release ]; then : >"$1"; fi
exit 0"#;

/// `$1` lock file, `$2` PID: stops that PID only if it is a lock holder for this very file.
const CLEAR: &str = r#"case "$2" in ''|*[!0-9]*) echo "pgrepl: bad pid" >&2; exit 2 ;; esac
[ -r "/proc/$2/cmdline" ] || exit 0
args=$(tr '\0' '\n' <"/proc/$2/cmdline")
printf '%s\n' "$args" | grep -qx 'pgrepl-lock' || { echo "pgrepl: process $2 is not a pgrepl lock holder" >&2; exit 2; }
printf '%s\n' "$args" | grep -qxF -- "$1" || { echo "pgrepl: process $2 holds another lock" >&2; exit 2; }
exec kill -TERM "$2""#;

/// Takes (and then holds) the lock on one host.
pub fn hold(data_dir: &str, holder: &Holder) -> Cmd {
    Cmd::new("sh").args([
        "-c",
        HOLD,
        "pgrepl-lock",
        &lock_file(data_dir),
        &holder.record(),
    ])
}

/// Stops the process that holds the lock of `data_dir` (after checking that it is one).
pub fn clear(data_dir: &str, remote_pid: u32) -> Cmd {
    Cmd::new("sh").args([
        "-c",
        CLEAR,
        "pgrepl-unlock",
        &lock_file(data_dir),
        &remote_pid.to_string(),
    ])
}

/// Who holds a lock: one line of `key=value` words (values have no spaces).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Holder {
    /// The command (`switchover`, `rebuild`, ...).
    pub op: String,
    /// The OS user that ran the holder's pgrepl (`unknown` when its uid has no name).
    pub user: String,
    /// Host name of the machine the holder's pgrepl ran on (`/proc/sys/kernel/hostname`).
    pub machine: String,
    /// `/proc/sys/kernel/random/boot_id` of the holder's machine: a PID means nothing across boots.
    pub boot: String,
    /// The PID of the holder's pgrepl on that machine.
    pub pid: u32,
    /// The holder's process start time (clock ticks since boot): a PID can be reused.
    pub start: u64,
    /// Unix time when the lock was taken.
    pub since: u64,
    /// The PID of the holding shell on the locked host (set by the host).
    pub remote_pid: Option<u32>,
}

fn word(s: &str) -> String {
    let w: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '=' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if w.is_empty() {
        "_".into()
    } else {
        w
    }
}

impl Holder {
    /// The record written into the lock file (without `remote_pid`, which the host adds).
    pub fn record(&self) -> String {
        format!(
            "op={} user={} machine={} boot={} pid={} start={} since={}",
            word(&self.op),
            word(&self.user),
            word(&self.machine),
            word(&self.boot),
            self.pid,
            self.start,
            self.since
        )
    }

    /// Parses a record; `None` for an empty or foreign line.
    pub fn parse(line: &str) -> Option<Holder> {
        let mut h = Holder::default();
        let mut seen = 0;
        for w in line.split_whitespace() {
            let (k, v) = w.split_once('=')?;
            seen += 1;
            match k {
                "op" => h.op = v.into(),
                "user" => h.user = v.into(),
                "machine" => h.machine = v.into(),
                "boot" => h.boot = v.into(),
                "pid" => h.pid = v.parse().ok()?,
                "start" => h.start = v.parse().ok()?,
                "since" => h.since = v.parse().ok()?,
                "remote_pid" => h.remote_pid = Some(v.parse().ok()?),
                _ => seen -= 1,
            }
        }
        (seen >= 7 && h.pid != 0).then_some(h)
    }

    /// "switchover by root@admin1 (pid 4242), for 12 s".
    pub fn describe(&self, now: u64) -> String {
        format!(
            "{} by {}@{} (pid {}), for {} s",
            self.op,
            self.user,
            self.machine,
            self.pid,
            now.saturating_sub(self.since)
        )
    }
}

/// What a contender can conclude about a holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// The holder's pgrepl runs on this machine and is alive.
    Alive,
    /// The holder's pgrepl ran on this machine and is gone: the lock is stale.
    Dead,
    /// The holder ran on another machine (or an older boot of this one is not provable).
    Unknown,
}

/// Decides whether `h` still runs. `me` is this process's own record (machine and boot);
/// `start_of(pid)` gives a live PID's start time on this machine, `None` when it does not exist.
pub fn liveness(h: &Holder, me: &Holder, start_of: impl Fn(u32) -> Option<u64>) -> Liveness {
    if h.machine != me.machine {
        return Liveness::Unknown;
    }
    if h.boot != me.boot {
        // Same machine, another boot: every process of that boot is gone.
        return Liveness::Dead;
    }
    match start_of(h.pid) {
        Some(s) if s == h.start => Liveness::Alive,
        _ => Liveness::Dead,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> Holder {
        Holder {
            op: "switchover".into(),
            user: "root".into(),
            machine: "admin1".into(),
            boot: "b-1".into(),
            pid: 4242,
            start: 999,
            since: 1_700_000_000,
            remote_pid: None,
        }
    }

    #[test]
    fn record_round_trips_and_host_adds_remote_pid() {
        let h = me();
        let line = format!("{} remote_pid=77", h.record());
        let back = Holder::parse(&line).expect("parses");
        assert_eq!(back.remote_pid, Some(77));
        assert_eq!(
            Holder {
                remote_pid: None,
                ..back
            },
            h
        );
        assert_eq!(Holder::parse(""), None);
        assert_eq!(Holder::parse("garbage"), None);
        assert_eq!(
            h.describe(1_700_000_012),
            "switchover by root@admin1 (pid 4242), for 12 s"
        );
    }

    #[test]
    fn record_words_cannot_inject_fields() {
        let mut h = me();
        h.user = "evil pid=1 x".into();
        h.machine = "".into();
        let back = Holder::parse(&h.record()).expect("parses");
        assert_eq!(back.pid, 4242);
        assert_eq!(back.user, "evil_pid_1_x");
        assert_eq!(back.machine, "_");
    }

    #[test]
    fn staleness_needs_proof() {
        let m = me();
        let other = Holder {
            machine: "admin2".into(),
            ..m.clone()
        };
        assert_eq!(liveness(&other, &m, |_| None), Liveness::Unknown);
        assert_eq!(liveness(&m, &m, |_| Some(999)), Liveness::Alive);
        assert_eq!(liveness(&m, &m, |_| None), Liveness::Dead);
        assert_eq!(
            liveness(&m, &m, |_| Some(1000)),
            Liveness::Dead,
            "PID reused"
        );
        let old_boot = Holder {
            boot: "b-0".into(),
            ..m.clone()
        };
        assert_eq!(liveness(&old_boot, &m, |_| Some(999)), Liveness::Dead);
    }

    #[test]
    fn lock_file_sits_beside_the_data_directory() {
        assert_eq!(
            lock_file("/var/lib/pg/15/main"),
            "/var/lib/pg/15/main.pgrepl-lock"
        );
        let c = hold("/d", &me());
        assert_eq!(c.argv[3], "pgrepl-lock");
        assert_eq!(c.argv[4], "/d.pgrepl-lock");
        assert_eq!(clear("/d", 12).argv[4..], ["/d.pgrepl-lock", "12"]);
    }
}
