//! Personal API tokens: created by their owner, shown once, stored only as a hash, listable,
//! revocable, with an optional expiry and the time of last use.

use chrono::Duration;
use serde::Deserialize;
use thiserror::Error;

use crate::domain::audit::AuditType;
use crate::domain::ids::TokenId;
use crate::domain::model::Name;
use crate::domain::Timestamp;
use crate::ports::store::{PersonalToken, StoreError, TokenRecord};

use super::audit::Audit;
use super::auth::hash_token;
use super::{App, Identity};

/// Personal tokens start with this, so secret scanners and people can recognise them.
pub const TOKEN_PREFIX: &str = "egt_";
/// The most personal tokens one user may hold.
pub const MAX_TOKENS_PER_USER: usize = 50;
/// How often the time of last use is written: at most once a minute per token.
const LAST_USED_RESOLUTION_SECS: i64 = 60;

/// Days until a token expires: 1 to 365.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "i64")]
pub struct ExpiryDays(u16);

impl TryFrom<i64> for ExpiryDays {
    type Error = String;
    fn try_from(days: i64) -> Result<Self, String> {
        match u16::try_from(days) {
            Ok(d @ 1..=365) => Ok(Self(d)),
            _ => Err(format!("must be between 1 and 365 days, not {days}")),
        }
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewApiToken {
    /// Where the token is used, so its owner recognises it.
    pub name: Name,
    /// Days until the token stops working; absent or null for a token that lasts until revoked.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<u16>, minimum = 1, maximum = 365)
    )]
    pub expires_in_days: Option<ExpiryDays>,
}

/// A personal token as its owner sees it in the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTokenView {
    pub id: TokenId,
    pub name: Name,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
}

/// A token just created: the only time its secret is available.
#[derive(Debug)]
pub struct CreatedToken {
    pub view: ApiTokenView,
    pub token: String,
}

#[derive(Debug, Error)]
pub enum TokenError {
    #[error(
        "You already have {MAX_TOKENS_PER_USER} API tokens; revoke one you no longer use first"
    )]
    LimitReached,
    #[error("API token not found")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn view(record: &TokenRecord) -> Option<ApiTokenView> {
    let p = record.personal.as_ref()?;
    Some(ApiTokenView {
        id: p.id,
        name: p.name.clone(),
        created_at: record.created_at,
        expires_at: record.expires_at,
        last_used_at: record.last_used_at,
    })
}

impl App {
    pub async fn create_api_token(
        &self,
        who: &Identity,
        input: NewApiToken,
    ) -> Result<CreatedToken, TokenError> {
        let existing = self.store.list_personal_tokens(who.user.id).await?;
        if existing.len() >= MAX_TOKENS_PER_USER {
            return Err(TokenError::LimitReached);
        }
        let now = self.now();
        let token = format!("{TOKEN_PREFIX}{}", self.ids.token());
        let id = TokenId::from_uuid(self.ids.uuid());
        let record = TokenRecord {
            token_hash: hash_token(&token),
            user_id: who.user.id,
            created_at: now,
            expires_at: input
                .expires_in_days
                .map(|ExpiryDays(d)| now + Duration::days(i64::from(d))),
            personal: Some(PersonalToken {
                id,
                name: input.name,
            }),
            last_used_at: None,
        };
        self.store.put_token(&record).await?;
        let view = view(&record).expect("a personal token has a view");
        let expiry = match view.expires_at {
            Some(at) => format!("expires {}", at.to_rfc3339()),
            None => "no expiry".to_owned(),
        };
        self.audit(Audit::by(
            who,
            AuditType::Token,
            format!("Created API token '{}' ({id}, {expiry})", view.name),
        ))
        .await;
        Ok(CreatedToken { view, token })
    }

    pub async fn list_api_tokens(&self, who: &Identity) -> Result<Vec<ApiTokenView>, TokenError> {
        Ok(self
            .store
            .list_personal_tokens(who.user.id)
            .await?
            .iter()
            .filter_map(view)
            .collect())
    }

    pub async fn revoke_api_token(&self, who: &Identity, id: TokenId) -> Result<(), TokenError> {
        if !self.store.delete_personal_token(who.user.id, id).await? {
            return Err(TokenError::NotFound);
        }
        self.audit(Audit::by(
            who,
            AuditType::Token,
            format!("Revoked API token {id}"),
        ))
        .await;
        Ok(())
    }

    /// Notes a token's use, at most once a minute; a failure here never fails the request.
    pub(crate) async fn note_token_use(&self, record: &TokenRecord) {
        let now = self.now();
        let recent = record
            .last_used_at
            .is_some_and(|t| now - t < Duration::seconds(LAST_USED_RESOLUTION_SECS));
        if record.personal.is_none() || recent {
            return;
        }
        if let Err(error) = self.store.touch_token(&record.token_hash, now).await {
            tracing::warn!(%error, "could not record an API token's use");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_days_are_bounded() {
        assert!(ExpiryDays::try_from(0).is_err());
        assert!(ExpiryDays::try_from(366).is_err());
        assert!(ExpiryDays::try_from(-1).is_err());
        assert_eq!(ExpiryDays::try_from(365), Ok(ExpiryDays(365)));
        assert!(
            serde_json::from_str::<NewApiToken>(r#"{"name":"ci","expiresInDays":1.5}"#).is_err()
        );
        assert!(serde_json::from_str::<NewApiToken>(r#"{"name":"ci","extra":1}"#).is_err());
    }
}
