pub mod admin;
pub mod dev;
pub mod sessions;
pub mod tokens;
