//! `timeouts:`: deadlines in whole seconds. A missing or zero value means the default; there
//! is nothing to refuse beyond the types the schema already enforces. Like every checker, it judges
//! values only: no YAML reading, no I/O, no secrets.

use std::time::Duration;

use crate::inventory::model::Timeouts;
use crate::inventory::raw::RawTimeouts;

/// `timeouts.connect` default, seconds.
const DEFAULT_TIMEOUT_CONNECT: u64 = 10;
/// `timeouts.start` default, seconds.
const DEFAULT_TIMEOUT_START: u64 = 120;
/// `timeouts.streaming` default, seconds.
const DEFAULT_TIMEOUT_STREAMING: u64 = 60;
/// `timeouts.status` default, seconds.
const DEFAULT_TIMEOUT_STATUS: u64 = 5;
/// `timeouts.promote` default, seconds.
const DEFAULT_TIMEOUT_PROMOTE: u64 = 60;

/// Every deadline, defaults filled in.
pub(super) fn resolve(t: Option<&RawTimeouts>) -> Timeouts {
    let secs = |v: Option<u64>, d: u64| Duration::from_secs(v.filter(|&s| s > 0).unwrap_or(d));
    Timeouts {
        connect: secs(t.and_then(|t| t.connect), DEFAULT_TIMEOUT_CONNECT),
        start: secs(t.and_then(|t| t.start), DEFAULT_TIMEOUT_START),
        streaming: secs(t.and_then(|t| t.streaming), DEFAULT_TIMEOUT_STREAMING),
        status: secs(t.and_then(|t| t.status), DEFAULT_TIMEOUT_STATUS),
        promote: secs(t.and_then(|t| t.promote), DEFAULT_TIMEOUT_PROMOTE),
    }
}
