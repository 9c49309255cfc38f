//! The sign-in directory on a Cognito user pool: an invitation is `AdminCreateUser` (Cognito
//! e-mails it with a temporary password), removal is `AdminDisableUser` plus a global sign-out.

use async_trait::async_trait;
use aws_sdk_cognitoidentityprovider::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_cognitoidentityprovider::types::{AttributeType, DeliveryMediumType};
use aws_sdk_cognitoidentityprovider::Client;

use entryguard::domain::model::Email;
use entryguard::ports::directory::{Directory, DirectoryError};

use crate::sdk_error::{facts, is_server_code, is_throttling_code, ErrorFacts, Stage};

pub struct CognitoDirectory {
    client: Client,
    user_pool_id: String,
}

impl CognitoDirectory {
    pub fn new(client: Client, user_pool_id: impl Into<String>) -> Self {
        Self {
            client,
            user_pool_id: user_pool_id.into(),
        }
    }
}

/// Throttling, timeouts, the network and the service's own failures pass; everything else
/// (permissions, a malformed address, a missing pool) needs an operator.
fn classify(f: &ErrorFacts) -> DirectoryError {
    let transient = match f.stage {
        Stage::Timeout | Stage::Dispatch | Stage::Response => true,
        Stage::Construction => false,
        Stage::Service => {
            f.is_server_fault()
                || f.code()
                    .is_some_and(|c| is_throttling_code(c) || is_server_code(c))
        }
    };
    if transient {
        DirectoryError::Unavailable(f.describe())
    } else {
        DirectoryError::Rejected(f.describe())
    }
}

fn sdk<E>(err: &SdkError<E>) -> ErrorFacts
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    facts(err)
}

fn attribute(name: &str, value: &str) -> Result<AttributeType, DirectoryError> {
    AttributeType::builder()
        .name(name)
        .value(value)
        .build()
        .map_err(|e| DirectoryError::Rejected(e.to_string()))
}

#[async_trait]
impl Directory for CognitoDirectory {
    async fn invite(&self, email: &Email) -> Result<(), DirectoryError> {
        let created = self
            .client
            .admin_create_user()
            .user_pool_id(&self.user_pool_id)
            .username(email.as_str())
            .user_attributes(attribute("email", email.as_str())?)
            // The address is the one the admin typed and the invitation goes to it: signing in
            // with the temporary password proves it.
            .user_attributes(attribute("email_verified", "true")?)
            .desired_delivery_mediums(DeliveryMediumType::Email)
            .send()
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(e) if sdk(&e).code() == Some("UsernameExistsException") => {
                // Someone removed earlier and added again: their account comes back.
                self.client
                    .admin_enable_user()
                    .user_pool_id(&self.user_pool_id)
                    .username(email.as_str())
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| classify(&sdk(&e)))
            }
            Err(e) => Err(classify(&sdk(&e))),
        }
    }

    async fn disable(&self, email: &Email) -> Result<(), DirectoryError> {
        let disabled = self
            .client
            .admin_disable_user()
            .user_pool_id(&self.user_pool_id)
            .username(email.as_str())
            .send()
            .await;
        match disabled {
            Ok(_) => {}
            Err(e) if sdk(&e).code() == Some("UserNotFoundException") => return Ok(()),
            Err(e) => return Err(classify(&sdk(&e))),
        }
        match self
            .client
            .admin_user_global_sign_out()
            .user_pool_id(&self.user_pool_id)
            .username(email.as_str())
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if sdk(&e).code() == Some("UserNotFoundException") => Ok(()),
            Err(e) => Err(classify(&sdk(&e))),
        }
    }
}

/// Where no user pool is configured (the rule worker and the sweeper, which never manage
/// users): every change is refused with a message that names the setting.
pub struct NoDirectory;

#[async_trait]
impl Directory for NoDirectory {
    async fn invite(&self, _: &Email) -> Result<(), DirectoryError> {
        Err(DirectoryError::Rejected(
            "no sign-in directory is configured (USER_POOL_ID)".into(),
        ))
    }

    async fn disable(&self, email: &Email) -> Result<(), DirectoryError> {
        self.invite(email).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_and_outages_pass_and_refusals_need_an_operator() {
        let unavailable = |f: ErrorFacts| matches!(classify(&f), DirectoryError::Unavailable(_));
        assert!(unavailable(ErrorFacts::service(
            "TooManyRequestsException",
            400,
            "slow down"
        )));
        assert!(unavailable(ErrorFacts::service(
            "InternalErrorException",
            500,
            "oops"
        )));
        assert!(!unavailable(ErrorFacts::service(
            "NotAuthorizedException",
            400,
            "no"
        )));
        assert!(!unavailable(ErrorFacts::service(
            "ResourceNotFoundException",
            400,
            "no pool"
        )));
        assert!(!unavailable(ErrorFacts::service(
            "InvalidParameterException",
            400,
            "bad"
        )));
        let mut timeout = ErrorFacts::service("x", 0, "late");
        timeout.stage = Stage::Timeout;
        timeout.code = None;
        timeout.status = None;
        assert!(unavailable(timeout));
    }
}
