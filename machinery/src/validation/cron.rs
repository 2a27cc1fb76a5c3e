//! CronJob schedules: the standard five-field cron format and `@` descriptors, checked the
//! way upstream's cron parser checks them, with its error messages.

/// The inclusive range of one cron field, and its names (`jan`, `sun`, ...).
struct Bounds {
    min: u64,
    max: u64,
    names: &'static [(&'static str, u64)],
}

const MINUTES: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
};
const HOURS: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
};
const DOM: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
};
const MONTHS: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        ("jan", 1),
        ("feb", 2),
        ("mar", 3),
        ("apr", 4),
        ("may", 5),
        ("jun", 6),
        ("jul", 7),
        ("aug", 8),
        ("sep", 9),
        ("oct", 10),
        ("nov", 11),
        ("dec", 12),
    ],
};
const DOW: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &[
        ("sun", 0),
        ("mon", 1),
        ("tue", 2),
        ("wed", 3),
        ("thu", 4),
        ("fri", 5),
        ("sat", 6),
    ],
};

/// A parsed schedule (robfig/cron's SpecSchedule or ConstantDelaySchedule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// One bit per allowed value of each field; bit 63 marks a field written as `*`/`?`.
    Spec {
        minute: u64,
        hour: u64,
        dom: u64,
        month: u64,
        dow: u64,
        /// A `TZ=`/`CRON_TZ=` prefix.
        zone: Option<String>,
    },
    /// `@every DURATION`, in whole seconds.
    Every(std::time::Duration),
}

const STAR: u64 = 1 << 63;

/// Checks a schedule; `Err` carries upstream's message.
pub fn parse_standard(spec: &str) -> Result<(), String> {
    parse(spec).map(|_| ())
}

fn bits(start: u64, end: u64, step: u64) -> u64 {
    (start..=end).step_by(step.max(1) as usize).fold(0, |acc, v| acc | (1 << v))
}

/// Parses a schedule as upstream's cron parser (standard fields and descriptors).
pub fn parse(spec: &str) -> Result<Schedule, String> {
    if spec.is_empty() {
        return Err("empty spec string".to_string());
    }
    let mut spec = spec;
    let mut zone = None;
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        let eq = spec.find('=').unwrap_or(0);
        let end = spec.find(' ').unwrap_or(spec.len());
        let name = &spec[eq + 1..end];
        if let Err(e) = load_location(name) {
            return Err(format!("provided bad location {name}: {e}"));
        }
        zone = Some(name.to_string());
        spec = spec[end..].trim();
    }
    if spec.starts_with('@') {
        return parse_descriptor(spec, zone);
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    let mut field_bits = [0u64; 5];
    for ((field, bounds), out) in fields.iter().zip([&MINUTES, &HOURS, &DOM, &MONTHS, &DOW]).zip(field_bits.iter_mut()) {
        for expr in field.split(',').filter(|e| !e.is_empty()) {
            *out |= check_range(expr, bounds)?;
        }
    }
    let [minute, hour, dom, month, dow] = field_bits;
    Ok(Schedule::Spec { minute, hour, dom, month, dow, zone })
}

fn parse_descriptor(spec: &str, zone: Option<String>) -> Result<Schedule, String> {
    let every = |minute, hour, dom, month, dow| Schedule::Spec { minute, hour, dom, month, dow, zone: zone.clone() };
    let all = |r: &Bounds| bits(r.min, r.max, 1) | STAR;
    match spec {
        "@yearly" | "@annually" => Ok(every(1, 1, 1 << 1, 1 << 1, all(&DOW))),
        "@monthly" => Ok(every(1, 1, 1 << 1, all(&MONTHS), all(&DOW))),
        "@weekly" => Ok(every(1, 1, all(&DOM), all(&MONTHS), 1)),
        "@daily" | "@midnight" => Ok(every(1, 1, all(&DOM), all(&MONTHS), all(&DOW))),
        "@hourly" => Ok(every(1, all(&HOURS), all(&DOM), all(&MONTHS), all(&DOW))),
        _ => match spec.strip_prefix("@every ") {
            Some(d) => {
                parse_duration(d).map_err(|e| format!("failed to parse duration {spec}: {e}"))?;
                let span: jiff::Span = d.parse().map_err(|e| format!("failed to parse duration {spec}: {e}"))?;
                let secs = jiff::SignedDuration::try_from(span).map(|d| d.as_secs()).unwrap_or(0);
                // Like robfig/cron: at least a second, whole seconds.
                Ok(Schedule::Every(std::time::Duration::from_secs(u64::try_from(secs).unwrap_or(0).max(1))))
            }
            None => Err(format!("unrecognized descriptor: {spec}")),
        },
    }
}

