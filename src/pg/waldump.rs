//! Reading a stopped server's WAL with `pg_waldump`: where it ends (from its last checkpoint:
//! how far a crashed primary wrote, so a failover can say how many bytes the new timeline does
//! not have), and the transactions committed in a range (what a rewind discards). No I/O here:
//! the argv and the parsers of its answers.

use super::Lsn;
use crate::transport::Cmd;

/// `pg_waldump --quiet` from `start` on timeline `tli`, over `data_dir`'s `pg_wal`: it reads
/// record after record and stops with an error naming where the WAL ends.
pub fn end_cmd(bin_dir: &str, data_dir: &str, start: Lsn, tli: u32) -> Cmd {
    Cmd::new(format!("{bin_dir}/pg_waldump"))
        .arg("--quiet")
        .arg(format!("--path={data_dir}/pg_wal"))
        .arg(format!("--start={start}"))
        .arg(format!("--timeline={tli}"))
        .env("LC_ALL", "C")
}

/// Where the WAL ends, from `pg_waldump`'s closing error (`error in WAL record at 0/1B35700:
/// invalid record length at 0/1B35898: wanted 24, got 0` → `0/1B35898`): the last LSN the
/// message names. `None` when it names none.
pub fn parse_end(stderr: &str) -> Option<Lsn> {
    stderr
        .split("at ")
        .skip(1)
        .filter_map(|rest| {
            let word: String = rest
                .chars()
                .take_while(|c| c.is_ascii_hexdigit() || *c == '/')
                .collect();
            Lsn::parse(&word)
        })
        .last()
}

/// `pg_waldump` of the transaction records (`--rmgr=Transaction`) from `start` (to `end`, when
/// known; else to where the WAL ends) on timeline `tli`, over `data_dir`'s `pg_wal`.
pub fn commits_cmd(bin_dir: &str, data_dir: &str, start: Lsn, end: Option<Lsn>, tli: u32) -> Cmd {
    let mut c = Cmd::new(format!("{bin_dir}/pg_waldump"))
        .arg("--rmgr=Transaction")
        .arg(format!("--path={data_dir}/pg_wal"))
        .arg(format!("--start={start}"))
        .arg(format!("--timeline={tli}"));
    if let Some(e) = end {
        c = c.arg(format!("--end={e}"));
    }
    c.env("LC_ALL", "C")
}

/// Transactions committed in a stretch of WAL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Commits {
    /// Commit records (`COMMIT` and `COMMIT_PREPARED`).
    pub count: u64,
    /// The commit time of the last one, as pg_waldump prints it (`2026-11-30 13:10:00.1 UTC`).
    pub last_at: Option<String>,
}

/// The commits among `pg_waldump --rmgr=Transaction` lines (`… desc: COMMIT <time>; …`).
pub fn parse_commits(stdout: &str) -> Commits {
    let mut c = Commits::default();
    for line in stdout.lines() {
        let Some(desc) = line.split("desc: ").nth(1) else {
            continue;
        };
        let rest = desc
            .strip_prefix("COMMIT_PREPARED ")
            .or_else(|| desc.strip_prefix("COMMIT "));
        if let Some(rest) = rest {
            c.count += 1;
            let at = rest.split(';').next().unwrap_or("").trim();
            // `COMMIT_PREPARED 5: 2026-…`: the time follows the transaction number.
            let at = at.split_once(": ").map_or(at, |(_, t)| t);
            c.last_at = Some(at.to_string());
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_end_is_the_last_position_named() {
        let pg15 = "pg_waldump: error: error in WAL record at 0/1B35700: invalid record length at 0/1B35898: wanted 24, got 0";
        assert_eq!(parse_end(pg15), Lsn::parse("0/1B35898"));
        let prev = "pg_waldump: error: error in WAL record at 0/3000028: record with incorrect prev-link 0/2000060 at 0/3000060";
        assert_eq!(parse_end(prev), Lsn::parse("0/3000060"));
        assert_eq!(parse_end("pg_waldump: error: could not open file"), None);
    }

    #[test]
    fn commits_are_counted_and_the_last_time_kept() {
        let out = "rmgr: Transaction len (rec/tot):     34/    34, tx:        735, lsn: 0/03000060, prev 0/03000028, desc: COMMIT 2026-11-30 13:10:00.123456 UTC\n\
rmgr: Transaction len (rec/tot):     34/    34, tx:        736, lsn: 0/030000A0, prev 0/03000060, desc: ABORT 2026-11-30 13:10:01.000000 UTC\n\
rmgr: Transaction len (rec/tot):    130/   130, tx:        737, lsn: 0/030000E0, prev 0/030000A0, desc: COMMIT 2026-11-30 13:10:02.5 UTC; inval msgs: catcache 55\n\
rmgr: Transaction len (rec/tot):     58/    58, tx:          0, lsn: 0/03000160, prev 0/030000E0, desc: COMMIT_PREPARED 738: 2026-11-30 13:10:03.25 UTC\n";
        assert_eq!(
            parse_commits(out),
            Commits {
                count: 3,
                last_at: Some("2026-11-30 13:10:03.25 UTC".into())
            }
        );
        assert_eq!(
            parse_commits("pg_waldump: error: no record"),
            Commits::default()
        );
        let c = commits_cmd("/b", "/d", Lsn(0x3000060), Some(Lsn(0x4000000)), 1);
        assert!(c.full_argv().contains(&"--rmgr=Transaction".to_string()));
        assert!(c.full_argv().contains(&"--end=0/4000000".to_string()));
    }

    #[test]
    fn argv() {
        let c = end_cmd("/b", "/d", Lsn(0x1500718), 2);
        assert_eq!(
            c.full_argv(),
            [
                "env",
                "LC_ALL=C",
                "/b/pg_waldump",
                "--quiet",
                "--path=/d/pg_wal",
                "--start=0/1500718",
                "--timeline=2"
            ]
        );
    }
}
