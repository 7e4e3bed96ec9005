//! Parsers of what Databricks and Secrets Manager send back: the time parser
//! of rotate-credentials (`cleanup::parse_time`), the error-body parser of
//! the shared client (`DatabricksError::from_response`) and the secret
//! string parser (`Credential::parse`). All of it is untrusted input.
//!
//! Input: two bytes for an HTTP status, then the text.
//!
//! Properties:
//! - `parse_time` is total; a parsed time printed back in RFC 3339 UTC parses
//!   to the same second; epoch milliseconds give their seconds; and any
//!   second of years 0001-9999, printed, parses back to itself;
//! - an error body that is not JSON becomes a message of at most 300 bytes
//!   (plus `…`), a prefix of the trimmed body; the error's retry class
//!   follows the status; its text names the request;
//! - a secret string's secret values (`token`, `client_secret`,
//!   `secret_access_key`) never appear in a parse error or in the parsed
//!   credential's `Debug`, compared with the same input holding other values.
#![no_main]

use lakeops_shared::credentials::Credential;
use lakeops_shared::databricks::DatabricksError;
use lakeops_shared::Error;
use libfuzzer_sys::fuzz_target;
use rotate_credentials::cleanup::parse_time;
use serde_json::Value;

/// Year, month, day of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, the inverse of the parser's `days_from_civil`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn rfc3339(seconds: i64) -> Option<String> {
    let (days, rest) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    (0..=9999).contains(&year).then(|| {
        format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            rest / 3600,
            rest % 3600 / 60,
            rest % 60
        )
    })
}

/// 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
const FIRST_SECOND: i64 = -62_135_596_800;
const LAST_SECOND: i64 = 253_402_300_799;

fn check_time(text: &str, seed: u64) {
    let parsed = parse_time(text);
    let trimmed = text.trim();
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        assert_eq!(parsed, trimmed.parse::<i64>().ok().map(|ms| ms / 1000));
    } else if let Some(seconds) = parsed {
        if let Some(printed) = rfc3339(seconds) {
            assert_eq!(parse_time(&printed), Some(seconds), "{text:?} → {printed}");
        }
    }
    let span = (LAST_SECOND - FIRST_SECOND + 1) as u64;
    let seconds = FIRST_SECOND + (seed % span) as i64;
    let printed = rfc3339(seconds).expect("in range");
    assert_eq!(parse_time(&printed), Some(seconds), "{printed}");
}

fn check_error_body(status: u16, body: &str) {
    let request = "GET /api/2.0/token/list".to_string();
    let error = DatabricksError::from_response(status, body, request.clone(), None);
    if serde_json::from_str::<Value>(body).is_err() {
        let kept = error.message.strip_suffix('…').unwrap_or(&error.message);
        assert!(kept.len() <= 300, "a message of {} bytes", kept.len());
        assert!(body.trim().starts_with(kept));
    }
    assert!(error.to_string().starts_with(&request));
    let transient = matches!(status, 0 | 429 | 500 | 502 | 503 | 504);
    if transient {
        assert!(error.is_transient());
    }
    assert_eq!(
        Error::from(error.clone()).is_retryable(),
        error.is_transient()
    );
}

const SECRET_FIELDS: [&str; 3] = ["token", "client_secret", "secret_access_key"];

/// Everything `Credential::parse` lets out: the problems, or the Debug form.
fn parse_output(text: &str) -> String {
    match Credential::parse(text) {
        Ok(credential) => format!("{credential:?}"),
        Err(problems) => format!("{problems} {problems:?}"),
    }
}

fn check_secret_string(text: &str) {
    let Ok(Value::Object(object)) = serde_json::from_str::<Value>(text) else {
        let _ = Credential::parse(text);
        return;
    };
    for field in SECRET_FIELDS {
        let Some(Value::String(secret)) = object.get(field) else {
            continue;
        };
        if secret.len() < 8 || !secret.bytes().all(|b| b.is_ascii_alphanumeric()) {
            continue;
        }
        let filler = if secret.contains('x') { 'y' } else { 'x' };
        let mut other = object.clone();
        other.insert(
            field.into(),
            Value::String(filler.to_string().repeat(secret.len())),
        );
        let with_secret = parse_output(&Value::Object(object.clone()).to_string());
        let without = parse_output(&Value::Object(other).to_string());
        assert_eq!(
            with_secret.matches(secret.as_str()).count(),
            without.matches(secret.as_str()).count(),
            "the value of `{field}` leaks: {with_secret}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let status = u16::from_le_bytes([data[0], data[1]]);
    let seed = data
        .iter()
        .fold(0u64, |h, b| h.rotate_left(5) ^ u64::from(*b));
    let text = String::from_utf8_lossy(&data[2..]);
    check_time(&text, seed);
    check_error_body(status, &text);
    check_secret_string(&text);
});
