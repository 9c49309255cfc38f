use uuid::Uuid;

/// The only source of randomness for the use cases: new ids and secret tokens.
pub trait IdSource: Send + Sync {
    fn uuid(&self) -> Uuid;
    /// 32 random bytes, hex-encoded: for bearer tokens and lease owners.
    fn token(&self) -> String;
}
