//! What the API tests share: a real fleetgate on port 0 against a per-test Postgres database
//! with the Auth0 emulator as its tenant (`app`, `tenant`), and the fixtures several test
//! files build on: the grants fixture (`grants`), the reconciler's (`lists`), real logins
//! through the Action (`world`), and fleetgate as separate processes (`processes`).

mod app;
mod grants;
mod lists;
mod processes;
mod receiver;
mod relay;
mod tenant;
mod world;

pub use app::*;
pub use grants::*;
pub use lists::*;
pub use processes::*;
pub use receiver::*;
pub use relay::*;
pub use tenant::*;
pub use world::*;

pub const AUDIENCE: &str = "https://fleetgate.test/api";
pub const INSTANCE_AUDIENCE: &str = "https://instances.fleetgate.test/api";
pub const PLATFORM_DOMAIN: &str = "apps.example.com";
pub const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
pub const TEST_KEY: &str = include_str!("../../fixtures/test-key.pem");
pub const TEST_PUBLIC_KEY: &[u8] = include_bytes!("../../fixtures/test-key.pub.pem");
pub const OTHER_KEY: &str = include_str!("../../fixtures/other-key.pem");
/// The application tests' admin and owner tokens are issued to (`FLEETGATE_ADMIN_CLIENTS`).
pub const ADMIN_CLIENT: &str = "admin-tool";
