//! Which old credentials a createSecret removes before it issues a new one.
//!
//! Issuers cap credentials (2 access keys per IAM user, 5 OAuth secrets per
//! service principal), and a rotation interrupted between "issue" and
//! "store as AWSPENDING" leaves a credential whose value exists nowhere: it
//! was only ever in the memory of the Lambda that crashed. Those orphans are
//! recognised and removed here, so a retried rotation never piles them up.
//!
//! The rules, common to all kinds:
//! - the credential of `AWSCURRENT` is never removed;
//! - the credential of `AWSPREVIOUS` is removed: it was revoked or deactivated
//!   by the last finishSecret, and a rotation period has passed since;
//! - an orphan is removed: for PATs, a token whose comment names a version of
//!   this secret (`lakeops-rotation:<version id>`); for OAuth secrets and
//!   access keys, which carry no comment, one that no version references and
//!   that was issued after the `AWSCURRENT` version was stored (in a later
//!   second: both clocks count whole seconds, and a tie is kept);
//! - then kind-specific rules make room under the issuer's cap.

use std::collections::BTreeSet;

/// The comment of every token this function creates.
pub const PAT_COMMENT_PREFIX: &str = "lakeops-rotation:";

pub fn pat_comment(client_request_token: &str) -> String {
    format!("{PAT_COMMENT_PREFIX}{client_request_token}")
}

/// A token as the token list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatInfo {
    pub token_id: String,
    pub comment: Option<String>,
}

/// Tokens to delete before creating a new one.
pub fn pats_to_delete(
    tokens: &[PatInfo],
    current: &str,
    previous: Option<&str>,
    version_ids: &BTreeSet<String>,
) -> Vec<String> {
    tokens
        .iter()
        .filter(|t| t.token_id != current)
        .filter(|t| {
            let is_previous = previous == Some(t.token_id.as_str());
            let is_orphan = t
                .comment
                .as_deref()
                .and_then(|c| c.strip_prefix(PAT_COMMENT_PREFIX))
                .is_some_and(|version| version_ids.contains(version));
            is_previous || is_orphan
        })
        .map(|t| t.token_id.clone())
        .collect()
}

/// Databricks allows this many OAuth secrets per service principal.
pub const SP_SECRETS_PER_PRINCIPAL: usize = 5;

/// An OAuth secret of a service principal, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpSecretInfo {
    pub id: String,
    /// Seconds since the epoch; `None` when Databricks did not say (or said it
    /// in a form we do not read), which counts as oldest and never as an orphan.
    pub created: Option<i64>,
    pub expired: bool,
}

/// OAuth secrets to delete before creating a new one: the previous one,
/// orphans, expired ones, then the oldest unused ones until there is room.
pub fn sp_secrets_to_delete(
    secrets: &[SpSecretInfo],
    current: &str,
    previous: Option<&str>,
    current_version_stored: i64,
) -> Vec<String> {
    let mut delete: Vec<String> = Vec::new();
    let mut keep: Vec<&SpSecretInfo> = Vec::new();
    for secret in secrets {
        let is_current = secret.id == current;
        let is_previous = previous == Some(secret.id.as_str());
        let is_orphan = !is_current && secret.created.is_some_and(|c| c > current_version_stored);
        if !is_current && (is_previous || is_orphan || secret.expired) {
            delete.push(secret.id.clone());
        } else {
            keep.push(secret);
        }
    }
    // Oldest unused first; unknown creation times count as oldest.
    let mut unused: Vec<&SpSecretInfo> = keep.iter().copied().filter(|s| s.id != current).collect();
    unused.sort_by_key(|s| (s.created.unwrap_or(i64::MIN), s.id.clone()));
    let mut unused = unused.into_iter();
    let mut remaining = keep.len();
    while remaining >= SP_SECRETS_PER_PRINCIPAL {
        match unused.next() {
            Some(oldest) => {
                delete.push(oldest.id.clone());
                remaining -= 1;
            }
            None => break,
        }
    }
    delete
}

/// IAM allows this many access keys per user.
pub const ACCESS_KEYS_PER_USER: usize = 2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKeyInfo {
    pub id: String,
    pub active: bool,
    /// Seconds since the epoch.
    pub created: i64,
}

