//! Query strings and form bodies as the relay reads them: each parameter at most once, short,
//! without control characters.

/// The longest value the relay takes: OAuth's parameters are short, and what it stores of
/// them (the SPA's state, a logout's return) must be.
pub const MAX_VALUE: usize = 2048;

/// The pairs of a query string or form body. Refused: a parameter given twice (which of the two
/// would count is exactly what an attacker would like to choose), a value over [`MAX_VALUE`]
/// bytes, and control characters (no OAuth parameter has them; a header or the database would
/// choke on them).
pub fn parse(raw: &[u8]) -> Result<Vec<(String, String)>, String> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (k, v) in url::form_urlencoded::parse(raw) {
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

/// `url` with `pairs` added to its query (after the query it has, if any).
pub fn with_query(url: &str, pairs: &[(&str, &str)]) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{}", encode(pairs))
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
    }
}
