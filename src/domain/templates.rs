//! URL templates: how one host becomes allow-list entries, per field.

use std::collections::BTreeMap;

use super::Field;
use super::{Hostname, ParseError};

const HOST: &str = "{host}";

/// One template, e.g. `https://{host}/callback`: `{host}` exactly once, as the whole host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    prefix: String,
    suffix: String,
}

impl Template {
    pub fn parse(field: Field, raw: &str) -> Result<Self, ParseError> {
        let fail = |rule: &str| Err(ParseError::new(format!("{field} template '{raw}' {rule}")));
        if raw.matches(HOST).count() != 1 {
            return fail("must contain {host} exactly once");
        }
        let (prefix, suffix) = raw.split_once(HOST).expect("counted once");
        if prefix != "https://" && prefix != "http://" {
            return fail("must start with https://{host} (or http://{host})");
        }
        if !(suffix.is_empty() || suffix.starts_with('/') || suffix.starts_with(':')) {
            return fail("must have {host} as the whole host");
        }
        if suffix.contains('*') || suffix.contains(',') || suffix.chars().any(char::is_whitespace) {
            return fail("must not contain '*', ',' or whitespace");
        }
        let sample = format!("{prefix}example.com{suffix}");
        let url = match url::Url::parse(&sample) {
            Ok(u) => u,
            Err(_) => return fail("is not a valid URL"),
        };
        if field.is_origin()
            && (url.path() != "/"
                || url.query().is_some()
                || url.fragment().is_some()
                || sample.ends_with('/'))
        {
            return fail(
                "is an origin: scheme, {host} and an optional port only, e.g. https://{host}",
            );
        }
        Ok(Self {
            prefix: prefix.to_owned(),
            suffix: suffix.to_owned(),
        })
    }

    /// The entry for one host (or a wildcard host such as `*.apps.example.com`).
    pub fn render(&self, host: &str) -> String {
        format!("{}{host}{}", self.prefix, self.suffix)
    }
}

/// The templates of every field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Templates(BTreeMap<Field, Vec<Template>>);

impl Templates {
    /// docs/design.md's defaults: callbacks `https://{host}/callback`, logout `https://{host}/`,
    /// both origins `https://{host}`.
    pub fn defaults() -> Self {
        Self::parse(|f| match f {
            Field::Callbacks => "https://{host}/callback",
            Field::AllowedLogoutUrls => "https://{host}/",
            Field::WebOrigins | Field::AllowedOrigins => "https://{host}",
        })
        .expect("the defaults are valid")
    }

    /// Templates from comma-separated lists per field (an empty list leaves the field alone).
    pub fn parse<'a>(raw: impl Fn(Field) -> &'a str) -> Result<Self, ParseError> {
        let mut map = BTreeMap::new();
        for field in Field::ALL {
            let list = raw(field)
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|t| Template::parse(field, t))
                .collect::<Result<Vec<_>, _>>()?;
            map.insert(field, list);
        }
        Ok(Self(map))
    }

    pub fn of(&self, field: Field) -> &[Template] {
        self.0.get(&field).map(Vec::as_slice).unwrap_or_default()
    }

    /// The entries one host needs in `field`.
    pub fn entries(&self, field: Field, host: &Hostname) -> impl Iterator<Item = String> + '_ {
        let host = host.to_string();
        self.of(field).iter().map(move |t| t.render(&host))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_render_as_design_says() {
        let t = Templates::defaults();
        let h = Hostname::parse("www.acme.com").unwrap();
        assert_eq!(
            t.entries(Field::Callbacks, &h).collect::<Vec<_>>(),
            ["https://www.acme.com/callback"]
        );
        assert_eq!(
            t.entries(Field::AllowedLogoutUrls, &h).collect::<Vec<_>>(),
            ["https://www.acme.com/"]
        );
        assert_eq!(
            t.entries(Field::WebOrigins, &h).collect::<Vec<_>>(),
            ["https://www.acme.com"]
        );
        assert_eq!(
            t.entries(Field::AllowedOrigins, &h).collect::<Vec<_>>(),
            ["https://www.acme.com"]
        );
    }

    #[test]
    fn bad_templates_are_named() {
        let bad = [
            (
                Field::Callbacks,
                "https://example.com/callback",
                "exactly once",
            ),
            (Field::Callbacks, "https://{host}/{host}", "exactly once"),
            (Field::Callbacks, "ftp://{host}/cb", "must start with"),
            (Field::Callbacks, "https://app.{host}/cb", "must start with"),
            (Field::Callbacks, "https://{host}x/cb", "whole host"),
            (Field::Callbacks, "https://{host}/a b", "whitespace"),
            (Field::WebOrigins, "https://{host}/path", "origin"),
            (Field::WebOrigins, "https://{host}/", "origin"),
        ];
        for (field, raw, rule) in bad {
            let e = Template::parse(field, raw).unwrap_err().to_string();
            assert!(e.contains(rule), "{raw}: {e}");
        }
        assert!(Template::parse(Field::WebOrigins, "https://{host}:8443").is_ok());
        let two = Templates::parse(|f| {
            if f == Field::Callbacks {
                "https://{host}/callback, https://{host}/silent"
            } else {
                ""
            }
        })
        .unwrap();
        assert_eq!(two.of(Field::Callbacks).len(), 2);
        assert!(two.of(Field::WebOrigins).is_empty());
    }
}
