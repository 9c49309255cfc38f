//! The store contract on the embedded store.

use std::sync::Arc;

use entryguard::contract::run_store_contract;
use entryguard::embedded::{EmbeddedStore, Kv};

#[tokio::test]
async fn embedded_store_keeps_the_store_contract() {
    run_store_contract(Arc::new(EmbeddedStore::new(Kv::in_memory()))).await;
}
