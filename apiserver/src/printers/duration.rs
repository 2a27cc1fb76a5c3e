//! Human-readable durations as upstream's `k8s.io/apimachinery/pkg/util/duration` writes
//! them, and the "age" of a timestamp built on it.

use jiff::{SignedDuration, Timestamp};

const MINUTE: i64 = 60;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// Whole seconds, truncated toward zero (Go's `int(d.Seconds())`).
fn whole_seconds(d: SignedDuration) -> i64 {
    d.as_secs()
}

/// `HumanDuration`: about two to three significant figures (`45s`, `3m2s`, `17m`, `5h3m`,
/// `26h`, `3d4h`, `120d`, `2y45d`, `9y`). Up to a second and a bit in the future reads as
/// `0s` (clock skew); further in the future is `<invalid>`.
pub fn human(d: SignedDuration) -> String {
    let seconds = whole_seconds(d);
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 2 * MINUTE {
        return format!("{seconds}s");
    }
    let minutes = seconds / MINUTE;
    if minutes < 10 {
        return with_remainder(minutes, "m", seconds % MINUTE, "s");
    }
    if minutes < 3 * 60 {
        return format!("{minutes}m");
    }
    let hours = seconds / HOUR;
    if hours < 8 {
        return with_remainder(hours, "h", minutes % 60, "m");
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 24 * 8 {
        return with_remainder(days, "d", hours % 24, "h");
    }
    if hours < 24 * 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if hours < 24 * 365 * 8 {
        return with_remainder(years, "y", days % 365, "d");
    }
    format!("{years}y")
}

/// `ShortHumanDuration`: one unit only (`45s`, `17m`, `5h`, `3d`, `2y`).
pub fn short_human(d: SignedDuration) -> String {
    let seconds = whole_seconds(d);
    if seconds < -1 {
        "<invalid>".into()
    } else if seconds < 0 {
        "0s".into()
    } else if seconds < MINUTE {
        format!("{seconds}s")
    } else if seconds < HOUR {
        format!("{}m", seconds / MINUTE)
    } else if seconds < DAY {
        format!("{}h", seconds / HOUR)
    } else if seconds < 365 * DAY {
        format!("{}d", seconds / DAY)
    } else {
        format!("{}y", seconds / DAY / 365)
    }
}

fn with_remainder(major: i64, major_unit: &str, minor: i64, minor_unit: &str) -> String {
    if minor == 0 {
        format!("{major}{major_unit}")
    } else {
        format!("{major}{major_unit}{minor}{minor_unit}")
    }
}

/// Upstream's `translateTimestampSince`: the time elapsed since `at`, or `<unknown>` for a
/// missing (zero) timestamp.
pub fn since(at: Option<Timestamp>, now: Timestamp) -> String {
    match at {
        Some(at) => human(now.duration_since(at)),
        None => "<unknown>".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: i64) -> SignedDuration {
        SignedDuration::from_secs(s)
    }

    #[test]
    fn human_duration_follows_upstream_rules() {
        let cases: &[(SignedDuration, &str)] = &[
            (SignedDuration::from_millis(-2500), "<invalid>"),
            (secs(-2), "<invalid>"),
            (SignedDuration::from_millis(-1999), "0s"),
            (secs(-1), "0s"),
            (SignedDuration::from_millis(-500), "0s"),
            (secs(0), "0s"),
            (SignedDuration::from_millis(1999), "1s"),
            (secs(59), "59s"),
            (secs(60), "60s"),
            (secs(119), "119s"),
            (secs(120), "2m"),
            (secs(121), "2m1s"),
            (secs(9 * MINUTE + 59), "9m59s"),
            (secs(10 * MINUTE), "10m"),
            (secs(10 * MINUTE + 59), "10m"),
            (secs(3 * HOUR - 1), "179m"),
            (secs(3 * HOUR), "3h"),
            (secs(3 * HOUR + 59), "3h"),
            (secs(3 * HOUR + MINUTE), "3h1m"),
            (secs(8 * HOUR - 1), "7h59m"),
            (secs(8 * HOUR), "8h"),
            (secs(47 * HOUR + 59 * MINUTE), "47h"),
            (secs(48 * HOUR), "2d"),
            (secs(48 * HOUR + HOUR), "2d1h"),
            (secs(8 * DAY - 1), "7d23h"),
            (secs(8 * DAY), "8d"),
            (secs(2 * 365 * DAY - 1), "729d"),
            (secs(2 * 365 * DAY), "2y"),
            (secs(2 * 365 * DAY + DAY), "2y1d"),
            (secs(8 * 365 * DAY - 1), "7y364d"),
            (secs(8 * 365 * DAY), "8y"),
            (secs(100 * 365 * DAY), "100y"),
        ];
        for (d, want) in cases {
            assert_eq!(human(*d), *want, "{d:?}");
        }
    }

    #[test]
    fn short_human_duration_follows_upstream_rules() {
        let cases: &[(SignedDuration, &str)] = &[
            (secs(-2), "<invalid>"),
            (secs(-1), "0s"),
            (secs(0), "0s"),
            (secs(59), "59s"),
            (secs(60), "1m"),
            (secs(HOUR - 1), "59m"),
            (secs(HOUR), "1h"),
            (secs(DAY - 1), "23h"),
            (secs(DAY), "1d"),
            (secs(365 * DAY - 1), "364d"),
            (secs(365 * DAY), "1y"),
            (secs(3 * 365 * DAY + 20 * DAY), "3y"),
        ];
        for (d, want) in cases {
            assert_eq!(short_human(*d), *want, "{d:?}");
        }
    }

    #[test]
    fn since_a_missing_timestamp_is_unknown() {
        let now: Timestamp = "2025-05-01T12:00:00Z".parse().expect("timestamp");
        assert_eq!(since(None, now), "<unknown>");
        let at: Timestamp = "2025-05-01T11:56:58Z".parse().expect("timestamp");
        assert_eq!(since(Some(at), now), "3m2s");
    }
}
