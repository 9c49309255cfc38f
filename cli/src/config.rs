//! Stored profiles: one API address and token per deployment, in the platform's config
//! directory, readable by its owner only.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::CliError;

pub const DEFAULT_PROFILE: &str = "default";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Profile {
    pub api: String,
    pub token: String,
    /// The deployment's IPv4-only and IPv6-only host names of the API, for address proofs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_v4: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_v6: Option<String>,
}

impl Profile {
    pub fn probes(&self) -> crate::probes::ProbeUrls {
        crate::probes::ProbeUrls {
            v4: self.probe_v4.clone(),
            v6: self.probe_v6.clone(),
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Profiles {
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

/// `<config dir>/entryguard/profiles.json`.
pub fn path() -> Result<PathBuf, CliError> {
    let base = dirs::config_dir()
        .ok_or_else(|| CliError::Local("this system has no configuration directory".into()))?;
    Ok(base.join("entryguard").join("profiles.json"))
}

impl Profiles {
    pub fn load(path: &Path) -> Result<Self, CliError> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| {
                CliError::Local(format!("{} is not a profile file: {e}", path.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(CliError::Local(format!(
                "cannot read {}: {e}",
                path.display()
            ))),
        }
    }

    /// Writes through a fresh owner-only file renamed over the old one: the token is never
    /// readable by others, not even for a moment, and a crash leaves the old file whole.
    pub fn save(&self, path: &Path) -> Result<(), CliError> {
        let io =
            |e: std::io::Error| CliError::Local(format!("cannot write {}: {e}", path.display()));
        let dir = path.parent().expect("the profile file has a directory");
        std::fs::create_dir_all(dir).map_err(io)?;
        let tmp = dir.join(format!(".profiles.{}.tmp", std::process::id()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp).map_err(io)?;
        let text = serde_json::to_string_pretty(self).expect("profiles serialize");
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }
}
