//! What every Unity Catalog handler needs: the metastore of the calling workspace, the
//! audit fields, identifier rules, the service's "does not exist" errors, and paging.

use std::collections::HashMap;

use axum::http::StatusCode;
use base64::Engine;
use serde_json::{json, Value};

use crate::auth::WsCtx;
use crate::errors::{ApiError, ApiResult};
use crate::state::{now_ms, App, Fields, MetastoreData, State as EmuState};

pub fn metastore_of(s: &EmuState, workspace_id: i64) -> ApiResult<String> {
    s.metastore_assignments
        .get(&workspace_id)
        .and_then(|a| a["metastore_id"].as_str())
        .map(str::to_string)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "METASTORE_DOES_NOT_EXIST",
                "No metastore assigned for the current workspace.",
            )
        })
}

/// Runs `f` on the metastore's data, creating it on first use.
pub fn with_metastore<T>(
    app: &App,
    ws: i64,
    f: impl FnOnce(&mut MetastoreData, &str) -> ApiResult<T>,
) -> ApiResult<T> {
    app.mutate(|s| {
        let mid = metastore_of(s, ws)?;
        let d = s.metastore_data.entry(mid.clone()).or_default();
        f(d, &mid)
    })
}

/// Sets `created_*` (and the default owner) on creation and `updated_*` always.
pub fn stamp(v: &mut Value, ctx: &WsCtx, metastore_id: &str, creating: bool) {
    let now = now_ms();
    if creating {
        v["created_at"] = json!(now);
        v["created_by"] = json!(ctx.principal_name);
        v["metastore_id"] = json!(metastore_id);
        if v.get("owner").is_none() {
            v["owner"] = json!(ctx.principal_name);
        }
    }
    v["updated_at"] = json!(now);
    v["updated_by"] = json!(ctx.principal_name);
}

/// UC identifiers are case-insensitive and stored in lower case.
pub fn ident(b: &Value, field: &str) -> ApiResult<String> {
    let n = b.req_str(field)?.to_lowercase();
    if n.contains(['.', ' ', '/']) || n.len() > 255 {
        return Err(ApiError::invalid(format!("Invalid {field} '{n}'")));
    }
    Ok(n)
}

/// A 404 with one of UC's object-specific codes (`TABLE_DOES_NOT_EXIST`, ...).
pub fn missing(code: &str, label: &str, name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        code,
        format!("{label} '{name}' does not exist."),
    )
}

/// A write to an object of a Delta Sharing catalog, which is read-only for the recipient.
pub fn read_only_share_catalog(catalog: &str) -> ApiError {
    ApiError::invalid(format!(
        "Catalog '{catalog}' is a Delta Sharing catalog; its objects are read-only."
    ))
}

/// A list request's paging: `max_results` (absent = everything in one answer, 0 = the
/// server's page length, negative = error, as the UC APIs document) and the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub max_results: Option<usize>,
    /// The sort key of the last item of the previous page.
    pub after: Option<String>,
}

impl PageRequest {
    pub fn from_query(q: &HashMap<String, String>, server_max: usize) -> ApiResult<PageRequest> {
        let max_results = match q.get("max_results") {
            None => None,
            Some(raw) => {
                let n: i64 = raw.parse().map_err(|_| {
                    ApiError::invalid(format!("max_results must be an integer, got {raw}"))
                })?;
                if n < 0 {
                    return Err(ApiError::invalid(
                        "max_results must be greater than or equal to 0",
                    ));
                }
                Some(if n == 0 {
                    server_max
                } else {
                    (n as usize).min(server_max)
                })
            }
        };
        let after = match q.get("page_token").filter(|t| !t.is_empty()) {
            None => None,
            Some(t) => Some(decode_token(t)?),
        };
        Ok(PageRequest { max_results, after })
    }

    /// One page of `items` (sorted by key, ascending) and the token of the next page.
    /// The token names the last key returned, so objects created or deleted between
    /// pages neither repeat nor shift the listing.
    pub fn page(&self, items: Vec<(String, Value)>) -> (Vec<Value>, Option<String>) {
        let mut rest = items
            .into_iter()
            .filter(|(k, _)| self.after.as_ref().is_none_or(|a| k > a))
            .peekable();
        let Some(limit) = self.max_results else {
            return (rest.map(|(_, v)| v).collect(), None);
        };
        let mut out = Vec::new();
        let mut last = None;
        while out.len() < limit {
            let Some((k, v)) = rest.next() else { break };
            last = Some(k);
            out.push(v);
        }
        let token = match (rest.peek(), last) {
            (Some(_), Some(k)) => Some(encode_token(&k)),
            _ => None,
        };
        (out, token)
    }
}

fn encode_token(key: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.as_bytes())
}

fn decode_token(token: &str) -> ApiResult<String> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| ApiError::invalid(format!("Invalid page_token '{token}'")))
}

/// Adds `next_page_token` to a list answer when there is a next page.
pub fn list_answer(key: &str, items: Vec<Value>, next: Option<String>) -> Value {
    let mut v = json!({ key: items });
    if let Some(t) = next {
        v["next_page_token"] = json!(t);
    }
    v
}

/// SQL `LIKE` with `%` and `_`, case-insensitive (names are lower case).
pub fn sql_like(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('%', rest)) => (0..=t.len()).any(|i| go(rest, &t[i..])),
            Some(('_', rest)) => !t.is_empty() && go(rest, &t[1..]),
            Some((c, rest)) => t.first() == Some(c) && go(rest, &t[1..]),
        }
    }
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    go(&p, &t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(n: usize) -> Vec<(String, Value)> {
        (0..n).map(|i| (format!("k{i:02}"), json!(i))).collect()
    }

    #[test]
    fn pages_follow_each_other_until_the_last() {
        let q: HashMap<String, String> = [("max_results".to_string(), "2".to_string())].into();
        let mut req = PageRequest::from_query(&q, 100).unwrap();
        let mut seen = vec![];
        loop {
            let (page, next) = req.page(items(5));
            seen.extend(page);
            match next {
                Some(t) => {
                    let q: HashMap<String, String> = [
                        ("max_results".to_string(), "2".to_string()),
                        ("page_token".to_string(), t),
                    ]
                    .into();
                    req = PageRequest::from_query(&q, 100).unwrap();
                }
                None => break,
            }
        }
        assert_eq!(seen, (0..5).map(|i| json!(i)).collect::<Vec<_>>());
    }

    #[test]
    fn absent_max_results_is_one_page_and_zero_is_the_server_page() {
        let all = PageRequest::from_query(&HashMap::new(), 2).unwrap();
        assert_eq!(
            all.page(items(5)),
            (items(5).into_iter().map(|x| x.1).collect(), None)
        );
        let q: HashMap<String, String> = [("max_results".to_string(), "0".to_string())].into();
        let (page, next) = PageRequest::from_query(&q, 2).unwrap().page(items(5));
        assert_eq!(page.len(), 2);
        assert!(next.is_some());
        let q: HashMap<String, String> = [("max_results".to_string(), "-1".to_string())].into();
        assert!(PageRequest::from_query(&q, 2).is_err());
    }

    #[test]
    fn like_patterns_match_as_sql() {
        assert!(sql_like("sal%", "sales"));
        assert!(sql_like("s_les", "SALES"));
        assert!(!sql_like("s_les", "sles"));
        assert!(sql_like("%", ""));
        assert!(!sql_like("ord", "orders"));
    }
}
