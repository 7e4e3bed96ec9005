//! Settings, read once at init from the environment.

use crate::plan::Scope;
use crate::savings::Prices;
use crate::workspaces::{parse_workspaces, WorkspaceRef};
use lakeops_shared::settings::Env;

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `VPC_ID` and `SLEEP_SCHEDULE_NAME`: only gateways of this VPC tagged
    /// `lakeops:sleep-schedule=<name>` are ever touched.
    pub scope: Scope,
    /// `STATE_BUCKET`, `STATE_PREFIX` (default `network-sleep/`): the record store.
    pub state_bucket: String,
    pub state_prefix: String,
    /// `WORKSPACES`: the Databricks workspaces whose work keeps the network up.
    pub workspaces: Vec<WorkspaceRef>,
    /// `SLEEP_WITHOUT_WORKSPACE_CHECK` (default false): with no `WORKSPACES`,
    /// sleep anyway. Without it, a sleep with no workspace to check is refused.
    pub sleep_without_workspace_check: bool,
    /// `IDLE_MINUTES` (default 60): a running cluster idle this long is terminated by a sleep.
    pub idle_minutes: u64,
    /// `NAT_GATEWAY_HOURLY_USD` (0.045), `PUBLIC_IPV4_HOURLY_USD` (0.005).
    pub prices: Prices,
    /// `RELEASE_EIPS` (default false): release the EIPs on sleep (an event's
    /// `release_eips` overrides).
    pub release_eips: bool,
    /// `LAKEOPS_ENVIRONMENT`: the `Environment` metric dimension when set.
    pub environment: Option<String>,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '+' | '=' | '@' | '/')
        })
}

impl Settings {
    pub fn read(env: &mut Env) -> Self {
        let vpc_id: String = env.required("VPC_ID");
        if !vpc_id.is_empty() && !vpc_id.starts_with("vpc-") {
            env.problem("VPC_ID", "must be a VPC id (vpc-...)");
        }
        let schedule: String = env.required("SLEEP_SCHEDULE_NAME");
        if !schedule.is_empty() && !valid_name(&schedule) {
            env.problem(
                "SLEEP_SCHEDULE_NAME",
                "must be a tag value of letters, digits and - _ . : + = @ /",
            );
        }
        let state_bucket: String = env.required("STATE_BUCKET");
        let mut state_prefix: String = env.or("STATE_PREFIX", "network-sleep/".to_string());
        if !state_prefix.is_empty() && !state_prefix.ends_with('/') {
            state_prefix.push('/');
        }
        let workspaces = match env.optional::<String>("WORKSPACES") {
            None => Vec::new(),
            Some(json) => match parse_workspaces(&json) {
                Ok(list) => list,
                Err(problems) => {
                    env.problem("WORKSPACES", problems.join("; "));
                    Vec::new()
                }
            },
        };
        let sleep_without_workspace_check: bool =
            env.or(crate::verdict::WITHOUT_CHECK_SETTING, false);
        let idle_minutes: u64 = env.or("IDLE_MINUTES", 60);
        let defaults = Prices::default();
        let prices = Prices {
            nat_gateway_hourly_usd: env
                .or("NAT_GATEWAY_HOURLY_USD", defaults.nat_gateway_hourly_usd),
            public_ipv4_hourly_usd: env
                .or("PUBLIC_IPV4_HOURLY_USD", defaults.public_ipv4_hourly_usd),
        };
        if !(prices.nat_gateway_hourly_usd >= 0.0 && prices.public_ipv4_hourly_usd >= 0.0) {
            env.problem(
                "NAT_GATEWAY_HOURLY_USD",
                "and PUBLIC_IPV4_HOURLY_USD must not be negative",
            );
        }
        let release_eips: bool = env.or("RELEASE_EIPS", false);
        let environment = env.optional::<String>("LAKEOPS_ENVIRONMENT");
        Self {
            scope: Scope { vpc_id, schedule },
            state_bucket,
            state_prefix,
            workspaces,
            sleep_without_workspace_check,
            idle_minutes,
            prices,
            release_eips,
            environment,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_map(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn reads_defaults_and_names_every_problem() {
        let mut e = env(&[
            ("VPC_ID", "vpc-123"),
            ("SLEEP_SCHEDULE_NAME", "nightly"),
            ("STATE_BUCKET", "b"),
            ("STATE_PREFIX", "x"),
        ]);
        let s = Settings::read(&mut e);
        e.finish().unwrap();
        assert_eq!(s.idle_minutes, 60);
        assert_eq!(s.state_prefix, "x/");
        assert_eq!(s.prices, Prices::default());
        assert!(!s.release_eips);
        assert!(s.workspaces.is_empty());
        assert!(!s.sleep_without_workspace_check);

        let mut e = env(&[
            ("VPC_ID", "subnet-1"),
            ("SLEEP_SCHEDULE_NAME", "bad name!"),
            ("WORKSPACES", "[{}]"),
            ("IDLE_MINUTES", "soon"),
            ("SLEEP_WITHOUT_WORKSPACE_CHECK", "maybe"),
            ("NAT_GATEWAY_HOURLY_USD", "-1"),
        ]);
        Settings::read(&mut e);
        let text = e.finish().unwrap_err().to_string();
        for name in [
            "VPC_ID",
            "SLEEP_SCHEDULE_NAME",
            "STATE_BUCKET",
            "WORKSPACES",
            "IDLE_MINUTES",
            "SLEEP_WITHOUT_WORKSPACE_CHECK",
            "NAT_GATEWAY_HOURLY_USD",
        ] {
            assert!(text.contains(name), "{name} missing from: {text}");
        }
    }
}
