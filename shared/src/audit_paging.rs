//! One page of an organization's audit log, as both stores read it: newest first between two
//! sort keys (`keys::audit_key`), events kept when they match the query's filters, the next
//! page starting below the last event returned. Each store only reads keys in that range.

use crate::domain::audit::{AuditEvent, AuditPage, AuditQuery};
use crate::keys::time_key;

/// Below every sort key (they start with a digit); DynamoDB refuses an empty one.
const BEFORE_ALL: &str = " ";
/// Above every sort key with the same time prefix, and above every sort key at all.
const AFTER: &str = "~";

pub struct AuditPager<'q> {
    query: &'q AuditQuery,
    limit: usize,
    lower: String,
    /// Not itself part of the page: past the query's end, or the cursor (already returned).
    upper: String,
    items: Vec<AuditEvent>,
    last_key: Option<String>,
}

impl<'q> AuditPager<'q> {
    pub fn new(query: &'q AuditQuery) -> Self {
        let lower = query
            .from
            .map(time_key)
            .unwrap_or_else(|| BEFORE_ALL.to_owned());
        let mut upper = match query.to {
            Some(to) => format!("{}{AFTER}", time_key(to)),
            None => AFTER.to_owned(),
        };
        if let Some(cursor) = query.cursor.as_ref().filter(|c| **c < upper) {
            upper = cursor.clone();
        }
        Self {
            query,
            limit: query.limit.max(1),
            lower,
            upper,
            items: Vec::new(),
            last_key: None,
        }
    }

    /// The sort keys to read, newest first: from `upper` (a store that reads it inclusively
    /// passes it to `push`, which leaves it out) down to `lower`. `None` when no key fits.
    pub fn range(&self) -> Option<(String, String)> {
        (self.lower < self.upper).then(|| (self.lower.clone(), self.upper.clone()))
    }

    /// Takes the next event read, newest first, with its sort key; answers whether the page
    /// wants more.
    pub fn push(&mut self, key: &str, event: AuditEvent) -> bool {
        if key < self.upper.as_str() && self.query.matches(&event) {
            self.items.push(event);
            self.last_key = Some(key.to_owned());
        }
        self.items.len() < self.limit
    }

    /// The page; it has a cursor when it is full, since more may follow.
    pub fn finish(self) -> AuditPage {
        let next_cursor = if self.items.len() == self.limit {
            self.last_key
        } else {
            None
        };
        AuditPage {
            items: self.items,
            next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::domain::audit::{AuditType, Outcome};
    use crate::domain::ids::{AuditId, OrgId};
    use crate::keys::audit_key;

    fn event(minute: u32, kind: AuditType) -> AuditEvent {
        AuditEvent {
            id: AuditId::from_uuid(uuid::Uuid::from_u128(minute.into())),
            org_id: OrgId::from_uuid(uuid::Uuid::from_u128(1)),
            time: Utc.with_ymd_and_hms(2026, 1, 1, 0, minute, 0).unwrap(),
            kind,
            actor_id: None,
            actor_email: None,
            ip: None,
            session_id: None,
            resource_id: None,
            outcome: Outcome::Success,
            message: String::new(),
        }
    }

    #[test]
    fn a_page_skips_the_cursor_and_unmatched_events_and_ends_with_a_cursor_when_full() {
        let events: Vec<_> = (0..5).rev().map(|m| event(m, AuditType::Login)).collect();
        let query = AuditQuery {
            kind: Some(AuditType::Login),
            cursor: Some(audit_key(&events[0])),
            limit: 2,
            ..Default::default()
        };
        let mut page = AuditPager::new(&query);
        let (lower, upper) = page.range().unwrap();
        assert_eq!((lower.as_str(), upper), (BEFORE_ALL, audit_key(&events[0])));
        // A store that reads its upper bound inclusively hands the cursor back first.
        assert!(page.push(&audit_key(&events[0]), events[0].clone()));
        assert!(page.push(&audit_key(&events[1]), event(3, AuditType::AdminChange)));
        assert!(page.push(&audit_key(&events[2]), events[2].clone()));
        assert!(!page.push(&audit_key(&events[3]), events[3].clone()));
        let page = page.finish();
        assert_eq!(page.items, vec![events[2].clone(), events[3].clone()]);
        assert_eq!(page.next_cursor, Some(audit_key(&events[3])));
    }

    #[test]
    fn a_short_page_has_no_cursor_and_an_inverted_range_reads_nothing() {
        let query = AuditQuery {
            limit: 3,
            ..Default::default()
        };
        let mut page = AuditPager::new(&query);
        let e = event(1, AuditType::Login);
        assert!(page.push(&audit_key(&e), e));
        assert_eq!(page.finish().next_cursor, None);

        let inverted = AuditQuery {
            from: Some(Utc.with_ymd_and_hms(2026, 1, 1, 0, 3, 0).unwrap()),
            to: Some(Utc.with_ymd_and_hms(2026, 1, 1, 0, 2, 0).unwrap()),
            limit: 3,
            ..Default::default()
        };
        assert_eq!(AuditPager::new(&inverted).range(), None);
    }
}
