//! Query strings and form bodies as the relay reads them: each parameter at most once.

/// The pairs of a query string or form body; a parameter given twice is refused (which of
/// the two would count is exactly what an attacker would like to choose).
pub fn parse(raw: &[u8]) -> Result<Vec<(String, String)>, String> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (k, v) in url::form_urlencoded::parse(raw) {
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

/// The value of `key`, if given and not empty.
pub fn get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// `base?k=v&…`, encoded.
pub fn url_with(base: &str, pairs: &[(&str, &str)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        query.append_pair(k, v);
    }
    format!("{base}?{}", query.finish())
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
        assert_eq!(
            url_with("https://t/authorize", &[("a", "x y"), ("b", "&")]),
            "https://t/authorize?a=x+y&b=%26"
        );
    }
}
