//! The DynamoDB store: the `Store` port on one table (the design is in infra/README.md).

pub mod error;
pub mod items;
mod store;

pub use error::DynamoError;
pub use store::DynamoStore;
