//! A small layer over one redb table of string keys and JSON values. Keys carry prefixes the
//! way a single-table DynamoDB design does, so prefix scans serve as indexes.

use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, Table, TableDefinition};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::ports::store::StoreError;

const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");

/// A handle on the embedded database, shared by the store, the queue and the simulated cloud.
#[derive(Clone)]
pub struct Kv {
    db: Arc<Database>,
    /// Whether commits wait for the disk; an in-memory database has nothing to make durable.
    durable: bool,
}

pub type KvTable<'t> = Table<'t, &'static str, &'static [u8]>;

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl Kv {
    /// Opens (or creates) the database file at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::init(Database::create(path).map_err(unavailable)?, true)
    }

    /// A database that lives in memory only, for tests.
    pub fn in_memory() -> Self {
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .expect("an in-memory database can always be created");
        Self::init(db, false).expect("an in-memory table can always be created")
    }

    fn init(db: Database, durable: bool) -> Result<Self, StoreError> {
        let txn = db.begin_write().map_err(unavailable)?;
        txn.open_table(KV).map_err(unavailable)?;
        txn.commit().map_err(unavailable)?;
        Ok(Self {
            db: Arc::new(db),
            durable,
        })
    }

    /// Runs `f` in one write transaction; it commits only if `f` succeeds.
    pub fn write<R, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&mut KvTable<'_>) -> Result<R, E>,
    ) -> Result<R, E> {
        let mut txn = self.db.begin_write().map_err(unavailable)?;
        if !self.durable {
            txn.set_durability(redb::Durability::None)
                .map_err(unavailable)?;
        }
        let result = {
            let mut table = txn.open_table(KV).map_err(unavailable)?;
            f(&mut table)?
        };
        txn.commit().map_err(unavailable)?;
        Ok(result)
    }

    /// Runs `f` on a consistent read-only snapshot.
    pub fn read<R>(
        &self,
        f: impl FnOnce(&redb::ReadOnlyTable<&'static str, &'static [u8]>) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let table = txn.open_table(KV).map_err(unavailable)?;
        f(&table)
    }

    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        self.read(|t| get(t, key))
    }

    /// Values under `prefix` in key order (reversed with `newest_first`), at most `limit`.
    pub fn scan<T: DeserializeOwned>(
        &self,
        prefix: &str,
        newest_first: bool,
        limit: usize,
    ) -> Result<Vec<(String, T)>, StoreError> {
        self.read(|t| scan_range(t, prefix, prefix, &prefix_end(prefix), newest_first, limit))
    }
}

pub fn get<T: DeserializeOwned>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<T>, StoreError> {
    match table.get(key).map_err(unavailable)? {
        Some(v) => serde_json::from_slice(v.value())
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("{key}: {e}"))),
        None => Ok(None),
    }
}

pub fn put<T: Serialize>(table: &mut KvTable<'_>, key: &str, value: &T) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    table.insert(key, bytes.as_slice()).map_err(unavailable)?;
    Ok(())
}

pub fn delete(table: &mut KvTable<'_>, key: &str) -> Result<bool, StoreError> {
    Ok(table.remove(key).map_err(unavailable)?.is_some())
}

/// Entries with keys in `[from, to)` that start with `prefix`.
pub fn scan_range<T: DeserializeOwned>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    prefix: &str,
    from: &str,
    to: &str,
    reverse: bool,
    limit: usize,
) -> Result<Vec<(String, T)>, StoreError> {
    let range = table.range(from..to).map_err(unavailable)?;
    let mut out = Vec::new();
    let mut push = |item: Result<
        (redb::AccessGuard<'_, &str>, redb::AccessGuard<'_, &[u8]>),
        redb::StorageError,
    >|
     -> Result<bool, StoreError> {
        let (k, v) = item.map_err(unavailable)?;
        let key = k.value();
        if key.starts_with(prefix) {
            let value = serde_json::from_slice(v.value())
                .map_err(|e| StoreError::Corrupt(format!("{key}: {e}")))?;
            out.push((key.to_owned(), value));
        }
        Ok(out.len() < limit)
    };
    if reverse {
        for item in range.rev() {
            if !push(item)? {
                break;
            }
        }
    } else {
        for item in range {
            if !push(item)? {
                break;
            }
        }
    }
    Ok(out)
}

/// The smallest key greater than every key that starts with `prefix`.
pub fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}
