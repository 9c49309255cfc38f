//! Warming the SDK clients during a Lambda's init. A client's first call pays for what later
//! calls reuse: resolving the endpoint and the credentials, the TCP connection and — in AWS —
//! the TLS handshake, most of a cold first call. Init runs before the first event (and, with
//! provisioned concurrency or SnapStart-like pre-init, before any user waits), so one cheap
//! call per service there takes that cost off the first user's request.

use std::time::{Duration, Instant};

use crate::AwsBackend;

/// Which services a function talks to on its hot path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Services {
    pub dynamodb: bool,
    pub sqs: bool,
    /// STS: the worker and the sweeper assume customers' roles.
    pub sts: bool,
}

/// How long each warming call took (`None`: not asked for, or it failed).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Warmed {
    pub dynamodb: Option<Duration>,
    pub sqs: Option<Duration>,
    pub sts: Option<Duration>,
}

async fn timed<T, E: std::fmt::Display>(
    service: &'static str,
    call: impl std::future::Future<Output = Result<T, E>>,
) -> Option<Duration> {
    let started = Instant::now();
    match call.await {
        Ok(_) => Some(started.elapsed()),
        Err(error) => {
            // Only a head start lost: the first real request connects as it always did.
            tracing::warn!(service, %error, "could not warm the client");
            None
        }
    }
}

impl AwsBackend {
    /// One cheap call per service, all at once: a read of an item that does not exist
    /// (DynamoDB), the queue's ARN (SQS), `GetCallerIdentity` (STS, which needs no
    /// permission). Never fails: a call that fails is logged and the function starts anyway.
    pub async fn warm(&self, services: Services) -> Warmed {
        let dynamodb = async {
            if !services.dynamodb {
                return None;
            }
            timed("dynamodb", self.store.warm_up()).await
        };
        let sqs = async {
            if !services.sqs {
                return None;
            }
            timed("sqs", self.queue.warm_up()).await
        };
        let sts = async {
            if !services.sts {
                return None;
            }
            // Every client built from the deployment's configuration shares its connection
            // pool (`sdk_config`), so the customers' STS and EC2 clients reuse this one.
            let client = aws_sdk_sts::Client::new(&self.sdk);
            timed("sts", client.get_caller_identity().send()).await
        };
        let (dynamodb, sqs, sts) = tokio::join!(dynamodb, sqs, sts);
        let warmed = Warmed { dynamodb, sqs, sts };
        tracing::info!(?warmed, "warmed the SDK clients");
        warmed
    }
}
