//! Time as natrium writes it: the civil date (once, for logs and monitoring),
//! the log line's timestamp, and the exact shapes Go's encoders give
//! nats-server's JSON: RFC 3339 with trimmed nanoseconds for `time.Time`,
//! `Duration.String()` for `rtt`, and nats-server's own coarse `1d2h3m4s` for
//! `uptime`/`idle`.
//!
//! Pure functions, except `unix_nanos` (the one clock read activity stamps use).
//! Must not know about connections or options.

use std::fmt::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Unix time in nanoseconds, for activity stamps (0 if the clock is before 1970).
pub fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// `2006/01/02 15:04:05.000000` in UTC: nats-server's log line timestamp.
pub fn log_timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (y, m, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}/{m:02}/{day:02} {:02}:{:02}:{:02}.{:06}",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        d.subsec_micros()
    )
}

/// `2024-05-01T12:34:56.789Z`, as Go's `time.Time` marshals a UTC time
/// (RFC3339Nano: fraction trimmed of trailing zeros, omitted when zero).
pub fn rfc3339(t: SystemTime) -> String {
    let (secs, nanos) = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
        // Before 1970: only possible with a broken clock; clamp to the epoch.
        Err(_) => (0, 0),
    };
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let mut out = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    );
    push_fraction(&mut out, nanos as u64, 9);
    out.push('Z');
    out
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Appends `.ddd` (`digits` wide, trailing zeros trimmed) unless `frac` is 0.
fn push_fraction(out: &mut String, frac: u64, digits: usize) {
    if frac == 0 {
        return;
    }
    let s = format!("{frac:0digits$}");
    out.push('.');
    out.push_str(s.trim_end_matches('0'));
}

/// Go's `time.Duration.String()`: `0s`, `850ns`, `1.5µs`, `12.3ms`, `2.5s`,
/// `1m2.5s`, `3h0m0s`. Used for `rtt`.
pub fn go_duration(d: Duration) -> String {
    let n = d.as_nanos();
    if n == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    if n < 1_000_000_000 {
        let (div, digits, unit) = if n < 1_000 {
            (1u128, 0, "ns")
        } else if n < 1_000_000 {
            (1_000, 3, "µs")
        } else {
            (1_000_000, 6, "ms")
        };
        let _ = write!(out, "{}", n / div);
        push_fraction(&mut out, (n % div) as u64, digits);
        out.push_str(unit);
        return out;
    }
    let secs = n / 1_000_000_000;
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    if h > 0 {
        let _ = write!(out, "{h}h");
    }
    if h > 0 || m > 0 {
        let _ = write!(out, "{m}m");
    }
    let _ = write!(out, "{s}");
    push_fraction(&mut out, (n % 1_000_000_000) as u64, 9);
    out.push('s');
    out
}

/// nats-server's `myUptime`: whole seconds with years and days, e.g. `0s`,
/// `4m5s`, `1d2h3m4s`, `1y2d3h4m5s`. Used for `uptime` and `idle`.
pub fn uptime(d: Duration) -> String {
    let secs = d.as_secs();
    let (mins, hrs) = (secs / 60, secs / 3600);
    let (days, yrs) = (hrs / 24, hrs / 24 / 365);
    let (s, m, h, dd) = (secs % 60, mins % 60, hrs % 24, days % 365);
    if yrs > 0 {
        format!("{yrs}y{dd}d{h}h{m}m{s}s")
    } else if days > 0 {
        format!("{days}d{h}h{m}m{s}s")
    } else if hrs > 0 {
        format!("{hrs}h{m}m{s}s")
    } else if mins > 0 {
        format!("{mins}m{s}s")
    } else {
        format!("{secs}s")
    }
}

/// `later - earlier`, zero if the clock went backwards.
pub fn since(later: SystemTime, earlier: SystemTime) -> Duration {
    later.duration_since(earlier).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_420), (2025, 11, 28));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn log_timestamp_shape() {
        let t = UNIX_EPOCH + Duration::new(1_714_566_896, 789_012_000);
        assert_eq!(log_timestamp(t), "2024/05/01 12:34:56.789012");
    }

    #[test]
    fn rfc3339_matches_go() {
        let t = UNIX_EPOCH + Duration::new(1_714_566_896, 789_000_000);
        assert_eq!(rfc3339(t), "2024-05-01T12:34:56.789Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn go_duration_matches_go() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_nanos(850), "850ns"),
            (Duration::from_nanos(1_500), "1.5µs"),
            (Duration::from_micros(12_300), "12.3ms"),
            (Duration::from_millis(2_500), "2.5s"),
            (Duration::from_millis(62_500), "1m2.5s"),
            (Duration::from_secs(3 * 3600), "3h0m0s"),
        ];
        for (d, want) in cases {
            assert_eq!(go_duration(d), want);
        }
    }

    #[test]
    fn uptime_matches_nats_server() {
        assert_eq!(uptime(Duration::from_millis(999)), "0s");
        assert_eq!(uptime(Duration::from_secs(245)), "4m5s");
        assert_eq!(uptime(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(uptime(Duration::from_secs(93_784)), "1d2h3m4s");
        let y = 365 * 86_400 + 2 * 86_400 + 3 * 3600 + 4 * 60 + 5;
        assert_eq!(uptime(Duration::from_secs(y)), "1y2d3h4m5s");
    }
}
