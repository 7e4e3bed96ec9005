//! The data lake admin list that `PutDataLakeSettings` writes whole, with no
//! IAM resource to scope it: it always keeps the identity the function runs as.

use crate::fake::FakeLake;
use crate::handler::{self, Config};
use crate::model::SettingsView;
use crate::plan::{check_admins_keep_caller, settings_change, Desired, SettingsChange};
use lakeops_shared::retry::RetryPolicy;
use lakeops_shared::ErrorKind;
use serde_json::json;
use std::collections::BTreeSet;

const CALLER_SESSION: &str = "arn:aws:sts::123456789012:assumed-role/runner/lambda-session";
const RUNNER: &str = "arn:aws:iam::123456789012:role/runner";
const PLATFORM: &str = "arn:aws:iam::123456789012:role/platform-admin";

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn wanting(admins: &[&str]) -> Desired {
    Desired {
        admins: Some(set(admins)),
        ..Desired::default()
    }
}

#[test]
fn a_caller_that_is_not_yet_an_admin_is_kept_in_the_list_it_writes() {
    let current = SettingsView {
        admins: set(&["arn:aws:iam::123456789012:role/old-admin"]),
        ..SettingsView::default()
    };
    let change = settings_change(&current, &wanting(&[PLATFORM]), CALLER_SESSION);
    assert_eq!(change.admins, Some(set(&[PLATFORM, RUNNER])));
    assert!(check_admins_keep_caller(&change, CALLER_SESSION).is_ok());
}

#[test]
fn a_caller_listed_under_a_path_is_kept_as_listed() {
    let listed = "arn:aws:iam::123456789012:role/service-role/runner";
    let current = SettingsView {
        admins: set(&[listed]),
        ..SettingsView::default()
    };
    let change = settings_change(&current, &wanting(&[PLATFORM]), CALLER_SESSION);
    assert_eq!(change.admins, Some(set(&[PLATFORM, listed])));
}

#[test]
fn an_admin_list_without_the_caller_is_never_written() {
    let dropping = SettingsChange {
        admins: Some(set(&[PLATFORM])),
        ..SettingsChange::default()
    };
    let error = check_admins_keep_caller(&dropping, CALLER_SESSION).unwrap_err();
    assert_eq!(error.kind, ErrorKind::Terminal);
    assert!(error.message.contains(RUNNER), "{error}");
    let empty = SettingsChange {
        admins: Some(BTreeSet::new()),
        ..SettingsChange::default()
    };
    assert!(check_admins_keep_caller(&empty, CALLER_SESSION).is_err());

    // Unmanaged admins are written back as they are: nothing to check.
    let unmanaged = SettingsChange {
        lake_formation_only: Some(true),
        ..SettingsChange::default()
    };
    assert!(check_admins_keep_caller(&unmanaged, CALLER_SESSION).is_ok());
    let keeping = SettingsChange {
        admins: Some(set(&[PLATFORM, RUNNER])),
        ..SettingsChange::default()
    };
    assert!(check_admins_keep_caller(&keeping, CALLER_SESSION).is_ok());
}

#[tokio::test]
async fn the_first_run_keeps_the_function_an_admin_and_says_so() {
    let lake = FakeLake {
        caller: CALLER_SESSION.into(),
        ..FakeLake::default()
    };
    let config = Config {
        default_policy_uri: None,
        retry: RetryPolicy::immediate(3),
    };
    let event = json!({"mode": "apply", "policy": {"admins": [PLATFORM]}});
    let report = handler::handle(&lake, &config, event).await.unwrap();
    assert_eq!(lake.state().settings.admins, set(&[PLATFORM, RUNNER]));
    let warnings = report["warnings"].to_string();
    assert!(warnings.contains("stays an admin"), "{warnings}");
}
