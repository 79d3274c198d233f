//! Answers checked against `api-spec/openapi.yaml`: each body validated by a JSON Schema
//! validator against the schema the spec documents for its route and status (OpenAPI 3.1
//! schemas are JSON Schema 2020-12), and which documented answers were reached.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};
use yaml_rust2::{Yaml, YamlLoader};

/// The spec as JSON (OpenAPI 3.1 schemas are JSON Schema 2020-12).
fn spec() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/api-spec/openapi.yaml"
    ))
    .unwrap();
    to_json(&YamlLoader::load_from_str(&text).unwrap()[0])
}

fn to_json(y: &Yaml) -> Value {
    match y {
        Yaml::Real(r) => json!(r.parse::<f64>().unwrap()),
        Yaml::Integer(i) => json!(i),
        Yaml::String(s) => json!(s),
        Yaml::Boolean(b) => json!(b),
        Yaml::Array(a) => Value::Array(a.iter().map(to_json).collect()),
        Yaml::Hash(h) => Value::Object(
            h.iter()
                .map(|(k, v)| {
                    let key = match k {
                        Yaml::String(s) => s.clone(),
                        Yaml::Integer(i) => i.to_string(),
                        other => panic!("a key the spec should not have: {other:?}"),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        Yaml::Null => Value::Null,
        other => panic!("YAML the spec should not have: {other:?}"),
    }
}

/// A JSON pointer's escaping of one segment.
fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// (method, path, status) of an answer.
pub type Answer = (String, String, String);

pub struct Checker {
    spec: Value,
    pub reached: BTreeSet<Answer>,
    pub failures: Vec<String>,
}

impl Checker {
    pub fn new() -> Self {
        Self {
            spec: spec(),
            reached: BTreeSet::new(),
            failures: Vec::new(),
        }
    }

    /// The pointer (from the spec's root) to the JSON body schema of an answer, if it has one.
    fn schema_pointer(&self, (method, path, status): &Answer) -> Option<String> {
        let mut pointer = format!(
            "/paths/{}/{}/responses/{status}",
            escape(path),
            method.to_lowercase()
        );
        let mut response = self.spec.pointer(&pointer)?;
        if let Some(target) = response["$ref"].as_str() {
            pointer = target.trim_start_matches('#').to_owned();
            response = self.spec.pointer(&pointer)?;
        }
        let content = response["content"].as_object()?;
        let media = ["application/json", "application/problem+json"]
            .into_iter()
            .find(|m| content.contains_key(*m))?;
        Some(format!("{pointer}/content/{}/schema", escape(media)))
    }

    /// Every documented success answer with a JSON body.
    pub fn documented_successes(&self) -> BTreeSet<Answer> {
        let mut out = BTreeSet::new();
        for (path, item) in self.spec["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                for status in op["responses"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(s, _)| s)
                {
                    let answer = (method.to_uppercase(), path.clone(), status.clone());
                    if status.starts_with('2') && self.schema_pointer(&answer).is_some() {
                        out.insert(answer);
                    }
                }
            }
        }
        out
    }

    /// Sends `req` (to route `path` as the spec names it) and checks the body of its answer
    /// against the schema documented for its status; answers the status and body.
    pub async fn check(
        &mut self,
        method: Method,
        path: &str,
        req: reqwest::RequestBuilder,
    ) -> (u16, Value) {
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let body: Value = match res.text().await.unwrap() {
            text if text.is_empty() => Value::Null,
            text => serde_json::from_str(&text).unwrap_or(Value::String(text)),
        };
        let answer = (method.to_string(), path.to_owned(), status.to_string());
        match self.schema_pointer(&answer) {
            None if body.is_null() => {}
            None => self.failures.push(format!(
                "{answer:?}: not documented with a body, answered {body}"
            )),
            Some(pointer) => {
                let mut root = self.spec.clone();
                root["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
                // A pointer in a URI fragment: braces percent-encoded.
                let fragment = pointer.replace('{', "%7B").replace('}', "%7D");
                root["$ref"] = json!(format!("#{fragment}"));
                let validator = jsonschema::validator_for(&root).unwrap();
                let errors: Vec<String> = validator
                    .iter_errors(&body)
                    .map(|e| format!("{e} at {}", e.instance_path()))
                    .collect();
                if !errors.is_empty() {
                    self.failures
                        .push(format!("{answer:?}: {}\n  body: {body}", errors.join("; ")));
                }
            }
        }
        self.reached.insert(answer);
        (status, body)
    }
}
