//! UTC calendar arithmetic on epoch seconds, and RFC 3339 (de)serialisation
//! of timestamps in restore records. Savings are counted per UTC calendar
//! month, as AWS bills.

use aws_smithy_types::date_time::Format;
use aws_smithy_types::DateTime;
use serde::{Deserialize, Deserializer, Serializer};

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (inverse of [`days_from_civil`]).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + if month <= 2 { 1 } else { 0 };
    (year, month, day)
}

/// The first second of the UTC month that contains `epoch`.
pub fn month_start(epoch: i64) -> i64 {
    let (year, month, _) = civil_from_days(epoch.div_euclid(86_400));
    days_from_civil(year, month, 1) * 86_400
}

/// The first second of the UTC month before the one that contains `epoch`.
pub fn previous_month_start(epoch: i64) -> i64 {
    month_start(month_start(epoch) - 1)
}

pub fn rfc3339(epoch: i64) -> String {
    DateTime::from_secs(epoch)
        .fmt(Format::DateTime)
        .unwrap_or_else(|_| epoch.to_string())
}

pub fn parse_rfc3339(text: &str) -> Option<i64> {
    DateTime::from_str(text, Format::DateTime)
        .ok()
        .map(|t| t.secs())
}

pub fn now_epoch() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// Epoch milliseconds, the unit of Databricks timestamps.
pub fn now_epoch_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// `#[serde(with = "clock::as_rfc3339")]` for an `i64` epoch.
pub mod as_rfc3339 {
    use super::*;

    pub fn serialize<S: Serializer>(epoch: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&rfc3339(*epoch))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let text = String::deserialize(d)?;
        parse_rfc3339(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("not an RFC 3339 timestamp: {text:?}")))
    }
}

/// `#[serde(with = "clock::as_optional_rfc3339")]` for an `Option<i64>` epoch.
pub mod as_optional_rfc3339 {
    use super::*;

    pub fn serialize<S: Serializer>(epoch: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match epoch {
            Some(epoch) => s.serialize_some(&rfc3339(*epoch)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(text) => parse_rfc3339(&text).map(Some).ok_or_else(|| {
                serde::de::Error::custom(format!("not an RFC 3339 timestamp: {text:?}"))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(
            days_from_civil(2024, 3, 1) - days_from_civil(2024, 2, 1),
            29
        );
        assert_eq!(
            days_from_civil(2023, 3, 1) - days_from_civil(2023, 2, 1),
            28
        );
        // 2026-11-21T12:34:48Z
        let t = 1_795_264_488;
        assert_eq!(rfc3339(month_start(t)), "2026-11-01T00:00:00Z");
        assert_eq!(rfc3339(previous_month_start(t)), "2026-10-01T00:00:00Z");
        assert_eq!(
            rfc3339(previous_month_start(days_from_civil(2026, 1, 15) * 86_400)),
            "2025-12-01T00:00:00Z"
        );
        assert_eq!(parse_rfc3339("2026-11-01T00:00:00Z"), Some(month_start(t)));
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    proptest! {
        #[test]
        fn civil_round_trips(days in -1_000_000i64..1_000_000) {
            let (y, m, d) = civil_from_days(days);
            prop_assert!((1..=12).contains(&m));
            prop_assert!((1..=31).contains(&d));
            prop_assert_eq!(days_from_civil(y, m, d), days);
        }

        #[test]
        fn month_start_is_the_first_of_the_month_and_not_after(epoch in 0i64..5_000_000_000) {
            let start = month_start(epoch);
            prop_assert!(start <= epoch);
            prop_assert!(epoch - start < 31 * 86_400);
            prop_assert_eq!(start % 86_400, 0);
            prop_assert_eq!(civil_from_days(start / 86_400).2, 1);
            let previous = previous_month_start(epoch);
            prop_assert!(start - previous >= 28 * 86_400 && start - previous <= 31 * 86_400);
        }

        #[test]
        fn rfc3339_round_trips(epoch in 0i64..5_000_000_000) {
            prop_assert_eq!(parse_rfc3339(&rfc3339(epoch)), Some(epoch));
        }
    }
}
