//! How values are written inside the stores' sort keys. Both stores (redb and DynamoDB) order
//! records by these strings, and each other's cursors and migrations rely on the same form, so it
//! is defined once here rather than by either store.

use crate::domain::audit::AuditEvent;
use crate::domain::Timestamp;

/// A fixed-width, lexicographically ordered form of a timestamp for use inside keys.
pub fn time_key(t: Timestamp) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string()
}

/// An audit event's sort key within its organization's log: its time, then its id. It is also
/// the cursor a page hands out, so both stores must write it the same way.
pub fn audit_key(event: &AuditEvent) -> String {
    format!("{}/{}", time_key(event.time), event.id)
}