impl Schedule {
    /// The first activation strictly after `after` (robfig/cron's `Next`), in `zone` unless
    /// the schedule names its own; None if nothing matches within five years.
    pub fn next(&self, after: jiff::Timestamp, zone: &jiff::tz::TimeZone) -> Option<jiff::Timestamp> {
        use jiff::ToSpan;
        use jiff::civil::DateTime;
        let (minute, hour, dom, month, dow, own) = match self {
            Schedule::Every(d) => {
                let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
                let base = jiff::Timestamp::from_second(after.as_second()).ok()?;
                return base.checked_add(jiff::SignedDuration::from_secs(secs)).ok();
            }
            Schedule::Spec { minute, hour, dom, month, dow, zone } => (*minute, *hour, *dom, *month, *dow, zone),
        };
        let tz = match own.as_deref() {
            Some(name) => jiff::tz::TimeZone::get(name).unwrap_or_else(|_| zone.clone()),
            None => zone.clone(),
        };
        let has = |b: u64, v: i8| b & (1u64 << u32::try_from(v).unwrap_or(0)) != 0;
        let day_matches = |t: &DateTime| {
            let dom_ok = has(dom, t.day());
            let dow_ok = has(dow, t.weekday().to_sunday_zero_offset());
            if dom & STAR != 0 || dow & STAR != 0 { dom_ok && dow_ok } else { dom_ok || dow_ok }
        };
        let z = after.to_zoned(tz.clone());
        let start = z.datetime();
        let mut t = DateTime::new(start.year(), start.month(), start.day(), start.hour(), start.minute(), start.second(), 0).ok()?.checked_add(1.second()).ok()?;
        let year_limit = t.year() + 5;
        let mut added = false;
        'wrap: loop {
            if t.year() > year_limit {
                return None;
            }
            while !has(month, t.month()) {
                if !added {
                    added = true;
                    t = DateTime::new(t.year(), t.month(), 1, 0, 0, 0, 0).ok()?;
                }
                t = t.checked_add(1.month()).ok()?;
                if t.month() == 1 {
                    continue 'wrap;
                }
            }
            while !day_matches(&t) {
                if !added {
                    added = true;
                    t = DateTime::new(t.year(), t.month(), t.day(), 0, 0, 0, 0).ok()?;
                }
                t = t.checked_add(1.day()).ok()?;
                if t.day() == 1 {
                    continue 'wrap;
                }
            }
            while !has(hour, t.hour()) {
                if !added {
                    added = true;
                    t = DateTime::new(t.year(), t.month(), t.day(), t.hour(), 0, 0, 0).ok()?;
                }
                t = t.checked_add(1.hour()).ok()?;
                if t.hour() == 0 {
                    continue 'wrap;
                }
            }
            while !has(minute, t.minute()) {
                if !added {
                    added = true;
                    t = DateTime::new(t.year(), t.month(), t.day(), t.hour(), t.minute(), 0, 0).ok()?;
                }
                t = t.checked_add(1.minute()).ok()?;
                if t.minute() == 0 {
                    continue 'wrap;
                }
            }
            // Standard schedules fire at second 0.
            while t.second() != 0 {
                if !added {
                    added = true;
                }
                t = t.checked_add(1.second()).ok()?;
                if t.second() == 0 {
                    continue 'wrap;
                }
            }
            break;
        }
        t.to_zoned(tz).ok().map(|z| z.timestamp())
    }
}

/// One comma-separated part of a field, as a bit set (robfig/cron's getRange).
fn check_range(expr: &str, r: &Bounds) -> Result<u64, String> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_and_high: Vec<&str> = range_and_step[0].split('-').collect();
    let single = low_and_high.len() == 1;
    let mut extra = 0;
    let (start, mut end) = if low_and_high[0] == "*" || low_and_high[0] == "?" {
        extra = STAR;
        (r.min, r.max)
    } else {
        let start = parse_int_or_name(low_and_high[0], r)?;
        match low_and_high.len() {
            1 => (start, start),
            2 => (start, parse_int_or_name(low_and_high[1], r)?),
            _ => return Err(format!("too many hyphens: {expr}")),
        }
    };
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let step = must_parse_int(range_and_step[1])?;
            if single {
                end = r.max;
            }
            if step > 1 {
                extra = 0;
            }
            step
        }
        _ => return Err(format!("too many slashes: {expr}")),
    };
    if start < r.min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            r.min
        ));
    }
    if end > r.max {
        return Err(format!(
            "end of range ({end}) above maximum ({}): {expr}",
            r.max
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    Ok(bits(start, end, step) | extra)
}

fn parse_int_or_name(expr: &str, r: &Bounds) -> Result<u64, String> {
    let lower = expr.to_lowercase();
    if let Some((_, v)) = r.names.iter().find(|(n, _)| *n == lower) {
        return Ok(*v);
    }
    must_parse_int(expr)
}

/// Go's `strconv.Atoi`, then the parser's non-negative check.
fn must_parse_int(expr: &str) -> Result<u64, String> {
    let digits = expr.strip_prefix(['+', '-']).unwrap_or(expr);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "failed to parse int from {expr}: strconv.Atoi: parsing {expr:?}: invalid syntax"
        ));
    }
    let num: i64 = expr.parse().map_err(|_| {
        format!(
            "failed to parse int from {expr}: strconv.Atoi: parsing {expr:?}: value out of range"
        )
    })?;
    if num < 0 {
        return Err(format!("negative number ({num}) not allowed: {expr}"));
    }
    Ok(num as u64)
}

