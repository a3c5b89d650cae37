//! WAL file names and timelines, without I/O: which timeline a standby's replay is on, read from
//! the segment files in its `pg_wal` (`pg_ls_waldir()`), because a standby whose WAL receiver is
//! down reports only its last restartpoint's timeline (`pg_control_checkpoint()`), which lags
//! behind after a promotion elsewhere.

use super::Lsn;

/// The oldest segment of one timeline present in `pg_wal`: the timeline (the first 8 hex digits
/// of a segment file name) and the rest of the name (16 hex digits: log id, segment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstSegment {
    /// Timeline, 8 hex digits (`00000002`).
    pub tli: String,
    /// Log id and segment, 16 hex digits (`000000000000001A`).
    pub first: String,
}

/// The segment number of a segment file name's last 16 hex digits, for segments of `seg_size`
/// bytes (PostgreSQL's `XLogFromFileName`).
fn segno(name16: &str, seg_size: u64) -> Option<u64> {
    if name16.len() != 16 || seg_size == 0 {
        return None;
    }
    let log = u64::from_str_radix(&name16[..8], 16).ok()?;
    let seg = u64::from_str_radix(&name16[8..], 16).ok()?;
    Some(log * (0x1_0000_0000 / seg_size) + seg)
}

/// The timeline of the WAL a standby replays at `replay`: the highest timeline whose oldest
/// segment in `pg_wal` starts at or before the replay position's segment. `None` when no
/// segment is known (an empty `pg_wal`, or names that do not parse).
pub fn replay_timeline(segments: &[FirstSegment], replay: Lsn, seg_size: u64) -> Option<u32> {
    let at = replay.0.checked_div(seg_size)?;
    segments
        .iter()
        .filter(|s| segno(&s.first, seg_size).is_some_and(|n| n <= at))
        .filter_map(|s| u32::from_str_radix(&s.tli, 16).ok())
        .max()
}

/// Where a timeline history says the server left timeline `tli` (its switchpoint): the fork
/// point between it and a node that stayed on `tli`. `None` when the history does not name `tli`.
pub fn fork_point(history: &str, tli: u32) -> Option<Lsn> {
    history.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        (f.next()?.parse::<u32>().ok()? == tli).then(|| Lsn::parse(f.next()?))?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fork_points_come_from_the_history_file() {
        let h = "1\t0/3000148\tno recovery target specified\n\n2\t0/5000000\tno recovery target specified\n";
        assert_eq!(fork_point(h, 1), Lsn::parse("0/3000148"));
        assert_eq!(fork_point(h, 2), Lsn::parse("0/5000000"));
        assert_eq!(fork_point(h, 3), None);
    }

    fn seg(tli: &str, first: &str) -> FirstSegment {
        FirstSegment {
            tli: tli.into(),
            first: first.into(),
        }
    }

    const MB16: u64 = 16 << 20;

    #[test]
    fn the_highest_timeline_reached_by_replay() {
        // Timeline 2 begins in segment 5, timeline 3 in segment 9.
        let segs = [
            seg("00000001", "0000000000000001"),
            seg("00000002", "0000000000000005"),
            seg("00000003", "0000000000000009"),
        ];
        let at = |seg_no: u64| Lsn(seg_no * MB16 + 100);
        assert_eq!(replay_timeline(&segs, at(3), MB16), Some(1));
        assert_eq!(replay_timeline(&segs, at(5), MB16), Some(2));
        assert_eq!(replay_timeline(&segs, at(12), MB16), Some(3));
    }

    #[test]
    fn segment_numbers_span_log_ids() {
        // With 16 MB segments there are 256 per log id: 00000001_00000002 is segment 258.
        assert_eq!(segno("0000000100000002", MB16), Some(258));
        let segs = [seg("00000004", "0000000100000002")];
        assert_eq!(replay_timeline(&segs, Lsn(257 * MB16), MB16), None);
        assert_eq!(replay_timeline(&segs, Lsn(258 * MB16), MB16), Some(4));
    }

    #[test]
    fn unparsable_names_are_ignored() {
        let segs = [seg("zz", "0000000000000001"), seg("00000002", "short")];
        assert_eq!(replay_timeline(&segs, Lsn(10 * MB16), MB16), None);
        assert_eq!(replay_timeline(&[], Lsn(1), MB16), None);
        assert_eq!(replay_timeline(&segs, Lsn(1), 0), None);
    }
}