/// Access keys to delete before creating a new one. The previous key was
/// deactivated at the last finish, so its grace period (one rotation period)
/// is over. An active key that this secret does not know is left alone: if it
/// takes the second slot, the rotation stops with an error naming it, before
/// anything is changed.
pub fn access_keys_to_delete(
    keys: &[AccessKeyInfo],
    current: &str,
    previous: Option<&str>,
    current_version_stored: i64,
) -> Result<Vec<String>, String> {
    let mut delete = Vec::new();
    let mut blocking = Vec::new();
    for key in keys.iter().filter(|k| k.id != current) {
        let is_previous = previous == Some(key.id.as_str());
        let is_orphan = key.created > current_version_stored;
        if is_previous || is_orphan || !key.active {
            delete.push(key.id.clone());
        } else {
            blocking.push(key.id.clone());
        }
    }
    if keys.len() - delete.len() >= ACCESS_KEYS_PER_USER {
        return Err(format!(
            "the user already has {ACCESS_KEYS_PER_USER} access keys and active key {} is not managed by this secret; \
             deactivate or delete it, then rotate again",
            blocking.join(", ")
        ));
    }
    Ok(delete)
}

/// Seconds since the epoch of an RFC 3339 time (`2026-11-21T12:00:00Z`, with
/// optional fraction, or a `+hh:mm` offset), or of a number of milliseconds
/// since the epoch. `None` for anything else.
///
/// The text comes from a Databricks response, so it is untrusted: it is read
/// as bytes, never sliced as a `str` (a byte index inside a multi-byte
/// character would panic).
pub fn parse_time(text: &str) -> Option<i64> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<i64>().ok().map(|ms| ms / 1000);
    }
    let bytes = text.as_bytes();
    let at = |i: usize| bytes.get(i).copied();
    if at(4) != Some(b'-')
        || at(7) != Some(b'-')
        || !matches!(at(10), Some(b'T' | b't' | b' '))
        || at(13) != Some(b':')
        || at(16) != Some(b':')
    {
        return None;
    }
    let num = |range: std::ops::Range<usize>| ascii_number(bytes.get(range)?);
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=days_in_month(year, month)).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = bytes.get(19..)?;
    if let Some(fraction) = rest.strip_prefix(b".") {
        let digits = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        rest = &fraction[digits..];
    }
    let offset = match rest {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let hours = ascii_number(&[*h1, *h2])?;
            let minutes = ascii_number(&[*m1, *m2])?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let sign = if *sign == b'-' { -1 } else { 1 };
            sign * (hours * 3600 + minutes * 60)
        }
        _ => return None,
    };
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// The value of a short run of ASCII digits; `None` if any byte is not one.
fn ascii_number(digits: &[u8]) -> Option<i64> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        digits
            .iter()
            .fold(0i64, |n, d| n * 10 + i64::from(d - b'0')),
    )
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ids(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn pat(id: &str, comment: Option<&str>) -> PatInfo {
        PatInfo {
            token_id: id.into(),
            comment: comment.map(String::from),
        }
    }

    #[test]
    fn pats_keep_current_and_foreign_tokens() {
        let tokens = vec![
            pat("cur", Some("lakeops-rotation:v1")),
            pat("prev", Some("provisioned by lakeops")),
            pat("orphan", Some("lakeops-rotation:v2")),
            pat("laptop", Some("alice's notebook")),
            pat("other-secret", Some("lakeops-rotation:zz")),
            pat("nocomment", None),
        ];
        let delete = pats_to_delete(&tokens, "cur", Some("prev"), &ids(&["v0", "v1", "v2"]));
        assert_eq!(delete, vec!["prev", "orphan"]);
        assert!(pats_to_delete(&tokens, "orphan", None, &ids(&["v2"])).is_empty());
        assert_eq!(pat_comment("abc"), "lakeops-rotation:abc");
    }

    fn sp(id: &str, created: Option<i64>, expired: bool) -> SpSecretInfo {
        SpSecretInfo {
            id: id.into(),
            created,
            expired,
        }
    }

    #[test]
    fn sp_secrets_make_room_oldest_unused_first() {
        // Full: current plus four unused ones from before the current version.
        let secrets = vec![
            sp("a", Some(50), false),
            sp("cur", Some(90), false),
            sp("b", Some(10), false),
            sp("c", None, false),
            sp("d", Some(70), false),
        ];
        assert_eq!(sp_secrets_to_delete(&secrets, "cur", None, 100), vec!["c"]);
        // The previous one and an orphan go, which makes room already.
        let secrets = vec![
            sp("prev", Some(5), false),
            sp("cur", Some(90), false),
            sp("orphan", Some(150), false),
            sp("old", Some(1), false),
            sp("expired", Some(2), true),
        ];
        assert_eq!(
            sp_secrets_to_delete(&secrets, "cur", Some("prev"), 100),
            vec!["prev", "orphan", "expired"]
        );
        // The current one is never deleted, even when "previous" names it.
        assert!(
            sp_secrets_to_delete(&[sp("cur", Some(200), true)], "cur", Some("cur"), 100).is_empty()
        );
    }

    fn key(id: &str, active: bool, created: i64) -> AccessKeyInfo {
        AccessKeyInfo {
            id: id.into(),
            active,
            created,
        }
    }

    #[test]
    fn access_keys_previous_orphan_inactive_and_foreign() {
        let cur = key("CUR", true, 50);
        assert_eq!(
            access_keys_to_delete(std::slice::from_ref(&cur), "CUR", None, 100).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(
            access_keys_to_delete(
                &[cur.clone(), key("PREV", false, 10)],
                "CUR",
                Some("PREV"),
                100
            )
            .unwrap(),
            vec!["PREV"]
        );
        // Orphan of a crashed createSecret: newer than the current version.
        assert_eq!(
            access_keys_to_delete(&[cur.clone(), key("NEW", true, 120)], "CUR", None, 100).unwrap(),
            vec!["NEW"]
        );
        assert_eq!(
            access_keys_to_delete(&[cur.clone(), key("OFF", false, 1)], "CUR", None, 100).unwrap(),
            vec!["OFF"]
        );
        let error =
            access_keys_to_delete(&[cur.clone(), key("HANDMADE", true, 1)], "CUR", None, 100)
                .unwrap_err();
        assert!(error.contains("HANDMADE"), "{error}");
        // The current key gone (deleted by hand): two foreign keys block.
        assert!(
            access_keys_to_delete(&[key("X", true, 1), key("Y", true, 2)], "CUR", None, 100)
                .is_err()
        );
    }

    #[test]
    fn parses_times() {
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_time("2026-11-21T12:34:56.789Z"), Some(1_795_264_496));
        assert_eq!(parse_time("2026-11-21T13:34:56+01:00"), Some(1_795_264_496));
        assert_eq!(parse_time("1795264496789"), Some(1_795_264_496));
        for bad in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-11-21T12:34:56",
            "2026-11-21T12:34:56.Z",
            "2026-02-30T00:00:00Z",
            "2026-11-21T12:34:56+24:00",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    /// Regression: a non-ASCII character where the offset is expected made
    /// the parser slice a `str` inside that character, and panic.
    #[test]
    fn non_ascii_times_are_rejected_without_panicking() {
        for bad in [
            "2026-11-21T12:34:56é:000",
            "2026-11-21T12:34:56+0é:0",
            "2026-11-21T12:34:56+01:é",
            "2026-11-21T12:34:56.5€000",
            "202é-11-21T12:34:56Z",
            "2026-11-21T12:34:5é",
            "２０２６-11-21T12:34:56Z",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    /// (year, month, day) of a day count since 1970-01-01 (Hinnant's inverse).
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

    /// An RFC 3339 rendering of `epoch` at an offset of `offset_minutes`.
    fn rfc3339(epoch: i64, offset_minutes: i64, fraction: Option<u32>, lower: bool) -> String {
        let local = epoch + offset_minutes * 60;
        let (y, m, d) = civil_from_days(local.div_euclid(86_400));
        let secs = local.rem_euclid(86_400);
        let zone = match offset_minutes {
            0 if lower => "z".to_string(),
            0 => "Z".to_string(),
            o => format!(
                "{}{:02}:{:02}",
                if o < 0 { '-' } else { '+' },
                o.abs() / 60,
                o.abs() % 60
            ),
        };
        let fraction = fraction.map(|f| format!(".{f}")).unwrap_or_default();
        format!(
            "{y:04}-{m:02}-{d:02}{}{:02}:{:02}:{:02}{fraction}{zone}",
            if lower { 't' } else { 'T' },
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
    }

    fn any_keys() -> impl Strategy<Value = Vec<AccessKeyInfo>> {
        proptest::collection::vec((any::<bool>(), 0i64..200), 0..3).prop_map(|v| {
            v.into_iter()
                .enumerate()
                .map(|(i, (active, created))| key(&format!("K{i}"), active, created))
                .collect()
        })
    }

    proptest! {
        #[test]
        fn time_matches_day_arithmetic(days in 0i64..100_000, secs in 0i64..86_400) {
            let t = days * 86_400 + secs;
            // Rebuild the civil date by walking from the epoch in whole days.
            let (mut y, mut m, mut d) = (1970i64, 1i64, 1i64);
            let mut left = days;
            let month_len = |y: i64, m: i64| match m {
                2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            while left > 0 {
                let step = (month_len(y, m) - d + 1).min(left);
                left -= step;
                d += step;
                if d > month_len(y, m) { d = 1; m += 1; if m > 12 { m = 1; y += 1; } }
            }
            let text = format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs / 60 % 60, secs % 60);
            prop_assert_eq!(parse_time(&text), Some(t));
        }

        /// Whatever Databricks sends, the parser answers and never panics.
        #[test]
        fn time_parser_never_panics(text in any::<String>()) {
            let _ = parse_time(&text);
        }

        /// Near-valid texts reach every branch: a valid time cut anywhere
        /// (on a char boundary) and followed by anything.
        #[test]
        fn time_parser_never_panics_on_damaged_times(
            epoch in 0i64..253_402_300_799,
            cut in 0usize..30,
            tail in "\\PC{0,8}",
        ) {
            let valid = rfc3339(epoch, 0, None, false);
            let cut = cut.min(valid.len());
            let text = format!("{}{tail}", &valid[..cut]);
            if let Some(parsed) = parse_time(&text) {
                prop_assert!(parsed >= -86_400);
            }
        }

        /// Every valid RFC 3339 time reads back as the instant it names.
        #[test]
        fn valid_times_round_trip(
            epoch in 0i64..253_402_214_400,
            offset in -(23 * 60 + 59)..=(23i64 * 60 + 59),
            fraction in proptest::option::of(0u32..1_000_000_000),
            lower in any::<bool>(),
        ) {
            let text = rfc3339(epoch, offset, fraction, lower);
            prop_assert_eq!(parse_time(&text), Some(epoch), "{}", text);
        }

        #[test]
        fn access_key_choice_is_safe(keys in any_keys(), current in 0usize..3, previous in proptest::option::of(0usize..3), stored in 0i64..200) {
            let current = format!("K{current}");
            let previous = previous.map(|p| format!("K{p}"));
            match access_keys_to_delete(&keys, &current, previous.as_deref(), stored) {
                Ok(delete) => {
                    prop_assert!(!delete.contains(&current));
                    prop_assert!(keys.len() - delete.len() < ACCESS_KEYS_PER_USER, "room for the new key");
                    for id in &delete {
                        let k = keys.iter().find(|k| &k.id == id).unwrap();
                        prop_assert!(Some(id) == previous.as_ref() || !k.active || k.created > stored,
                            "only previous, inactive or orphaned keys are deleted");
                    }
                }
                Err(message) => {
                    prop_assert!(keys.iter().any(|k| k.id != current && k.active && message.contains(&k.id)));
                }
            }
        }

        #[test]
        fn sp_choice_is_safe(
            created in proptest::collection::vec((proptest::option::of(0i64..200), any::<bool>()), 0..9),
            current in 0usize..9,
            previous in proptest::option::of(0usize..9),
            stored in 0i64..200,
        ) {
            let secrets: Vec<SpSecretInfo> = created.iter().enumerate().map(|(i, (c, e))| sp(&format!("s{i}"), *c, *e)).collect();
            let current = format!("s{current}");
            let previous = previous.map(|p| format!("s{p}"));
            let delete = sp_secrets_to_delete(&secrets, &current, previous.as_deref(), stored);
            prop_assert!(!delete.contains(&current));
            prop_assert!(secrets.len() - delete.len() < SP_SECRETS_PER_PRINCIPAL, "room for the new secret");
            let unique: BTreeSet<&String> = delete.iter().collect();
            prop_assert_eq!(unique.len(), delete.len());
            // Making room takes the oldest unused: no kept unused secret is older
            // than one deleted only to make room.
            for id in &delete {
                let s = secrets.iter().find(|s| &s.id == id).unwrap();
                let for_room = Some(id) != previous.as_ref() && !s.expired && s.created.is_none_or(|c| c <= stored);
                if for_room {
                    for kept in secrets.iter().filter(|k| k.id != current && !delete.contains(&k.id)) {
                        prop_assert!(kept.created.unwrap_or(i64::MIN) >= s.created.unwrap_or(i64::MIN));
                    }
                }
            }
        }
    }
}
