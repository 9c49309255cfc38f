//! The command line's definition: parsing, `--help`, shell completions and the man page all
//! come from it.

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "entryguard",
    version,
    about = "Just-in-time access to your organization's servers, from the terminal",
    after_help = "Exit codes: 0 success (session ACTIVE), 1 error, 2 bad command line, \
                  3 session PARTIAL, 4 session FAILED, 5 not signed in or token expired/revoked; \
                  `exec` exits with its command's code."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// The stored profile to use (one per deployment)
    #[arg(long, global = true, env = "ENTRYGUARD_PROFILE", default_value = crate::config::DEFAULT_PROFILE)]
    pub profile: String,
    /// The deployment's address, e.g. https://entryguard.example.com (overrides the profile's)
    #[arg(long, global = true, env = "ENTRYGUARD_API")]
    pub api: Option<String>,
    /// The API's IPv4-only host, where `start` proves your IPv4 address (overrides the
    /// profile's; `login` stores it)
    #[arg(long, global = true, env = "ENTRYGUARD_PROBE_V4", value_name = "URL", value_parser = probe_url)]
    pub probe_v4: Option<String>,
    /// The API's IPv6-only host, where `start` proves your IPv6 address (overrides the
    /// profile's; `login` stores it)
    #[arg(long, global = true, env = "ENTRYGUARD_PROBE_V6", value_name = "URL", value_parser = probe_url)]
    pub probe_v6: Option<String>,
    /// Print one JSON document on stdout (errors too: {"error": {"code", "message"}})
    #[arg(long, global = true)]
    pub json: bool,
    /// Print nothing but errors
    #[arg(long, short, global = true, conflicts_with = "json")]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Sign in with a personal API token (prompted for, read from stdin, or ENTRYGUARD_TOKEN)
    Login,
    /// Forget the profile's token
    Logout,
    /// Who you are and your live sessions
    #[command(visible_alias = "ls")]
    Status {
        /// Every session, ended ones too
        #[arg(long)]
        all: bool,
    },
    /// Start a session
    Start {
        /// How long, in hours (default: the shortest your plan offers)
        #[arg(long)]
        hours: Option<u32>,
        /// Show each resource's progress and wait until the session settles
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        wait_opts: WaitOpts,
        #[command(flatten)]
        address_opts: AddressOpts,
    },
    /// Stop a session (the only live one when no ID is given)
    Stop {
        /// The session's id
        #[arg(conflicts_with = "all")]
        id: Option<String>,
        /// Stop every live session
        #[arg(long)]
        all: bool,
    },
    /// Extend a session (the only live one when no ID is given)
    Extend {
        /// The session's id
        id: Option<String>,
        /// Hours to add (default: 2)
        #[arg(long)]
        hours: Option<u32>,
    },
    /// Run a command inside a session: start one (or reuse a live ACTIVE one), wait until it
    /// is ACTIVE, run the command, and stop the session it started when the command ends
    Exec {
        /// How long the session lasts at most, in hours (default: the shortest your plan offers)
        #[arg(long)]
        hours: Option<u32>,
        /// Always start a new session, even when one is live
        #[arg(long)]
        new: bool,
        #[command(flatten)]
        wait_opts: WaitOpts,
        #[command(flatten)]
        address_opts: AddressOpts,
        /// The command and its arguments, after `--`
        #[arg(required = true, last = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff)
    Man,
}

/// Which of your addresses a new session opens. By default both families: `GET /api/address`
/// on the probe hosts (`--probe-v4`, `--probe-v6`, the profile's, the web app's `/config.json`
/// beside the API, or else the API itself over each family) proves each address.
#[derive(Debug, Args)]
pub struct AddressOpts {
    /// Prove no other address: the session opens the address the start request comes from only
    #[arg(long)]
    pub no_probes: bool,
}

fn probe_url(value: &str) -> Result<String, String> {
    if crate::probes::is_http_url(value) {
        Ok(value.trim_end_matches('/').to_owned())
    } else {
        Err("an http:// or https:// URL, e.g. https://v6.entryguard.example.com".into())
    }
}

#[derive(Debug, Args)]
pub struct WaitOpts {
    /// Give up waiting after this many seconds
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    pub timeout: u64,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn the_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn completions_and_the_man_page_come_from_the_definition() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "entryguard", &mut script);
            let script = String::from_utf8(script).unwrap();
            for sub in ["login", "start", "exec", "extend"] {
                assert!(script.contains(sub), "{shell:?} completion lacks {sub}");
            }
        }
        let mut man = Vec::new();
        clap_mangen::Man::new(Cli::command())
            .render(&mut man)
            .unwrap();
        let man = String::from_utf8(man).unwrap();
        assert!(man.contains(".TH entryguard 1"), "{man}");
        assert!(man.contains("exec"), "{man}");
    }
}
