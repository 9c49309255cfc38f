//! Fixed-window rate limits: at most `max` events per window, counted in the store so every API
//! instance and every worker shares one count.
//!
//! A fixed window (not a sliding one) because it is one atomic counter per window in the store —
//! one conditional write per request, nothing to read first. Its known weakness, up to twice the
//! limit around a window's edge, is bounded and is why the limits are set with room to spare.

use chrono::Duration;

use super::Timestamp;

/// At most `max` events per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub max: u32,
    pub window: Duration,
}

impl RateLimit {
    pub const fn per_minute(max: u32) -> Self {
        Self {
            max,
            window: Duration::seconds(60),
        }
    }

    /// The counter that counts `subject`'s events in the window containing `now`.
    pub fn counter(&self, subject: &str, now: Timestamp) -> WindowCounter {
        let length = self.window.num_seconds().max(1);
        let start = now.timestamp().div_euclid(length) * length;
        let ends_at = chrono::DateTime::from_timestamp(start + length, 0)
            .expect("a window ends within chrono's range");
        WindowCounter {
            key: format!("{subject}@{start}"),
            limit: self.max,
            ends_at,
        }
    }
}

/// One subject's counter in one window. The key names the window, so a counter never needs to be
/// reset: the next window simply counts under another key, and stale ones are only garbage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowCounter {
    pub key: String,
    pub limit: u32,
    /// When the window ends; the counter is worthless afterwards and may be forgotten.
    pub ends_at: Timestamp,
}

impl WindowCounter {
    /// How long until the window ends, in whole seconds (at least 1): what `Retry-After` says.
    pub fn retry_after_secs(&self, now: Timestamp) -> u64 {
        let millis = (self.ends_at - now).num_milliseconds().max(0) as u64;
        millis.div_ceil(1000).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn windows_are_aligned_and_keyed_by_their_start() {
        let limit = RateLimit::per_minute(5);
        let at = |s: i64| chrono::Utc.timestamp_opt(1_800_000_000 + s, 0).unwrap();
        // 1_800_000_000 is a multiple of 60.
        let a = limit.counter("user/x", at(0));
        let b = limit.counter("user/x", at(59));
        let c = limit.counter("user/x", at(60));
        assert_eq!(a, b);
        assert_ne!(a.key, c.key);
        assert_eq!(a.ends_at, at(60));
        assert_eq!(a.retry_after_secs(at(0)), 60);
        assert_eq!(a.retry_after_secs(at(59)), 1);
        assert_eq!(
            a.retry_after_secs(at(59) + Duration::milliseconds(500)),
            1,
            "never zero: the client must wait for the next window"
        );
        assert_eq!(a.retry_after_secs(at(120)), 1);
        assert_ne!(limit.counter("user/y", at(0)).key, a.key);
    }
}
