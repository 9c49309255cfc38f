use std::process::ExitCode;

use clap::Parser;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = entryguard_cli::args::Cli::parse();
    ExitCode::from(entryguard_cli::run(cli).await)
}
