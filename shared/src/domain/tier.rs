//! Subscription tiers and the session limits that follow from a tier and a user's roles.
//!
//! The product docs disagree on the Free tier (4 h in the overview, 2 h in the failure guide);
//! we follow the overview: Free offers 1, 2 and 4 hours.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::net::ParseError;

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Tier {
    Free,
    Starter,
    Team,
    Business,
}

const FREE_DURATIONS: &[u8] = &[1, 2, 4];
const PAID_DURATIONS: &[u8] = &[1, 2, 4, 8, 12, 16, 24];

impl Tier {
    pub fn durations(self) -> &'static [u8] {
        match self {
            Tier::Free => FREE_DURATIONS,
            _ => PAID_DURATIONS,
        }
    }

    pub fn max_session_hours(self) -> u8 {
        match self {
            Tier::Free => 4,
            _ => 24,
        }
    }

    /// `None` means unlimited.
    pub fn max_concurrent_sessions(self) -> Option<u32> {
        match self {
            Tier::Free => Some(1),
            Tier::Starter => Some(3),
            Tier::Team | Tier::Business => None,
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tier::Free => "FREE",
            Tier::Starter => "STARTER",
            Tier::Team => "TEAM",
            Tier::Business => "BUSINESS",
        })
    }
}

impl FromStr for Tier {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        serde_json::from_value(serde_json::Value::String(s.to_ascii_uppercase())).map_err(|_| {
            ParseError(format!(
                "'{s}' is not a tier (FREE, STARTER, TEAM, BUSINESS)"
            ))
        })
    }
}

/// A whole number of hours between 1 and 24: a role's maximum or a requested duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "u8")]
pub struct Hours(u8);

impl Hours {
    pub const MAX: u8 = 24;

    pub fn new(h: i64) -> Result<Self, ParseError> {
        if (1..=i64::from(Self::MAX)).contains(&h) {
            Ok(Self(h as u8))
        } else {
            Err(ParseError(format!(
                "{h} is not a number of hours between 1 and 24"
            )))
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }

    pub fn as_duration(self) -> chrono::Duration {
        chrono::Duration::hours(i64::from(self.0))
    }
}

impl TryFrom<i64> for Hours {
    type Error = ParseError;
    fn try_from(h: i64) -> Result<Self, Self::Error> {
        Self::new(h)
    }
}

impl From<Hours> for u8 {
    fn from(h: Hours) -> Self {
        h.0
    }
}

/// What a user may do, from the most restrictive of their tier and all their roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionPolicy {
    pub allowed_durations: Vec<u8>,
    pub max_session_hours: u8,
    pub max_concurrent_sessions: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DurationError {
    #[error("Duration exceeds maximum allowed")]
    ExceedsMaximum { max_hours: u8 },
    #[error("Duration must be one of {} hours", list_hours(allowed))]
    NotOffered { allowed: Vec<u8> },
}

/// "1, 2 or 4" — for messages people read.
pub fn list_hours(hours: &[u8]) -> String {
    match hours {
        [] => "no".to_owned(),
        [one] => one.to_string(),
        [init @ .., last] => format!(
            "{} or {last}",
            init.iter()
                .map(u8::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

impl SessionPolicy {
    /// `role_limits` holds each of the user's roles' `maxSessionDurationHours` (None: no limit).
    pub fn new(tier: Tier, role_limits: impl IntoIterator<Item = Option<Hours>>) -> Self {
        let max = role_limits
            .into_iter()
            .flatten()
            .map(Hours::get)
            .fold(tier.max_session_hours(), u8::min);
        Self {
            allowed_durations: tier
                .durations()
                .iter()
                .copied()
                .filter(|d| *d <= max)
                .collect(),
            max_session_hours: max,
            max_concurrent_sessions: tier.max_concurrent_sessions(),
        }
    }

    pub fn check_duration(&self, hours: Hours) -> Result<(), DurationError> {
        if hours.get() > self.max_session_hours {
            return Err(DurationError::ExceedsMaximum {
                max_hours: self.max_session_hours,
            });
        }
        if !self.allowed_durations.contains(&hours.get()) {
            return Err(DurationError::NotOffered {
                allowed: self.allowed_durations.clone(),
            });
        }
        Ok(())
    }

    pub fn max_total(&self) -> chrono::Duration {
        chrono::Duration::hours(i64::from(self.max_session_hours))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(n: i64) -> Hours {
        Hours::new(n).unwrap()
    }

    #[test]
    fn tier_limits() {
        let free = SessionPolicy::new(Tier::Free, []);
        assert_eq!(free.allowed_durations, vec![1, 2, 4]);
        assert_eq!(free.max_session_hours, 4);
        assert_eq!(free.max_concurrent_sessions, Some(1));
        let starter = SessionPolicy::new(Tier::Starter, []);
        assert_eq!(starter.allowed_durations, vec![1, 2, 4, 8, 12, 16, 24]);
        assert_eq!(starter.max_concurrent_sessions, Some(3));
        for t in [Tier::Team, Tier::Business] {
            let p = SessionPolicy::new(t, []);
            assert_eq!(p.max_session_hours, 24);
            assert_eq!(p.max_concurrent_sessions, None);
        }
    }

    #[test]
    fn most_restrictive_role_wins_and_roles_only_lower() {
        let p = SessionPolicy::new(Tier::Team, [None, Some(h(12)), Some(h(8))]);
        assert_eq!(p.max_session_hours, 8);
        assert_eq!(p.allowed_durations, vec![1, 2, 4, 8]);
        let p = SessionPolicy::new(Tier::Free, [Some(h(24))]);
        assert_eq!(p.max_session_hours, 4);
        let p = SessionPolicy::new(Tier::Team, [Some(h(3))]);
        assert_eq!(p.allowed_durations, vec![1, 2]);
        assert_eq!(p.max_session_hours, 3);
    }

    #[test]
    fn duration_checks() {
        let p = SessionPolicy::new(Tier::Free, []);
        assert!(p.check_duration(h(2)).is_ok());
        assert_eq!(
            p.check_duration(h(8)),
            Err(DurationError::ExceedsMaximum { max_hours: 4 })
        );
        assert!(matches!(
            p.check_duration(h(3)),
            Err(DurationError::NotOffered { .. })
        ));
        assert!(Hours::new(0).is_err());
        assert!(Hours::new(25).is_err());
    }

    #[test]
    fn tier_parsing() {
        assert_eq!("team".parse::<Tier>().unwrap(), Tier::Team);
        assert!("gold".parse::<Tier>().is_err());
    }
}
