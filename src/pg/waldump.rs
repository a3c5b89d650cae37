//! The end of a stopped server's WAL, read with `pg_waldump` from its last checkpoint: how far
//! a crashed primary wrote, so a failover can say how many bytes the new timeline does not
//! have. No I/O here: the argv and the parser of its answer.

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
