//! The estimate of what sleeping saved this month.
//!
//! A NAT gateway is billed per hour it exists (about $0.045 in most regions)
//! plus per GB processed; sleeping saves the hours. A public IPv4 address is
//! billed per hour ($0.005) whether associated or idle, so keeping the EIP
//! saves nothing on it; releasing it saves its hours too.

use crate::clock;
use crate::record::{Interval, RestoreRecord};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prices {
    pub nat_gateway_hourly_usd: f64,
    pub public_ipv4_hourly_usd: f64,
}

impl Default for Prices {
    fn default() -> Self {
        Self {
            nat_gateway_hourly_usd: 0.045,
            public_ipv4_hourly_usd: 0.005,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Savings {
    /// Gateway-hours asleep since the start of this UTC month.
    pub hours: f64,
    pub dollars: f64,
    #[serde(with = "clock::as_rfc3339")]
    pub month_start: i64,
}

/// Seconds of `interval` inside `[window_start, now]`; an open interval runs to `now`.
pub fn seconds_within(interval: &Interval, window_start: i64, now: i64) -> i64 {
    let from = interval.from.max(window_start);
    let to = interval.to.unwrap_or(now).min(now);
    (to - from).max(0)
}

/// What the records' sleep intervals saved this month, up to `now`.
pub fn this_month(records: &[RestoreRecord], now: i64, prices: Prices) -> Savings {
    let start = clock::month_start(now);
    let mut hours = 0.0;
    let mut dollars = 0.0;
    for interval in records.iter().flat_map(|r| r.sleeps.iter()) {
        let h = seconds_within(interval, start, now) as f64 / 3600.0;
        hours += h;
        dollars += h * prices.nat_gateway_hourly_usd;
        if interval.eip_released {
            dollars += h * prices.public_ipv4_hourly_usd;
        }
    }
    Savings {
        hours: round2(hours),
        dollars: round2(dollars),
        month_start: start,
    }
}

/// What a schedule saves in a month of `weeks` weeks: the planning figure of
/// functions/network-sleep/README.md (`gateways` gateways, asleep `hours_per_weekday` hours on each of
/// `weekdays` days and all of the other days).
pub fn monthly_plan(gateways: u32, hours_per_weekday: f64, weekdays: u32, prices: Prices) -> f64 {
    let weeks = 30.0 / 7.0;
    let weekend_days = 7u32.saturating_sub(weekdays) as f64;
    let hours =
        gateways as f64 * weeks * (weekdays as f64 * hours_per_weekday + weekend_days * 24.0);
    round2(hours * prices.nat_gateway_hourly_usd)
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::record_for_sleep;
    use crate::record::tests::{gateway, table};
    use proptest::prelude::*;

    const NOW: i64 = 1_795_264_488; // 2026-11-21T12:34:48Z

    fn record_with(sleeps: Vec<Interval>) -> RestoreRecord {
        let mut record = record_for_sleep(
            "vpc-1",
            "nightly",
            "s",
            &gateway("nat-1", 0),
            &[table("rtb", &[])],
            None,
            NOW,
        );
        record.sleeps = sleeps;
        record
    }

    #[test]
    fn counts_only_this_month_and_open_intervals_up_to_now() {
        let start = clock::month_start(NOW);
        let records = vec![
            // 10 hours, half of it last month.
            record_with(vec![Interval {
                from: start - 5 * 3600,
                to: Some(start + 5 * 3600),
                eip_released: false,
            }]),
            // Asleep for the last 2 hours, EIP released.
            record_with(vec![Interval {
                from: NOW - 7200,
                to: None,
                eip_released: true,
            }]),
        ];
        let savings = this_month(&records, NOW, Prices::default());
        assert_eq!(savings.hours, 7.0);
        // 5 h * $0.045 + 2 h * ($0.045 + $0.005) = $0.325, rounded to cents.
        assert!(
            (savings.dollars - 0.325).abs() <= 0.005 + 1e-9,
            "{}",
            savings.dollars
        );
        assert_eq!(clock::rfc3339(savings.month_start), "2026-11-01T00:00:00Z");
    }

    #[test]
    fn the_issue_example_three_gateways_nights_and_weekends() {
        // 3 AZs always on: 3 * 720 h * 0.045 = $97.20 a month ("about $100").
        assert!((3.0 * 720.0 * 0.045 - 97.2f64).abs() < 1e-9);
        // Asleep 21:00-07:00 on weekdays and all weekend.
        // 4 nights of 10 h + Friday 21:00 to Monday 07:00 (58 h) = 98 h a week.
        let saved = monthly_plan(3, 10.0, 5, Prices::default());
        assert_eq!(saved, round2(3.0 * 98.0 * 30.0 / 7.0 * 0.045));
        assert!((56.0..58.0).contains(&saved), "{saved}");
    }

    proptest! {
        #[test]
        fn savings_are_bounded_by_the_month_so_far(
            intervals in proptest::collection::vec((0i64..5_000_000, 0i64..400_000, any::<bool>(), any::<bool>()), 0..20)
        ) {
            let sleeps: Vec<Interval> = intervals
                .iter()
                .map(|(back, len, open, released)| {
                    let from = NOW - back;
                    Interval { from, to: if *open { None } else { Some(from + len) }, eip_released: *released }
                })
                .collect();
            let n = sleeps.len() as f64;
            let savings = this_month(&[record_with(sleeps.clone())], NOW, Prices::default());
            let month_hours = (NOW - clock::month_start(NOW)) as f64 / 3600.0;
            prop_assert!(savings.hours >= 0.0);
            prop_assert!(savings.hours <= n * month_hours + 0.01);
            prop_assert!(savings.dollars <= savings.hours * 0.05 + 0.01);
            // Splitting the records changes nothing.
            let split: Vec<RestoreRecord> = sleeps.iter().map(|i| record_with(vec![*i])).collect();
            let apart = this_month(&split, NOW, Prices::default());
            prop_assert!((apart.hours - savings.hours).abs() < 0.01 * (n + 1.0));
        }

        #[test]
        fn more_time_never_saves_less(back in 0i64..3_000_000, step in 0i64..100_000) {
            let record = record_with(vec![Interval { from: NOW - back, to: None, eip_released: false }]);
            let earlier = this_month(std::slice::from_ref(&record), NOW, Prices::default());
            let later_now = NOW + step;
            let later = this_month(&[record], later_now, Prices::default());
            if clock::month_start(later_now) == clock::month_start(NOW) {
                prop_assert!(later.hours >= earlier.hours);
            }
        }
    }
}
