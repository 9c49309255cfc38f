pub mod admin;
pub mod dev;
pub mod live;
pub mod sessions;
pub mod tokens;
