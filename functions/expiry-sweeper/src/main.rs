//! The expiry-sweeper Lambda: builds the AWS adapters once per cold start, then sweeps on each
//! scheduled event.

use std::sync::Arc;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use entryguard::runtime::{RandomIds, SystemClock};
use entryguard_expiry_sweeper::SweepSummary;
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let backend = entryguard_aws::cold_start(
        "expiry-sweeper",
        entryguard_aws::Services {
            dynamodb: true,
            sqs: true,
            sts: true,
        },
    )
    .await?;
    let app = backend.app(Arc::new(SystemClock), Arc::new(RandomIds), None);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<EventBridgeEvent<serde_json::Value>>| {
            let app = app.clone();
            async move {
                // A failed sweep fails the invocation, so it shows in the function's error metric;
                // the next minute's sweep picks up where this one stopped.
                let remaining = std::time::Duration::from_millis(event.context.deadline)
                    .saturating_sub(
                        std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .unwrap_or_default(),
                    );
                let options = entryguard_expiry_sweeper::options_for(remaining);
                let summary: SweepSummary =
                    entryguard_expiry_sweeper::handle_schedule(&app, event.payload, options)
                        .await?;
                Ok::<SweepSummary, Error>(summary)
            }
        },
    ))
    .await
}
