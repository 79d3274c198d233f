//! Cursor pagination: an opaque cursor names the last item of the previous page.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use super::error::ApiError;

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

#[derive(Debug, serde::Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

pub fn limit(requested: Option<u32>) -> Result<i64, ApiError> {
    match requested.unwrap_or(DEFAULT_LIMIT) {
        n @ 1..=MAX_LIMIT => Ok(i64::from(n)),
        n => Err(ApiError::bad_request(
            "invalid_query",
            format!("limit {n} is not between 1 and {MAX_LIMIT}"),
        )),
    }
}

pub fn encode(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(key)
}

fn foreign_cursor() -> ApiError {
    ApiError::bad_request("invalid_query", "cursor is not one this API returned")
}

pub fn decode(cursor: &str) -> Result<String, ApiError> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(foreign_cursor)
}

/// A cursor naming a numeric id (audit entries, runs).
pub fn decode_id(cursor: &str) -> Result<i64, ApiError> {
    decode(cursor)?.parse().map_err(|_| foreign_cursor())
}

/// Builds a page from up to `limit + 1` fetched items: the extra one only says there is more.
pub fn page<T>(mut items: Vec<T>, limit: i64, key: impl Fn(&T) -> String) -> Page<T> {
    let more = items.len() as i64 > limit;
    items.truncate(limit as usize);
    let next_cursor = if more {
        items.last().map(|last| encode(&key(last)))
    } else {
        None
    };
    Page { items, next_cursor }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_junk() {
        assert_eq!(decode(&encode("acme-1")).unwrap(), "acme-1");
        assert!(decode("%%%").is_err());
        assert_eq!(decode_id(&encode("42")).unwrap(), 42);
        assert!(decode_id(&encode("x")).is_err());
        assert!(limit(Some(0)).is_err() && limit(Some(MAX_LIMIT + 1)).is_err());
        assert_eq!(limit(None).unwrap(), i64::from(DEFAULT_LIMIT));
    }

    #[test]
    fn next_cursor_only_when_more() {
        let p = page(vec!["a", "b", "c"], 2, |s| s.to_string());
        assert_eq!(p.items, vec!["a", "b"]);
        assert_eq!(decode(p.next_cursor.as_deref().unwrap()).unwrap(), "b");
        assert!(
            page(vec!["a", "b"], 2, |s| s.to_string())
                .next_cursor
                .is_none()
        );
    }
}