/// Go's `time.ParseDuration`, only for validity.
pub fn parse_duration(s: &str) -> Result<(), String> {
    let invalid = || format!("time: invalid duration {s:?}");
    let mut rest = s.strip_prefix(['+', '-']).unwrap_or(s);
    if rest == "0" {
        return Ok(());
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_len];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(invalid());
        }
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        if unit.is_empty() {
            return Err(format!("time: missing unit in duration {s:?}"));
        }
        if !["ns", "us", "µs", "μs", "ms", "s", "m", "h"].contains(&unit) {
            return Err(format!("time: unknown unit {unit:?} in duration {s:?}"));
        }
        rest = &rest[unit_len..];
    }
    Ok(())
}

/// Whether a time zone name is known, like Go's `time.LoadLocation`.
pub fn load_location(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "UTC" || name == "Local" {
        return Ok(());
    }
    match jiff::tz::TimeZone::get(name) {
        Ok(_) => Ok(()),
        // Without a time zone database nothing can be said; accept rather than reject all.
        Err(_) if jiff::tz::db().available().next().is_none() => Ok(()),
        Err(_) => Err(format!("unknown time zone {name}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_activations() {
        let utc = jiff::tz::TimeZone::UTC;
        let at = |s: &str| -> jiff::Timestamp { s.parse().expect("time") };
        let next = |spec: &str, after: &str| parse(spec).expect("schedule").next(at(after), &utc).map(|t| t.to_string());
        assert_eq!(next("* * * * *", "2025-03-01T10:15:30Z").as_deref(), Some("2025-03-01T10:16:00Z"));
        assert_eq!(next("*/5 * * * *", "2025-03-01T10:15:00Z").as_deref(), Some("2025-03-01T10:20:00Z"));
        assert_eq!(next("0 0 * * *", "2025-12-31T23:59:59Z").as_deref(), Some("2026-01-01T00:00:00Z"));
        // Day of month and day of week both restricted: either matches (2025-03-03 is a Monday).
        assert_eq!(next("0 9 15 * mon", "2025-03-01T00:00:00Z").as_deref(), Some("2025-03-03T09:00:00Z"));
        // One of them `*`: both must match.
        assert_eq!(next("0 9 * * mon", "2025-03-04T00:00:00Z").as_deref(), Some("2025-03-10T09:00:00Z"));
        assert_eq!(next("@monthly", "2025-03-01T00:00:00Z").as_deref(), Some("2025-04-01T00:00:00Z"));
        assert_eq!(next("0 0 30 2 *", "2025-01-01T00:00:00Z"), None);
        let berlin = "TZ=Europe/Berlin 0 12 * * *";
        if jiff::tz::TimeZone::get("Europe/Berlin").is_ok() {
            assert_eq!(next(berlin, "2025-07-01T00:00:00Z").as_deref(), Some("2025-07-01T10:00:00Z"));
        }
    }

    #[test]
    fn schedules() {
        for ok in [
            "*/5 * * * *",
            "0 0 * * mon-fri",
            "@hourly",
            "@every 1h30m",
            "0 12 1 jan,jul *",
            "CRON_TZ=UTC 0 * * * *",
        ] {
            assert_eq!(parse_standard(ok), Ok(()), "{ok}");
        }
        let cases = [
            ("foo", "expected exactly 5 fields, found 1: [foo]"),
            ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
            ("60 * * * *", "end of range (60) above maximum (59): 60"),
            ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
            (
                "5-1 * * * *",
                "beginning of range (5) beyond end of range (1): 5-1",
            ),
            (
                "x * * * *",
                "failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax",
            ),
            (
                "*/0 * * * *",
                "step of range should be a positive number: */0",
            ),
            ("@foo", "unrecognized descriptor: @foo"),
            (
                "@every x",
                "failed to parse duration @every x: time: invalid duration \"x\"",
            ),
        ];
        for (spec, want) in cases {
            assert_eq!(parse_standard(spec), Err(want.to_string()), "{spec}");
        }
    }
}
