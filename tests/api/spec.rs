//! `api-spec/openapi.yaml` and the routes the app serves must agree.

use std::collections::BTreeSet;

use sqlx::PgPool;
use yaml_rust2::{Yaml, YamlLoader};

use crate::helpers::*;

const METHODS: [&str; 6] = ["get", "post", "put", "patch", "delete", "options"];

fn spec() -> Yaml {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/api-spec/openapi.yaml"
    ))
    .unwrap();
    YamlLoader::load_from_str(&text).unwrap().remove(0)
}

fn spec_routes(spec: &Yaml) -> BTreeSet<(String, String)> {
    let paths = spec["paths"].as_hash().expect("the spec has paths");
    let mut out = BTreeSet::new();
    for (path, item) in paths {
        for m in METHODS {
            if !item[m].is_badvalue() {
                out.insert((m.to_uppercase(), path.as_str().unwrap().to_owned()));
            }
        }
    }
    out
}

fn served_routes() -> BTreeSet<(String, String)> {
    let mut out: BTreeSet<_> = fleetgate::http::route_table()
        .into_iter()
        .map(|(m, p, _)| (m.to_string(), p.to_owned()))
        .collect();
    out.extend(
        fleetgate::http::OTHER_ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string())),
    );
    out
}

#[test]
fn the_spec_describes_exactly_the_routes_served() {
    let spec = spec();
    assert_eq!(
        spec["openapi"].as_str().map(|v| v.starts_with("3.1")),
        Some(true)
    );
    let in_spec = spec_routes(&spec);
    let served = served_routes();
    let undocumented: Vec<_> = served.difference(&in_spec).collect();
    let unserved: Vec<_> = in_spec.difference(&served).collect();
    assert!(
        undocumented.is_empty() && unserved.is_empty(),
        "served but not in the spec: {undocumented:?}; in the spec but not served: {unserved:?}"
    );
}

#[test]
fn every_operation_documents_its_errors_and_every_ref_resolves() {
    let spec = spec();
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/api-spec/openapi.yaml"
    ))
    .unwrap();
    for r in text.split("$ref: ").skip(1) {
        let target = r
            .split_whitespace()
            .next()
            .unwrap()
            .trim_matches(['\'', '"']);
        let mut node = &spec;
        for part in target.trim_start_matches("#/").split('/') {
            node = &node[part];
        }
        assert!(!node.is_badvalue(), "unresolved $ref {target}");
    }
    for (path, item) in spec["paths"].as_hash().unwrap() {
        for m in METHODS {
            let op = &item[m];
            if op.is_badvalue() {
                continue;
            }
            let responses = op["responses"]
                .as_hash()
                .unwrap_or_else(|| panic!("{m} {path:?} has no responses"));
            assert!(
                !op["operationId"].is_badvalue(),
                "{m} {path:?} has no operationId"
            );
            let path = path.as_str().unwrap();
            if path.starts_with("/v1/") {
                assert!(
                    responses
                        .keys()
                        .any(|k| k.as_str().is_some_and(|s| s.starts_with('4'))),
                    "{m} {path} documents no 4xx"
                );
            }
        }
    }
}

/// Each documented route answers something other than "no such route" or "wrong method".
#[sqlx::test]
async fn every_documented_route_is_served(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    for (method, path) in spec_routes(&spec()) {
        let concrete = path
            .replace("{id}", "acme")
            .replace("{hostname}", "www.acme.com")
            .replace("{grant_id}", "00000000-0000-4000-8000-000000000000")
            .replace("{user_id}", "auth0%7Cowner");
        let res = app
            .http
            .request(method.parse().unwrap(), app.url(&concrete))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let body = res.text().await.unwrap();
        assert!(
            status != 405 && !body.contains("no route for"),
            "{method} {path}: {status} {body}"
        );
    }
}
