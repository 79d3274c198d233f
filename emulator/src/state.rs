//! The emulated tenant: applications, client grants, APIs and signing keys, optionally saved
//! to a JSON file after every change.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use anyhow::Context;
use serde_json::{Value, json};

use super::{
    clients::{self, Client},
    keys::SigningKey,
    users::User,
};

/// A client's permission to get tokens for an API, with these scopes.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ClientGrant {
    pub client_id: String,
    pub audience: String,
    pub scope: Vec<String>,
}

pub const MANAGEMENT_SCOPES: [&str; 4] = [
    "read:clients",
    "update:clients",
    "create:clients",
    "delete:clients",
];

pub struct Tenant {
    pub base_url: String,
    /// The `iss` of its tokens when not its URL (a custom domain); not saved: a setting.
    pub custom_issuer: Option<String>,
    pub clients: Vec<Client>,
    /// The database connection's users, who log in through the login page.
    pub users: Vec<User>,
    pub grants: Vec<ClientGrant>,
    /// Identifiers of the APIs ("resource servers") tokens may be minted for.
    pub apis: Vec<String>,
    /// Published signing keys, oldest first; the last one signs.
    /// Shared, so that a token is signed after the tenant's lock is let go.
    pub keys: Vec<Arc<SigningKey>>,
    pub max_clients: usize,
    /// The seeded applications, as printed at start-up.
    pub seeded: Seeded,
    file: Option<PathBuf>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Seeded {
    pub spa_client_id: String,
    pub m2m_client_id: String,
    pub m2m_client_secret: String,
    pub api_audience: String,
    /// Absent from state files written before instances had an audience of their own.
    #[serde(default)]
    pub instance_audience: Option<String>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Saved {
    base_url: String,
    clients: Vec<Client>,
    #[serde(default)]
    users: Vec<User>,
    grants: Vec<ClientGrant>,
    apis: Vec<String>,
    keys: Vec<String>,
    seeded: Seeded,
}

impl Tenant {
    pub fn management_audience(&self) -> String {
        format!("{}/api/v2/", self.base_url)
    }

    /// The `iss` of the tenant's tokens: its URL, or the custom domain it was started with.
    pub fn issuer(&self) -> String {
        self.custom_issuer
            .clone()
            .unwrap_or_else(|| format!("{}/", self.base_url))
    }

    pub fn tenant_name(&self) -> &'static str {
        "emulator"
    }

    /// A tenant seeded with a SPA, an M2M application allowed to manage clients, the
    /// Management API, fleetgate's API and the instances' API.
    pub fn seed(
        base_url: &str,
        [api_audience, instance_audience]: [&str; 2],
        key: SigningKey,
        max_clients: usize,
        file: Option<PathBuf>,
    ) -> Self {
        let spa_body = json!({"name": "fleetgate SPA", "app_type": "spa", "token_endpoint_auth_method": "none", "oidc_conformant": true});
        let m2m_body = json!({"name": "fleetgate control plane (M2M)", "app_type": "non_interactive", "oidc_conformant": true});
        let spa = clients::create(
            clients::validate(&spa_body, true).expect("valid seed"),
            "emulator",
        );
        let m2m = clients::create(
            clients::validate(&m2m_body, true).expect("valid seed"),
            "emulator",
        );
        let text = |c: &Client, k: &str| c[k].as_str().unwrap_or_default().to_owned();
        let seeded = Seeded {
            spa_client_id: text(&spa, "client_id"),
            m2m_client_id: text(&m2m, "client_id"),
            m2m_client_secret: text(&m2m, "client_secret"),
            api_audience: api_audience.to_owned(),
            instance_audience: Some(instance_audience.to_owned()),
        };
        let management = format!("{base_url}/api/v2/");
        Self {
            custom_issuer: None,
            base_url: base_url.to_owned(),
            grants: vec![ClientGrant {
                client_id: seeded.m2m_client_id.clone(),
                audience: management.clone(),
                scope: MANAGEMENT_SCOPES.map(String::from).to_vec(),
            }],
            apis: vec![
                management,
                api_audience.to_owned(),
                instance_audience.to_owned(),
            ],
            clients: vec![spa, m2m],
            users: Vec::new(),
            keys: vec![Arc::new(key)],
            max_clients,
            seeded,
            file,
        }
    }

    /// Loads a saved tenant; a different base URL (another port) is carried over. A tenant
    /// saved before instances had an API of their own gets `instance_audience` as that API.
    pub fn load(
        path: &Path,
        base_url: &str,
        max_clients: usize,
        instance_audience: &str,
    ) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let saved: Saved = serde_json::from_str(&text)
            .with_context(|| format!("{} is not an emulator state file", path.display()))?;
        let rebase = |s: String| match s.strip_prefix(&saved.base_url) {
            Some(rest) => format!("{base_url}{rest}"),
            None => s,
        };
        let mut apis: Vec<String> = saved.apis.into_iter().map(rebase).collect();
        let mut seeded = saved.seeded;
        if seeded.instance_audience.is_none() {
            seeded.instance_audience = Some(instance_audience.to_owned());
            apis.push(instance_audience.to_owned());
        }
        Ok(Self {
            custom_issuer: None,
            base_url: base_url.to_owned(),
            clients: saved.clients,
            users: saved.users,
            grants: saved
                .grants
                .into_iter()
                .map(|g| ClientGrant {
                    audience: rebase(g.audience),
                    ..g
                })
                .collect(),
            apis,
            keys: saved
                .keys
                .iter()
                .map(|pem| SigningKey::from_pem(pem).map(Arc::new))
                .collect::<anyhow::Result<_>>()?,
            max_clients,
            seeded,
            file: Some(path.to_owned()),
        })
    }

