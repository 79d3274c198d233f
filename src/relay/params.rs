//! Query strings and form bodies as the relay reads them: each parameter at most once, short,
//! without control characters.

/// The longest value the relay takes: OAuth's parameters are short, and what it stores of
/// them (the SPA's state, a logout's return) must be.
pub const MAX_VALUE: usize = 2048;

/// The most parameters the relay reads from one query, form or JSON body: OAuth's requests
/// carry about twenty. Each is compared with those before it, so this also bounds that work
/// (an outside probe stalled a worker for seconds with 44,000 parameters in one body).
pub const MAX_PARAMS: usize = 64;

/// The pairs of a query string or form body. Refused: more than [`MAX_PARAMS`], a parameter
/// given twice (which of the two would count is exactly what an attacker would like to
/// choose), a value over [`MAX_VALUE`] bytes, and control characters (no OAuth parameter has
/// them; a header or the database would choke on them).
pub fn parse(raw: &[u8]) -> Result<Vec<(String, String)>, String> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (k, v) in url::form_urlencoded::parse(raw) {
        if pairs.len() == MAX_PARAMS {
            return Err(too_many());
        }
        check(&k, &v)?;
        if pairs.iter().any(|(seen, _)| *seen == k) {
            return Err(format!(
                "parameter '{}' is given more than once",
                crate::domain::printable(&k)
            ));
        }
        pairs.push((k.into_owned(), v.into_owned()));
    }
    Ok(pairs)
}

/// The refusal of a request with more than [`MAX_PARAMS`] parameters.
pub fn too_many() -> String {
    format!("more than {MAX_PARAMS} parameters")
}

/// One parameter as [`parse`] takes it.
pub fn check(key: &str, value: &str) -> Result<(), String> {
    let shown = || crate::domain::printable(key);
    if key.len() > MAX_VALUE || value.len() > MAX_VALUE {
        return Err(format!(
            "parameter '{}' is longer than {MAX_VALUE} bytes",
            shown()
        ));
    }
    if key.chars().chain(value.chars()).any(char::is_control) {
        return Err(format!("parameter '{}' holds a control character", shown()));
    }
    Ok(())
}

/// The value of `key`, if given and not empty.
pub fn get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// `k=v&…`, encoded.
pub fn encode(pairs: &[(&str, &str)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        query.append_pair(k, v);
    }
    query.finish()
}

/// `base?k=v&…`, encoded.
pub fn url_with(base: &str, pairs: &[(&str, &str)]) -> String {
    format!("{base}?{}", encode(pairs))
}

/// `url` with `pairs` added to its query (after the query it has, if any; before its
/// fragment, if any).
pub fn with_query(url: &str, pairs: &[(&str, &str)]) -> String {
    let (base, fragment) = match url.split_once('#') {
        Some((base, fragment)) => (base, Some(fragment)),
        None => (url, None),
    };
    let sep = if base.contains('?') { '&' } else { '?' };
    let mut out = format!("{base}{sep}{}", encode(pairs));
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_count_once() {
        let pairs = parse(b"a=1&b=x%20y&c=").unwrap();
        assert_eq!(get(&pairs, "b"), Some("x y"));
        assert_eq!(get(&pairs, "c"), None);
        assert!(parse(b"a=1&a=2").unwrap_err().contains("'a'"));
        for bad in ["state=%00", "returnTo=x%0D%0ASet-Cookie:%20a", "s%0A=1"] {
            assert!(
                parse(bad.as_bytes()).unwrap_err().contains("control"),
                "{bad}"
            );
        }
        let long = format!("state={}", "a".repeat(MAX_VALUE + 1));
        assert!(parse(long.as_bytes()).unwrap_err().contains("longer"));
        assert!(parse(format!("state={}", "a".repeat(MAX_VALUE)).as_bytes()).is_ok());
        assert_eq!(
            url_with("https://t/authorize", &[("a", "x y"), ("b", "&")]),
            "https://t/authorize?a=x+y&b=%26"
        );
        assert_eq!(
            with_query("https://a/?x=1", &[("s", "1")]),
            "https://a/?x=1&s=1"
        );
        assert_eq!(with_query("https://a/", &[("s", "1")]), "https://a/?s=1");
        assert_eq!(
            with_query("https://a/?x=1#f?g", &[("s", "1")]),
            "https://a/?x=1&s=1#f?g"
        );
        assert_eq!(
            with_query("https://a/#f", &[("s", "1")]),
            "https://a/?s=1#f"
        );
    }

    #[test]
    fn a_request_has_at_most_max_params_parameters() {
        let many = |n: usize| {
            (0..n)
                .map(|i| format!("p{i}="))
                .collect::<Vec<_>>()
                .join("&")
        };
        assert_eq!(
            parse(many(MAX_PARAMS).as_bytes()).unwrap().len(),
            MAX_PARAMS
        );
        assert_eq!(
            parse(many(MAX_PARAMS + 1).as_bytes()).unwrap_err(),
            too_many()
        );
        // Refused at once, not after reading everything: 44,000 parameters in a body.
        assert_eq!(parse(many(44_000).as_bytes()).unwrap_err(), too_many());
    }
}
