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
        /// The command and its arguments, after `--`
        #[arg(required = true, last = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff)
    Man,
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
