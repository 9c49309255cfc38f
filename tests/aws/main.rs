//! The AWS adapters, the runner on `--backend aws` and the Lambda binaries, against moto, one
//! test binary: every file is a module, so the suite links the AWS SDK and axum once instead of
//! once per file. Each test starts its own moto. `cargo test -p entryguard-tests --test aws
//! aws_flow::` runs one of them.

mod aws_firewall;
mod aws_flow;
mod aws_iam_policy;
mod aws_queue;
mod aws_reconcile;
mod aws_runner;
mod aws_secrets;
mod lambda_binaries;
