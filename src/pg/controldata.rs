//! `pg_controldata`: argv and a parser for the fields pgrepl reads, in the C locale. Nothing here
//! runs the command or judges the fields (`pg::rewind` and `steps` do).

use super::Lsn;
use crate::transport::Cmd;

/// `LC_ALL=C pg_controldata -D <dir>`.
pub fn cmd(bin_dir: &str, data_dir: &str) -> Cmd {
    Cmd::new(format!("{bin_dir}/pg_controldata"))
        .args(["--pgdata", data_dir])
        .env("LC_ALL", "C")
        .env("LANG", "C")
}

/// The fields of `pg_controldata` that pgrepl uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ControlData {
    /// `Database system identifier`: a decimal u64 as text, shared by a primary and its clones.
    pub system_identifier: Option<String>,
    /// e.g. `in production`, `in archive recovery`, `shut down`, `shut down in recovery`.
    pub cluster_state: Option<String>,
    /// `Latest checkpoint location` (printed `X/Y`).
    pub checkpoint_lsn: Option<Lsn>,
    /// `Latest checkpoint's TimeLineID`.
    pub timeline: Option<u32>,
    /// `Data page checksum version`: true when non-zero (checksums on).
    pub data_checksums: Option<bool>,
    /// `wal_log_hints setting`: true when `on`.
    pub wal_log_hints: Option<bool>,
    /// "Bytes per WAL segment".
    pub wal_segment_size: Option<u64>,
}

/// Parses `pg_controldata` output (C locale).
pub fn parse(out: &str) -> ControlData {
    let mut c = ControlData::default();
    for line in out.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        match k.trim() {
            "Database system identifier" => c.system_identifier = Some(v.to_string()),
            "Database cluster state" => c.cluster_state = Some(v.to_string()),
            "Latest checkpoint location" => c.checkpoint_lsn = Lsn::parse(v),
            "Latest checkpoint's TimeLineID" => c.timeline = v.parse().ok(),
            "Data page checksum version" => {
                c.data_checksums = v.parse::<u32>().ok().map(|n| n != 0)
            }
            "wal_log_hints setting" => c.wal_log_hints = Some(v == "on"),
            "Bytes per WAL segment" => c.wal_segment_size = v.parse().ok(),
            _ => {}
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    const PG15: &str = "pg_control version number:            1300
Catalog version number:               202209061
Database system identifier:           7439000000000000001
Database cluster state:               in production
pg_control last modified:             Sat 21 Nov 2026 10:00:00 PM UTC
Latest checkpoint location:           0/2000060
Latest checkpoint's REDO location:    0/2000028
Latest checkpoint's TimeLineID:       1
wal_log_hints setting:                on
Data page checksum version:           1
";

    /// PostgreSQL 18.6's whole output (`initdb` defaults, stopped): pg_control version 1800,
    /// and the new `Default char data signedness` line, which pgrepl does not read.
    const PG18: &str = "pg_control version number:            1800
Catalog version number:               202506291
Database system identifier:           7713953410203023205
Database cluster state:               shut down
pg_control last modified:             Mon Nov 30 13:18:59 2026
Latest checkpoint location:           0/16EF458
Latest checkpoint's REDO location:    0/16EF458
Latest checkpoint's REDO WAL file:    000000010000000000000001
Latest checkpoint's TimeLineID:       1
Latest checkpoint's PrevTimeLineID:   1
Latest checkpoint's full_page_writes: on
Latest checkpoint's NextXID:          0:752
Latest checkpoint's NextOID:          12784
Latest checkpoint's NextMultiXactId:  1
Latest checkpoint's NextMultiOffset:  0
Latest checkpoint's oldestXID:        744
Latest checkpoint's oldestXID's DB:   1
Latest checkpoint's oldestActiveXID:  0
Latest checkpoint's oldestMultiXid:   1
Latest checkpoint's oldestMulti's DB: 1
Latest checkpoint's oldestCommitTsXid:0
Latest checkpoint's newestCommitTsXid:0
Time of latest checkpoint:            Mon Nov 30 13:18:59 2026
Fake LSN counter for unlogged rels:   0/3E8
Minimum recovery ending location:     0/0
Min recovery ending loc's timeline:   0
Backup start location:                0/0
Backup end location:                  0/0
End-of-backup record required:        no
wal_level setting:                    replica
wal_log_hints setting:                off
max_connections setting:              100
max_worker_processes setting:         8
max_wal_senders setting:              10
max_prepared_xacts setting:           0
max_locks_per_xact setting:           64
track_commit_timestamp setting:       off
Maximum data alignment:               8
Database block size:                  8192
Blocks per segment of large relation: 131072
WAL block size:                       8192
Bytes per WAL segment:                16777216
Maximum length of identifiers:        64
Maximum columns in an index:          32
Maximum size of a TOAST chunk:        1996
Size of a large-object chunk:         2048
Date/time type storage:               64-bit integers
Float8 argument passing:              by value
Data page checksum version:           1
Default char data signedness:         signed
Mock authentication nonce:            4f6562b0b95d0ae785f5c7de052ad35b0b40e508286b0f0cc0f593fe82d572d0
";

    #[test]
    fn parses_pg18_output() {
        let c = parse(PG18);
        assert_eq!(c.system_identifier.as_deref(), Some("7713953410203023205"));
        assert_eq!(c.cluster_state.as_deref(), Some("shut down"));
        assert_eq!(c.checkpoint_lsn, Lsn::parse("0/16EF458"));
        assert_eq!(c.timeline, Some(1));
        // 18's initdb turns data checksums on by default.
        assert_eq!(c.data_checksums, Some(true));
        assert_eq!(c.wal_log_hints, Some(false));
        assert_eq!(c.wal_segment_size, Some(16 << 20));
    }

    #[test]
    fn parses_pg15_output() {
        let c = parse(PG15);
        assert_eq!(c.system_identifier.as_deref(), Some("7439000000000000001"));
        assert_eq!(c.cluster_state.as_deref(), Some("in production"));
        assert_eq!(c.checkpoint_lsn, Lsn::parse("0/2000060"));
        assert_eq!(c.timeline, Some(1));
        assert_eq!(c.data_checksums, Some(true));
        assert_eq!(c.wal_log_hints, Some(true));
    }
}
