//! The rule-worker Lambda: builds the AWS adapters once per cold start, then handles each SQS
//! batch, reporting the messages to retry as partial batch failures.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use entryguard::runtime::{RandomIds, SystemClock};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let backend = entryguard_aws::cold_start(
        "rule-worker",
        entryguard_aws::Services {
            dynamodb: true,
            sqs: true,
            sts: true,
        },
    )
    .await?;
    let mut app = backend.app(Arc::new(SystemClock), Arc::new(RandomIds), None);
    // The one process that sends webhooks; never with the development switch.
    app.notifier = entryguard::app::notifications::Notifier {
        sender: Arc::new(entryguard_webhooks::HttpWebhookSender::new(
            Default::default(),
        )),
        app_url: std::env::var(entryguard_aws::env_names::WEB_APP_URL).ok(),
    };
    let queue = backend.queue.clone();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let app = app.clone();
        let queue = queue.clone();
        async move {
            Ok::<SqsBatchResponse, Error>(
                entryguard_rule_worker::handle_sqs_event(&app, &*queue, event.payload).await,
            )
        }
    }))
    .await
}
