//! Per-key exponential back-off, as client-go's `flowcontrol.Backoff` that the kubelet uses
//! for container restarts (CrashLoopBackOff) and image pulls (ImagePullBackOff): the first
//! failure waits `initial`, every further one doubles it up to `max`, and a key left alone
//! for twice `max` starts over.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

/// The kubelet's back-off for restarts and pulls: 10 s doubling to 5 min.
pub const INITIAL: Duration = Duration::from_secs(10);
pub const MAX: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy)]
struct Entry {
    backoff: Duration,
    last_update: Instant,
}

/// Back-off periods by key.
#[derive(Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    entries: HashMap<String, Entry>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(INITIAL, MAX)
    }
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff { initial, max, entries: HashMap::new() }
    }

    fn expired(&self, entry: &Entry, now: Instant) -> bool {
        now.saturating_duration_since(entry.last_update) > self.max * 2
    }

    /// The current period of `key` (zero when it has none).
    pub fn get(&self, key: &str) -> Duration {
        self.entries.get(key).map(|e| e.backoff).unwrap_or_default()
    }

    /// Records a failure of `key` at `now`: the period starts at `initial` or doubles.
    pub fn next(&mut self, key: &str, now: Instant) {
        let fresh = Entry { backoff: self.initial, last_update: now };
        let entry = match self.entries.get(key) {
            Some(e) if !self.expired(e, now) => Entry { backoff: (e.backoff * 2).min(self.max), last_update: now },
            _ => fresh,
        };
        self.entries.insert(key.to_string(), entry);
    }

    /// Whether `key` is still backing off from an event at `event_time` (the container's
    /// finish, for restarts).
    pub fn in_backoff_since(&self, key: &str, event_time: Instant, now: Instant) -> bool {
        match self.entries.get(key) {
            Some(e) if !self.expired(e, now) => now.saturating_duration_since(event_time) < e.backoff,
            _ => false,
        }
    }

    /// Whether `key` is still backing off from its last recorded failure (image pulls).
    pub fn in_backoff_since_update(&self, key: &str, now: Instant) -> bool {
        match self.entries.get(key) {
            Some(e) if !self.expired(e, now) => now.saturating_duration_since(e.last_update) < e.backoff,
            _ => false,
        }
    }

    /// When the back-off of `key` from `event_time` ends.
    pub fn ends_at(&self, key: &str, event_time: Instant) -> Instant {
        event_time + self.get(key)
    }

    /// Forgets keys nobody failed for twice `max`.
    pub fn gc(&mut self, now: Instant) {
        let max = self.max;
        self.entries.retain(|_, e| now.saturating_duration_since(e.last_update) <= max * 2);
    }

    /// Forgets every key starting with `prefix` (a pod that went away).
    pub fn forget_prefix(&mut self, prefix: &str) {
        self.entries.retain(|k, _| !k.starts_with(prefix));
    }
}

/// A duration as Go's `time.Duration.String` prints whole seconds: `10s`, `1m20s`, `5m0s`.
pub fn go_string(d: Duration) -> String {
    let secs = d.as_secs();
    match (secs / 3600, (secs / 60) % 60, secs % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, m, s) => format!("{h}h{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn doubles_to_the_cap_and_resets_after_twice_the_cap() {
        let mut b = Backoff::default();
        let t0 = Instant::now();
        assert!(!b.in_backoff_since("k", t0, t0), "no failure yet");
        let mut periods = Vec::new();
        let mut now = t0;
        for _ in 0..7 {
            b.next("k", now);
            periods.push(b.get("k").as_secs());
            now += Duration::from_secs(1);
        }
        assert_eq!(periods, [10, 20, 40, 80, 160, 300, 300]);
        // Within the period since the container finished: backing off; after it: not.
        assert!(b.in_backoff_since("k", now, now + Duration::from_secs(299)));
        assert!(!b.in_backoff_since("k", now, now + Duration::from_secs(300)));
        // Left alone for more than 2 x max: starts over at 10 s.
        let later = now + Duration::from_secs(601);
        assert!(!b.in_backoff_since("k", later, later));
        b.next("k", later);
        assert_eq!(b.get("k"), Duration::from_secs(10));
        assert!(b.in_backoff_since_update("k", later + Duration::from_secs(9)));
        assert!(!b.in_backoff_since_update("k", later + Duration::from_secs(10)));
        b.forget_prefix("k");
        assert_eq!(b.get("k"), Duration::ZERO);
    }

    #[test]
    fn go_duration_strings() {
        let table = [(10, "10s"), (80, "1m20s"), (300, "5m0s"), (3600, "1h0m0s")];
        for (secs, want) in table {
            assert_eq!(go_string(Duration::from_secs(secs)), want);
        }
    }
}
