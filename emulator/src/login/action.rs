//! The post-login Action, run for real: `fleetgate-emulator --action FILE` runs that file's
//! `onExecutePostLogin(event, api)` with Node on every login and refresh-token exchange, with
//! the `event` fields and `api` methods Auth0 gives (see docs/auth0.md), Auth0's 20 s limit,
//! and Auth0's rules for custom claims and refresh-token metadata applied to what it set.

use std::{collections::BTreeMap, path::PathBuf, process::Stdio, time::Duration};

use serde_json::{Map, Value, json};
use tokio::io::AsyncWriteExt;

/// Auth0 ends a trigger that runs longer.
pub const LIMIT: Duration = Duration::from_secs(20);
const HARNESS: &str = include_str!("action-harness.js");
/// Claims an Action may not set (Auth0's restricted claims).
const RESTRICTED: [&str; 15] = [
    "acr",
    "amr",
    "aud",
    "auth_time",
    "azp",
    "cnf",
    "exp",
    "gty",
    "iat",
    "iss",
    "jti",
    "nbf",
    "permissions",
    "scope",
    "sub",
];
/// Hosts that are Auth0's, never a namespace of a customer's.
const AUTH0_HOSTS: [&str; 3] = ["auth0.com", "webtask.io", "webtask.run"];
/// Refresh-token metadata: keys and characters per value.
const MAX_METADATA_KEYS: usize = 25;
const MAX_METADATA_CHARS: usize = 255;

#[derive(Debug, Clone)]
pub struct ActionConfig {
    pub file: PathBuf,
    /// `event.secrets`.
    pub secrets: BTreeMap<String, String>,
}

/// What the Action did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outcome {
    /// `api.access.deny(reason)`, or the Action failed or ran out of time.
    pub denied: Option<String>,
    pub access_claims: Map<String, Value>,
    pub id_claims: Map<String, Value>,
    pub metadata: Map<String, Value>,
}

#[derive(serde::Deserialize)]
struct Reported {
    denied: Option<String>,
    access: Map<String, Value>,
    id: Map<String, Value>,
    metadata: Map<String, Value>,
    error: Option<String>,
    logs: Vec<String>,
}

pub struct Action {
    config: ActionConfig,
    harness: PathBuf,
}

impl Action {
    /// Checks the file and writes the harness that runs it.
    pub fn new(config: ActionConfig) -> anyhow::Result<Self> {
        let file = std::fs::canonicalize(&config.file)
            .map_err(|e| anyhow::anyhow!("--action {}: {e}", config.file.display()))?;
        // One file per emulator: several may run in one process (tests), each removing its own.
        let harness = std::env::temp_dir().join(format!(
            "fleetgate-emulator-action-{}-{}.js",
            std::process::id(),
            &super::state::random_id()[..12]
        ));
        std::fs::write(&harness, HARNESS)?;
        Ok(Self {
            config: ActionConfig { file, ..config },
            harness,
        })
    }

    /// The harness file this Action runs through.
    pub fn harness(&self) -> &std::path::Path {
        &self.harness
    }

    pub fn secrets(&self) -> Value {
        json!(self.config.secrets)
    }

    /// Runs the Action on `event` (its `secrets` filled in here).
    pub async fn run(&self, mut event: Value) -> Outcome {
        event["secrets"] = self.secrets();
        let input = json!({ "file": self.config.file, "event": event }).to_string();
        match tokio::time::timeout(LIMIT, self.spawn(input)).await {
            Err(_) => failed("Script execution time exceeded"),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "the Action could not be run (is node installed?)");
                failed(&format!("the Action could not be run: {e}"))
            }
            Ok(Ok(reported)) => {
                for line in &reported.logs {
                    tracing::info!(target: "emulator::action", "{line}");
                }
                match reported.error {
                    Some(e) => {
                        tracing::warn!(error = e, "the Action failed");
                        failed(&e)
                    }
                    None => Outcome {
                        denied: reported.denied,
                        access_claims: allowed_claims(reported.access),
                        id_claims: allowed_claims(reported.id),
                        metadata: allowed_metadata(reported.metadata),
                    },
                }
            }
        }
    }

    async fn spawn(&self, input: String) -> anyhow::Result<Reported> {
        let mut child = tokio::process::Command::new("node")
            .arg(&self.harness)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let mut stdin = child.stdin.take().expect("piped");
        stdin.write_all(input.as_bytes()).await?;
        drop(stdin);
        let out = child.wait_with_output().await?;
        let line = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str(line.trim())
            .map_err(|e| anyhow::anyhow!("the Action's harness answered no result ({e}): {line}"))
    }
}

impl Drop for Action {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.harness);
    }
}

fn failed(reason: &str) -> Outcome {
    Outcome {
        denied: Some(reason.to_owned()),
        ..Outcome::default()
    }
}

/// Whether Auth0 lets an Action set this custom claim: namespaced with an http(s) URL that is
/// not Auth0's, and not a restricted claim.
pub fn claim_allowed(key: &str) -> bool {
    if RESTRICTED.contains(&key) {
        return false;
    }
    let Ok(url) = url::Url::parse(key) else {
        return false;
    };
    let auth0 = url.host_str().is_some_and(|h| {
        AUTH0_HOSTS
            .iter()
            .any(|a| h == *a || h.ends_with(&format!(".{a}")))
    });
    matches!(url.scheme(), "http" | "https") && !auth0
}

/// The claims Auth0 would put in the token; the others are dropped (and logged), as Auth0
/// drops them.
fn allowed_claims(set: Map<String, Value>) -> Map<String, Value> {
    set.into_iter()
        .filter(|(k, _)| {
            let ok = claim_allowed(k);
            if !ok {
                tracing::warn!(
                    claim = k,
                    "the Action set a claim Auth0 does not allow; dropped"
                );
            }
            ok
        })
        .collect()
}

/// Refresh-token metadata within Auth0's limits: string values of at most 255 characters,
/// at most 25 keys.
fn allowed_metadata(set: Map<String, Value>) -> Map<String, Value> {
    set.into_iter()
        .filter(|(k, v)| {
            let ok = v
                .as_str()
                .is_some_and(|s| s.chars().count() <= MAX_METADATA_CHARS);
            if !ok {
                tracing::warn!(
                    key = k,
                    "refresh-token metadata must be a string of at most 255 characters; dropped"
                );
            }
            ok
        })
        .take(MAX_METADATA_KEYS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_namespaced_unrestricted_claims_are_kept() {
        assert!(claim_allowed("https://fleetgate.dev/instance"));
        assert!(claim_allowed("http://example.com/role"));
        for refused in [
            "instance",
            "sub",
            "permissions",
            "https://tenant.auth0.com/x",
            "https://auth0.com/x",
            "urn:example:x",
        ] {
            assert!(!claim_allowed(refused), "{refused}");
        }
    }

    #[test]
    fn metadata_is_bounded() {
        let mut set = Map::new();
        set.insert("instance".into(), json!("acme"));
        set.insert("long".into(), json!("x".repeat(256)));
        set.insert("number".into(), json!(1));
        for i in 0..30 {
            set.insert(format!("k{i:02}"), json!("v"));
        }
        let kept = allowed_metadata(set);
        assert_eq!(kept.len(), MAX_METADATA_KEYS);
        assert!(!kept.contains_key("long") && !kept.contains_key("number"));
    }
}
