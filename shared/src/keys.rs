//! How values are written inside the stores' sort keys. Both stores (redb and DynamoDB) order
//! records by these strings, and each other's cursors and migrations rely on the same form, so it
//! is defined once here rather than by either store.

use crate::domain::Timestamp;

/// A fixed-width, lexicographically ordered form of a timestamp for use inside keys.
pub fn time_key(t: Timestamp) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string()
}
