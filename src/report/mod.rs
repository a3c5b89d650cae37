//! Renders a `ClusterView` for people ([`text`]: a table and the findings) and for Prometheus
//! ([`prometheus`]: text exposition format, for node_exporter's textfile collector).
//!
//! Pure string building over the view `health` assessed: no I/O, no judgement (what is wrong
//! and how bad is `health`'s), no terminal (`ui` decides where the text goes and paints it).

mod prometheus;
mod text;

pub use prometheus::prometheus;
pub use text::text;

/// Human-readable bytes (powers of 1024).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_formatting() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1536), "1.5 kB");
        assert_eq!(bytes(16 << 20), "16.0 MB");
    }
}
