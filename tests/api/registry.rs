//! The registry under concurrent writers, below the HTTP layer.

use actix_web::ResponseError;
use fleetgate::{
    domain::Actor,
    domain::{Hostname, InstanceId, UserId},
    http::error::ApiError,
    registry::Registry,
};
use sqlx::PgPool;

fn hosts(names: &[&str]) -> Vec<Hostname> {
    names.iter().map(|h| Hostname::parse(h).unwrap()).collect()
}

/// Two deploys that each claim a host the other has just claimed deadlock in Postgres; the
/// loser's answer is a 503 to retry (nothing changed), never a 500, and the winner's work holds.
#[sqlx::test]
async fn crossing_host_claims_end_in_a_retryable_answer(pool: PgPool) {
    let registry = Registry::new(None);
    let actor = Actor {
        name: "test".into(),
        request_id: None,
    };
    let (a, b) = (
        InstanceId::parse("a").unwrap(),
        InstanceId::parse("b").unwrap(),
    );
    let owner = UserId::parse("auth0|o").unwrap();

    let mut tx1 = pool.begin().await.unwrap();
    let mut tx2 = pool.begin().await.unwrap();
    registry
        .deploy(&mut tx1, &actor, &a, &owner, &hosts(&["x.example.com"]))
        .await
        .unwrap();
    registry
        .deploy(&mut tx2, &actor, &b, &owner, &hosts(&["y.example.com"]))
        .await
        .unwrap();

    let (r1, r2) = tokio::join!(
        async {
            let r = registry
                .deploy(
                    &mut tx1,
                    &actor,
                    &a,
                    &owner,
                    &hosts(&["x.example.com", "y.example.com"]),
                )
                .await;
            (r, tx1)
        },
        async {
            let r = registry
                .deploy(
                    &mut tx2,
                    &actor,
                    &b,
                    &owner,
                    &hosts(&["y.example.com", "x.example.com"]),
                )
                .await;
            (r, tx2)
        },
    );
    let outcomes = [r1, r2];
    let failed: Vec<_> = outcomes.iter().filter(|(r, _)| r.is_err()).collect();
    assert_eq!(failed.len(), 1, "Postgres picks exactly one victim");
    let [(ra, txa), (rb, txb)] = outcomes;
    let (err, winner_tx) = match (ra, rb) {
        (Err(e), Ok(_)) => (e, txb),
        (Ok(_), Err(e)) => (e, txa),
        _ => unreachable!(),
    };
    let answer = ApiError::from(err);
    assert_eq!(
        (answer.status_code().as_u16(), answer.code()),
        (503, "service_unavailable"),
        "{answer}"
    );
    winner_tx.commit().await.unwrap();
    let owners: Vec<(String, String)> =
        sqlx::query_as("SELECT hostname, instance_id FROM domains ORDER BY hostname")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(owners.len(), 2);
    assert!(
        owners.iter().all(|(_, i)| i == &owners[0].1),
        "both hosts went to the winner: {owners:?}"
    );
}
