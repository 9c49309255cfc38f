//! Typed access to the organization-scoped documents of the store.

use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

use crate::domain::ids::OrgId;
use crate::domain::model::{Credential, Resource, Role};
use crate::domain::webhook::{WebhookDelivery, WebhookEndpoint};
use crate::ports::store::{DocKind, StoreError};

use super::App;

pub trait Doc: Serialize + DeserializeOwned + Send + Sync {
    const KIND: DocKind;
    fn uuid(&self) -> Uuid;
    fn org(&self) -> OrgId;
}

impl Doc for Role {
    const KIND: DocKind = DocKind::Role;
    fn uuid(&self) -> Uuid {
        *self.id.as_uuid()
    }
    fn org(&self) -> OrgId {
        self.org_id
    }
}

impl Doc for Resource {
    const KIND: DocKind = DocKind::Resource;
    fn uuid(&self) -> Uuid {
        *self.id.as_uuid()
    }
    fn org(&self) -> OrgId {
        self.org_id
    }
}

impl Doc for Credential {
    const KIND: DocKind = DocKind::Credential;
    fn uuid(&self) -> Uuid {
        *self.id.as_uuid()
    }
    fn org(&self) -> OrgId {
        self.org_id
    }
}

impl Doc for WebhookEndpoint {
    const KIND: DocKind = DocKind::WebhookEndpoint;
    fn uuid(&self) -> Uuid {
        *self.id.as_uuid()
    }
    fn org(&self) -> OrgId {
        self.org_id
    }
}

impl Doc for WebhookDelivery {
    const KIND: DocKind = DocKind::WebhookDelivery;
    fn uuid(&self) -> Uuid {
        *self.id.as_uuid()
    }
    fn org(&self) -> OrgId {
        self.org_id
    }
}

fn decode<T: DeserializeOwned>(v: serde_json::Value) -> Result<T, StoreError> {
    serde_json::from_value(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl App {
    pub async fn put_doc<T: Doc>(&self, doc: &T) -> Result<(), StoreError> {
        let value = serde_json::to_value(doc).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.store
            .put_doc(T::KIND, doc.org(), doc.uuid(), value)
            .await
    }

    pub async fn get_doc<T: Doc>(&self, org: OrgId, id: Uuid) -> Result<Option<T>, StoreError> {
        self.store
            .get_doc(T::KIND, org, id)
            .await?
            .map(decode)
            .transpose()
    }

    pub async fn list_docs<T: Doc>(&self, org: OrgId) -> Result<Vec<T>, StoreError> {
        self.store
            .list_docs(T::KIND, org)
            .await?
            .into_iter()
            .map(decode)
            .collect()
    }

    pub async fn delete_doc<T: Doc>(&self, org: OrgId, id: Uuid) -> Result<bool, StoreError> {
        self.store.delete_doc(T::KIND, org, id).await
    }
}
