//! The local stand-in for the sign-in directory: it records who was invited and who was
//! disabled in the embedded database (the local runner's development login stands in for the
//! sign-in itself), so the runner and the tests see exactly what a user pool would be asked.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::kv::{self, Kv};
use crate::domain::model::Email;
use crate::ports::directory::{Directory, DirectoryError};
use crate::ports::store::StoreError;

/// What the directory knows of one person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Invitation {
    pub email: Email,
    /// How many invitations were sent.
    pub invitations: u32,
    pub enabled: bool,
}

#[derive(Clone)]
pub struct LocalDirectory {
    kv: Kv,
    /// Makes the next calls fail, for tests of what a failing directory leaves behind.
    failing: Arc<Mutex<Option<DirectoryError>>>,
}

fn key(email: &Email) -> String {
    format!("directory/{email}")
}

fn unavailable(e: StoreError) -> DirectoryError {
    DirectoryError::Unavailable(e.to_string())
}

impl LocalDirectory {
    pub fn new(kv: Kv) -> Self {
        Self {
            kv,
            failing: Arc::default(),
        }
    }

    /// Every person the directory was asked about, by e-mail.
    pub fn people(&self) -> Result<Vec<Invitation>, StoreError> {
        Ok(self
            .kv
            .scan("directory/", false, usize::MAX)?
            .into_iter()
            .map(|(_, p)| p)
            .collect())
    }

    pub fn person(&self, email: &Email) -> Result<Option<Invitation>, StoreError> {
        self.kv.get(&key(email))
    }

    /// From now on every call fails as `unavailable` says, until [`Self::recover`].
    pub fn fail(&self, unavailable: bool) {
        *self.failing.lock().expect("not poisoned") = Some(if unavailable {
            DirectoryError::Unavailable("simulated outage".into())
        } else {
            DirectoryError::Rejected("simulated refusal".into())
        });
    }

    pub fn recover(&self) {
        *self.failing.lock().expect("not poisoned") = None;
    }

    fn check(&self) -> Result<(), DirectoryError> {
        match &*self.failing.lock().expect("not poisoned") {
            None => Ok(()),
            Some(DirectoryError::Unavailable(m)) => Err(DirectoryError::Unavailable(m.clone())),
            Some(DirectoryError::Rejected(m)) => Err(DirectoryError::Rejected(m.clone())),
        }
    }

    fn update(
        &self,
        email: &Email,
        change: impl FnOnce(&mut Invitation),
    ) -> Result<(), DirectoryError> {
        self.check()?;
        self.kv
            .write(|t| {
                let mut person = kv::get::<Invitation>(t, &key(email))?.unwrap_or(Invitation {
                    email: email.clone(),
                    invitations: 0,
                    enabled: false,
                });
                change(&mut person);
                kv::put(t, &key(email), &person)
            })
            .map_err(unavailable)
    }
}

#[async_trait]
impl Directory for LocalDirectory {
    async fn invite(&self, email: &Email) -> Result<(), DirectoryError> {
        tracing::debug!("invitation recorded by the local directory");
        self.update(email, |p| {
            p.invitations += 1;
            p.enabled = true;
        })
    }

    async fn disable(&self, email: &Email) -> Result<(), DirectoryError> {
        self.update(email, |p| p.enabled = false)
    }
}
