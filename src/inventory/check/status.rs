//! `status:`: the lag thresholds `status` grades replicas by. Sizes take PostgreSQL's units
//! (`16MB`), seconds must be non-negative, and no warning may sit above its critical value. Like
//! every checker, it judges values only: no YAML reading, no I/O, no secrets.

use serde_saphyr::Spanned;

use super::Checker;
use crate::inventory::model::Thresholds;
use crate::inventory::raw::RawStatus;

/// Checks `status:`; the thresholds, defaults filled in where a value is missing or refused.
pub(super) fn check(c: &mut Checker, raw: Option<&RawStatus>) -> Thresholds {
    let mut t = Thresholds::default();
    let Some(r) = raw else { return t };
    let bytes = |c: &mut Checker, v: &Option<Spanned<String>>, d: u64| -> u64 {
        match v {
            None => d,
            Some(s) => crate::pg::parse_size(&s.value).unwrap_or_else(|| {
                c.at(
                    s.referenced,
                    format!("{:?} is not a size", s.value),
                    "use bytes or a unit: 16MB, 1GB",
                );
                d
            }),
        }
    };
    t.lag_warning_bytes = bytes(c, &r.lag_warning_bytes, t.lag_warning_bytes);
    t.lag_critical_bytes = bytes(c, &r.lag_critical_bytes, t.lag_critical_bytes);
    for (v, slot) in [
        (&r.lag_warning_seconds, &mut t.lag_warning_seconds),
        (&r.lag_critical_seconds, &mut t.lag_critical_seconds),
    ] {
        if let Some(v) = v {
            if v.value.is_finite() && v.value >= 0.0 {
                *slot = v.value;
            } else {
                c.at(
                    v.referenced,
                    "a lag threshold must be a non-negative number of seconds",
                    "e.g. 30",
                );
            }
        }
    }
    if t.lag_warning_bytes > t.lag_critical_bytes || t.lag_warning_seconds > t.lag_critical_seconds
    {
        let loc = r
            .lag_warning_bytes
            .as_ref()
            .map(|s| s.referenced)
            .or(r.lag_warning_seconds.as_ref().map(|s| s.referenced));
        if let Some(loc) = loc {
            c.at(
                loc,
                "a warning threshold is above its critical threshold",
                "make lag_warning_* at most lag_critical_*",
            );
        }
    }
    t
}
