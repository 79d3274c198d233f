//! Which release answers: `fleetgate --version`, `/healthz`, `/readyz` and the
//! `fleetgate_build_info` metric all name Cargo's version, and `CHANGELOG.md` has an entry for it
//! (so a version is never bumped without saying what it brings).

use sqlx::PgPool;

use crate::helpers::*;

const VERSION: &str = env!("CARGO_PKG_VERSION");

#[sqlx::test]
async fn every_place_names_the_same_release(pool: PgPool) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fleetgate"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("fleetgate {VERSION}")
    );
    assert_eq!(fleetgate::VERSION, VERSION);

    let app = TestApp::spawn(pool).await;
    for path in ["/healthz", "/readyz"] {
        let (status, body) = into_json(app.http.get(app.url(path)).send().await.unwrap()).await;
        assert_eq!(
            (status, body["version"].as_str()),
            (200, Some(VERSION)),
            "{path}"
        );
    }
    let metrics = app.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l == format!(r#"fleetgate_build_info{{version="{VERSION}"}} 1"#)),
        "{metrics}"
    );

    let changelog =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/CHANGELOG.md")).unwrap();
    let entry = format!("## [{VERSION}] - ");
    let dated = changelog.lines().find(|l| l.starts_with(&entry));
    assert!(
        dated.is_some_and(
            |l| chrono::NaiveDate::parse_from_str(&l[entry.len()..], "%Y-%m-%d").is_ok()
        ),
        "CHANGELOG.md needs a dated entry '## [{VERSION}] - YYYY-MM-DD'"
    );
}
