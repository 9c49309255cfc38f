pub mod admin;
pub mod dev;
pub mod live;
pub mod sessions;
pub mod signup;
pub mod tokens;
pub mod webhooks;
