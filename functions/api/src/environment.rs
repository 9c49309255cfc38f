//! The API function's environment: what infra/template.yaml must set for it (a test runs the
//! binary with exactly the template's variables and compares the names with this list).

use entryguard_aws::env_names as aws;

/// On a deployment without organizations, the first one is created with this administrator.
pub const BOOTSTRAP_ADMIN_ENV: &str = "ENTRYGUARD_BOOTSTRAP_ADMIN";
/// "true": people the user pool verified may create organizations (the stack's AllowSelfSignUp).
pub const SIGNUP_ENV: &str = "ENTRYGUARD_SIGNUP";
/// The principal customers trust in their role credentials.
pub const PRINCIPAL_ENV: &str = "ENTRYGUARD_PRINCIPAL";

/// Every variable the API binary reads.
pub const ENVIRONMENT: &[&str] = &[
    aws::TABLE_NAME,
    aws::QUEUE_URL,
    aws::KMS_KEY_ID,
    aws::USER_POOL_ID,
    aws::RUST_LOG,
    aws::METRICS_NAMESPACE,
    BOOTSTRAP_ADMIN_ENV,
    SIGNUP_ENV,
    PRINCIPAL_ENV,
    crate::oidc::ISSUER_ENV,
    crate::oidc::AUDIENCE_ENV,
];