    /// Writes the state file, if there is one (atomically: a temporary file, then a rename).
    pub fn save(&self) -> anyhow::Result<()> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        let saved = Saved {
            base_url: self.base_url.clone(),
            clients: self.clients.clone(),
            users: self.users.clone(),
            grants: self.grants.clone(),
            apis: self.apis.clone(),
            keys: self.keys.iter().map(|k| k.pem().to_owned()).collect(),
            seeded: self.seeded.clone(),
        };
        let tmp = path.with_extension("tmp");
        // The tenant's signing keys and the M2M secret: for this user's eyes only.
        write_private(&tmp, &serde_json::to_vec_pretty(&saved)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
        Ok(())
    }

    /// The seeded applications and where things are (`GET /emulator/tenant`), the M2M secret
    /// included.
    pub fn described(&self) -> Value {
        serde_json::json!({
            "base_url": self.base_url,
            "issuer": self.issuer(),
            "management_audience": self.management_audience(),
            "spa_client_id": self.seeded.spa_client_id,
            "m2m_client_id": self.seeded.m2m_client_id,
            "m2m_client_secret": self.seeded.m2m_client_secret,
            "api_audience": self.seeded.api_audience,
            "instance_audience": self.seeded.instance_audience,
        })
    }

    /// The key that signs now: sign with it after letting the tenant's lock go (a signature
    /// takes a good half millisecond, and every request of the tenant waits for the lock).
    pub fn signing_key(&self) -> Arc<SigningKey> {
        self.keys.last().expect("a tenant always has a key").clone()
    }

    pub fn client(&self, id: &str) -> Option<&Client> {
        self.clients
            .iter()
            .find(|c| c.get("client_id").and_then(Value::as_str) == Some(id))
    }

    pub fn user(&self, user_id: &str) -> Option<&User> {
        self.users.iter().find(|u| u.user_id == user_id)
    }

    /// The user of `connection` with this email (compared as Auth0 does: case-insensitively).
    /// One person may be a user of each connection: two users, unless linked.
    pub fn user_by_email(&self, connection: &str, email: &str) -> Option<&User> {
        self.users
            .iter()
            .find(|u| u.connection() == connection && u.email.eq_ignore_ascii_case(email))
    }

    pub fn client_mut(&mut self, id: &str) -> Option<&mut Client> {
        self.clients
            .iter_mut()
            .find(|c| c.get("client_id").and_then(Value::as_str) == Some(id))
    }

    /// Publishes a new signing key; the previous one stays published until the next rotation.
    pub fn rotate(&mut self, key: SigningKey) {
        self.keys.push(Arc::new(key));
        while self.keys.len() > 2 {
            self.keys.remove(0);
        }
    }
}

/// Writes `bytes` to `path`, readable and writable by this user only (0600 on Unix, whatever
/// the umask, and also when the file was there before).
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    file.write_all(bytes)
}
