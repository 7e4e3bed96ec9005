//! Property tests of the plan, and the handler's flow against the in-memory fake.

use crate::fake::FakeLake;
use crate::handler::{self, parse_event, Config, Mode, Parsed, PolicySource};
use crate::lake::BatchOp;
use crate::model::*;
use crate::plan::*;
use crate::policy;
use lakeops_shared::retry::RetryPolicy;
use lakeops_shared::ErrorKind;
use proptest::prelude::*;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

const CALLER_SESSION: &str = "arn:aws:sts::123456789012:assumed-role/runner/lambda-session";
const RUNNER: &str = "arn:aws:iam::123456789012:role/runner";
const ETL: &str = "arn:aws:iam::123456789012:role/etl";
const ANALYST: &str = "arn:aws:iam::123456789012:role/analyst";
const OUTSIDER: &str = "arn:aws:iam::123456789012:role/outsider";

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------------------
// Strategies.
// ---------------------------------------------------------------------------

const PRINCIPALS: &[&str] = &[
    RUNNER,
    "arn:aws:iam::123456789012:role/service-role/runner", // the runner under a path
    ETL,
    ANALYST,
    OUTSIDER,
    "arn:aws:iam::123456789012:user/alice",
    IAM_ALLOWED_PRINCIPALS,
];
const PERMISSIONS: &[&str] = &["ALL", "SELECT", "DESCRIBE", "ALTER", "INSERT"];

fn resources() -> Vec<Resource> {
    vec![
        Resource::Catalog,
        Resource::Database { name: "raw".into() },
        Resource::Database {
            name: "curated".into(),
        },
        Resource::AllTables {
            database: "raw".into(),
        },
        Resource::AllTables {
            database: "curated".into(),
        },
        Resource::Table {
            database: "curated".into(),
            name: "orders".into(),
        },
        Resource::Columns {
            database: "curated".into(),
            table: "orders".into(),
            columns: Columns::AllExcept(set(&["card"])),
        },
        Resource::DataLocation {
            arn: "arn:aws:s3:::lake-raw".into(),
        },
        Resource::LfTag {
            key: "tier".into(),
            values: set(&["raw", "curated"]),
        },
        Resource::LfTagPolicy {
            target: TagPolicyTarget::Table,
            expression: BTreeMap::from([("tier".to_string(), set(&["curated"]))]),
        },
    ]
}

fn subset(pool: &'static [&'static str]) -> impl Strategy<Value = BTreeSet<String>> {
    proptest::sample::subsequence(pool, 0..=pool.len())
        .prop_map(|v| v.into_iter().map(String::from).collect())
}

fn permissions(grantable_within: bool) -> impl Strategy<Value = Permissions> {
    (subset(PERMISSIONS), subset(PERMISSIONS)).prop_map(move |(permissions, grantable)| {
        let grantable = if grantable_within {
            grantable.intersection(&permissions).cloned().collect()
        } else {
            grantable
        };
        Permissions {
            permissions,
            grantable,
        }
    })
}

fn grant_map(grantable_within: bool) -> impl Strategy<Value = GrantMap> {
    proptest::collection::btree_map(
        (0..PRINCIPALS.len(), 0..resources().len()),
        permissions(grantable_within),
        0..25,
    )
    .prop_map(|m| {
        let pool = resources();
        m.into_iter()
            .filter(|(_, p)| !p.is_empty())
            .map(|((p, r), perms)| ((PRINCIPALS[p].to_string(), pool[r].clone()), perms))
            .collect()
    })
}

const TAG_KEYS: &[&str] = &["tier", "pii", "domain"];
const TAG_VALUES: &[&str] = &["a", "b", "c"];

fn tag_catalog() -> impl Strategy<Value = BTreeMap<String, BTreeSet<String>>> {
    proptest::collection::btree_map(proptest::sample::select(TAG_KEYS), subset(TAG_VALUES), 0..3)
        .prop_map(|m| {
            m.into_iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| (k.to_string(), v))
                .collect()
        })
}

fn tag_targets() -> Vec<TagTarget> {
    vec![
        TagTarget::Database {
            name: "curated".into(),
        },
        TagTarget::Table {
            database: "curated".into(),
            name: "orders".into(),
        },
        TagTarget::Table {
            database: "raw".into(),
            name: "events".into(),
        },
    ]
}

fn settings() -> impl Strategy<Value = SettingsView> {
    (
        subset(PRINCIPALS),
        subset(PRINCIPALS),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(admins, read_only, db_iam, table_iam)| {
            let iam = |on: bool| {
                if on {
                    set(&[IAM_ALLOWED_PRINCIPALS])
                } else {
                    BTreeSet::new()
                }
            };
            SettingsView {
                admins,
                read_only_admins: read_only,
                create_database_defaults: iam(db_iam),
                create_table_defaults: iam(table_iam),
            }
        })
}

fn state() -> impl Strategy<Value = LakeState> {
    (
        settings(),
        grant_map(false),
        tag_catalog(),
        proptest::collection::btree_map(
            0..3usize,
            proptest::collection::btree_map(
                proptest::sample::select(TAG_KEYS),
                subset(TAG_VALUES),
                0..3,
            ),
            0..3,
        ),
        any::<bool>(),
    )
        .prop_map(
            |(settings, grants, lf_tags, assignments, registered)| LakeState {
                settings,
                grants,
                lf_tags,
                tag_assignments: assignments
                    .into_iter()
                    .map(|(i, a)| {
                        (
                            tag_targets()[i].clone(),
                            a.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
                        )
                    })
                    .collect(),
                registered_locations: if registered {
                    set(&["arn:aws:s3:::lake-raw"])
                } else {
                    BTreeSet::new()
                },
            },
        )
}

fn desired() -> impl Strategy<Value = Desired> {
    (
        grant_map(true),
        subset(PRINCIPALS),
        proptest::option::of(subset(&PRINCIPALS[..6])),
        proptest::option::of(subset(PRINCIPALS)),
        proptest::option::of(any::<bool>()),
        tag_catalog(),
        proptest::collection::btree_map(
            0..3usize,
            proptest::collection::btree_map(
                proptest::sample::select(TAG_KEYS),
                proptest::sample::select(TAG_VALUES),
                1..3,
            ),
            0..3,
        ),
    )
        .prop_map(
            |(
                grants,
                extra_managed,
                admins,
                read_only_admins,
                lake_formation_only,
                lf_tags,
                assignments,
            )| {
                let mut managed: BTreeSet<Principal> =
                    grants.keys().map(|(p, _)| p.clone()).collect();
                managed.extend(extra_managed);
                Desired {
                    grants,
                    managed,
                    admins,
                    read_only_admins,
                    lake_formation_only,
                    lf_tags,
                    tag_assignments: assignments
                        .into_iter()
                        .map(|(i, a)| {
                            (
                                tag_targets()[i].clone(),
                                a.into_iter()
                                    .map(|(k, v)| (k.to_string(), v.to_string()))
                                    .collect(),
                            )
                        })
                        .collect(),
                    locations: vec![policy::PolicyLocation {
                        arn: "arn:aws:s3:::lake-raw".into(),
                        register: true,
                        role_arn: None,
                    }],
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Applying the plan reaches the policy: planning again finds nothing.
    #[test]
    fn applying_the_plan_converges(desired in desired(), current in state()) {
        let plan = diff(&desired, &current, CALLER_SESSION);
        let next = apply(&current, &plan);
        let again = diff(&desired, &next, CALLER_SESSION);
        prop_assert!(again.is_empty(), "left over: {again:#?}");
        // And every desired grant is held.
        for (key, wanted) in &desired.grants {
            let held = next.grants.get(key).cloned().unwrap_or_default();
            prop_assert!(wanted.permissions.is_subset(&held.permissions));
            prop_assert!(wanted.grantable.is_subset(&held.grantable));
        }
    }

    /// Revokes touch only managed principals, never the running identity, and
    /// never take from an unmanaged principal.
    #[test]
    fn revokes_only_touch_managed_principals(desired in desired(), current in state()) {
        let plan = diff(&desired, &current, CALLER_SESSION);
        for revoke in &plan.revokes {
            prop_assert!(desired.managed.contains(&revoke.principal), "{revoke:?}");
            prop_assert!(!is_caller(&revoke.principal, CALLER_SESSION), "{revoke:?}");
        }
        let next = apply(&current, &plan);
        for ((principal, resource), held) in &current.grants {
            if !desired.managed.contains(principal) || is_caller(principal, CALLER_SESSION) {
                let after = next.grants.get(&(principal.clone(), resource.clone())).cloned().unwrap_or_default();
                prop_assert!(held.permissions.is_subset(&after.permissions), "{principal} lost permissions on {resource}");
                prop_assert!(held.grantable.is_subset(&after.grantable), "{principal} lost grant options on {resource}");
            }
        }
    }

    /// The identity the function runs as stays an admin, whatever the policy says.
    #[test]
    fn the_running_admin_is_never_removed(desired in desired(), current in state()) {
        let plan = diff(&desired, &current, CALLER_SESSION);
        let next = apply(&current, &plan);
        let was_admin: BTreeSet<_> = current.settings.admins.iter().filter(|a| is_caller(a, CALLER_SESSION)).collect();
        for admin in was_admin {
            prop_assert!(next.settings.admins.contains(admin), "{admin} was dropped");
        }
        if let Some(admins) = &desired.admins {
            prop_assert!(admins.is_subset(&next.settings.admins));
            // A managed list always keeps the caller, admin before or not.
            prop_assert!(next.settings.admins.iter().any(|a| is_caller(a, CALLER_SESSION)));
            prop_assert!(check_admins_keep_caller(&plan.settings, CALLER_SESSION).is_ok());
        }
    }

    /// Unmanaged settings stay as they are when the policy leaves them out.
    #[test]
    fn unmanaged_settings_are_untouched(mut desired in desired(), current in state()) {
        desired.admins = None;
        desired.read_only_admins = None;
        desired.lake_formation_only = None;
        let plan = diff(&desired, &current, CALLER_SESSION);
        prop_assert!(plan.settings.is_empty());
        prop_assert_eq!(apply(&current, &plan).settings, current.settings);
    }

    /// Batches never exceed 20 entries and lose or reorder nothing.
    #[test]
    fn batches_are_at_most_twenty(entries in proptest::collection::vec(any::<u16>(), 0..200)) {
        let chunks: Vec<&[u16]> = batches(&entries).collect();
        prop_assert!(chunks.iter().all(|c| !c.is_empty() && c.len() <= MAX_BATCH));
        prop_assert_eq!(chunks.len(), entries.len().div_ceil(MAX_BATCH));
        prop_assert_eq!(chunks.concat(), entries);
    }

    /// A new table's run touches its database and nothing else.
    #[test]
    fn table_scope_stays_in_its_database(desired in desired(), current in state()) {
        let plan = diff(&desired, &current, CALLER_SESSION).within_database("curated");
        prop_assert!(plan.settings.is_empty() && plan.lf_tags.is_empty() && plan.register_locations.is_empty());
        for change in plan.grants.iter().chain(&plan.revokes) {
            prop_assert_eq!(change.resource.database(), Some("curated"));
        }
        for change in &plan.tag_assignments {
            prop_assert_eq!(change.target.database(), "curated");
        }
    }

    #[test]
    fn glob_agrees_with_a_regex_free_oracle(prefix in "[a-c]{0,3}", suffix in "[a-c]{0,3}", name in "[a-c]{0,6}") {
        let pattern = format!("{prefix}*{suffix}");
        let expected = name.len() >= prefix.len() + suffix.len() && name.starts_with(&prefix) && name.ends_with(&suffix);
        prop_assert_eq!(glob_matches(&pattern, &name), expected);
    }
}

#[test]
fn globs() {
    assert!(glob_matches("sales_*", "sales_2026"));
    assert!(glob_matches("*_daily", "orders_daily"));
    assert!(glob_matches("a*b*c", "axxbyyc"));
    assert!(!glob_matches("a*b*c", "axxcyyb"));
    assert!(glob_matches("orders", "orders"));
    assert!(!glob_matches("orders", "orders2"));
    assert!(!glob_matches("ab*ba", "aba"));
}

#[test]
fn grant_option_only_drift_is_fixed_by_revoke_then_grant() {
    let resource = Resource::AllTables {
        database: "curated".into(),
    };
    let key = (ETL.to_string(), resource.clone());
    let desired = Desired {
        grants: GrantMap::from([(
            key.clone(),
            Permissions {
                permissions: set(&["SELECT"]),
                grantable: BTreeSet::new(),
            },
        )]),
        managed: set(&[ETL]),
        ..Desired::default()
    };
    let current = LakeState {
        grants: GrantMap::from([(
            key.clone(),
            Permissions {
                permissions: set(&["SELECT"]),
                grantable: set(&["SELECT"]),
            },
        )]),
        ..LakeState::default()
    };
    let plan = diff(&desired, &current, CALLER_SESSION);
    assert_eq!(plan.revokes[0].permissions, set(&["SELECT"]));
    assert_eq!(plan.revokes[0].grantable, set(&["SELECT"]));
    assert_eq!(plan.grants[0].permissions, set(&["SELECT"]));
    assert!(plan.grants[0].grantable.is_empty());
    assert_eq!(apply(&current, &plan).grants[&key], desired.grants[&key]);
}

// ---------------------------------------------------------------------------
// Resolution against the catalog.
// ---------------------------------------------------------------------------

fn catalog() -> CatalogSnapshot {
    CatalogSnapshot::default()
        .with_table("raw", "events", &["id", "payload"])
        .with_table("curated", "orders", &["id", "total", "card"])
        .with_table("curated", "sales_2025", &["id"])
        .with_table("curated", "sales_2026", &["id"])
        .with_database("empty")
}

fn resolved(yaml: &str) -> Result<(Desired, Vec<String>), String> {
    let policy =
        policy::validate(&policy::parse_policy(yaml).unwrap()).map_err(|p| p.to_string())?;
    resolve(&policy, &catalog()).map_err(|p| p.to_string())
}

#[test]
fn unknown_databases_tables_and_columns_are_reported_together() {
    let error = resolved(&format!(
        r#"
grants:
  - principal: {ETL}
    resource: {{database: nope}}
    permissions: [ALL]
  - principal: {ETL}
    resource: {{table: {{database: raw, name: missing}}}}
    permissions: [SELECT]
  - principal: {ANALYST}
    resource: {{columns: {{database: curated, table: orders, names: [id, ssn]}}}}
    permissions: [SELECT]
  - principal: {ANALYST}
    resource: {{table: {{database: gone, name: "*"}}}}
    permissions: [SELECT]
"#
    ))
    .unwrap_err();
    for expected in [
        "grants[0].resource: database 'nope' does not exist",
        "grants[1].resource: table 'raw.missing' does not exist",
        "grants[2].resource: column 'ssn' does not exist in table 'curated.orders'",
        "grants[3].resource: database 'gone' does not exist",
    ] {
        assert!(error.contains(expected), "missing `{expected}` in {error}");
    }
}

#[test]
fn wildcards_globs_and_tag_assignments_resolve() {
    let (desired, warnings) = resolved(&format!(
        r#"
lf_tags: {{tier: [raw, curated], pii: ["true", "false"]}}
tag_assignments:
  - database: curated
    tags: {{tier: curated}}
  - database: curated
    tables: "sales_*"
    tags: {{pii: "false"}}
grants:
  - principal: {ANALYST}
    resource: {{table: {{database: curated, name: "*"}}}}
    permissions: [SELECT]
  - principal: {ANALYST}
    resource: {{table: {{database: curated, name: "sales_*"}}}}
    permissions: [ALTER]
  - principal: {ANALYST}
    resource: {{table: {{database: empty, name: "x_*"}}}}
    permissions: [SELECT]
"#
    ))
    .unwrap();
    assert!(desired.grants.contains_key(&(
        ANALYST.to_string(),
        Resource::AllTables {
            database: "curated".into()
        }
    )));
    for table in ["sales_2025", "sales_2026"] {
        let key = (
            ANALYST.to_string(),
            Resource::Table {
                database: "curated".into(),
                name: table.into(),
            },
        );
        assert_eq!(desired.grants[&key].permissions, set(&["ALTER"]));
    }
    assert_eq!(desired.tag_assignments.len(), 3);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("x_*"));
}

#[test]
fn conflicting_tag_values_are_reported() {
    let error = resolved(
        r#"
lf_tags: {tier: [raw, curated]}
tag_assignments:
  - database: curated
    tables: "*"
    tags: {tier: curated}
  - database: curated
    tables: orders
    tags: {tier: raw}
"#,
    )
    .unwrap_err();
    assert!(
        error.contains("table curated.orders would get both 'curated' and 'raw'"),
        "{error}"
    );
}

// ---------------------------------------------------------------------------
// Events.
// ---------------------------------------------------------------------------

#[test]
fn events_are_recognised() {
    let direct = parse_event(
        &json!({"mode": "apply", "policy_uri": "s3://b/p.yaml"}),
        None,
    )
    .unwrap();
    let Parsed::Run(request) = direct else {
        panic!()
    };
    assert_eq!(request.mode, Mode::Apply);
    assert_eq!(request.policy, PolicySource::Uri("s3://b/p.yaml".into()));

    let Parsed::Run(request) = parse_event(&json!({}), Some("s3://b/default.yaml")).unwrap() else {
        panic!()
    };
    assert_eq!(request.mode, Mode::Plan, "plan is the safe default");

    let glue = json!({
        "version": "0", "id": "1", "detail-type": "Glue Data Catalog Table State Change", "source": "aws.glue",
        "account": "123456789012", "time": "2026-01-01T00:00:00Z", "region": "us-east-1",
        "resources": ["arn:aws:glue:us-east-1:123456789012:table/curated/orders"],
        "detail": {"databaseName": "curated", "typeOfChange": "CreateTable", "tableName": "orders"}
    });
    let Parsed::Run(request) = parse_event(&glue, Some("s3://b/p.yaml")).unwrap() else {
        panic!()
    };
    assert_eq!(request.new_table.unwrap().table, "orders");
    assert_eq!(request.mode, Mode::Apply);

    let mut dropped = glue.clone();
    dropped["detail"]["typeOfChange"] = json!("DeleteTable");
    assert!(matches!(
        parse_event(&dropped, Some("s3://b/p.yaml")).unwrap(),
        Parsed::Ignored(_)
    ));

    let error = parse_event(&glue, None).unwrap_err();
    assert!(error.message.contains("POLICY_URI"), "{error}");
    let error = parse_event(&json!({"mode": "apply", "polcy_uri": "s3://b/p"}), None).unwrap_err();
    assert!(error.message.contains("polcy_uri"), "{error}");
    let error = parse_event(&json!({"mode": "destroy", "policy": {}}), None).unwrap_err();
    assert_eq!(error.kind, ErrorKind::InvalidInput);
    let error = parse_event(&json!({"policy": {}, "policy_uri": "s3://b/p"}), None).unwrap_err();
    assert!(error.message.contains("not both"), "{error}");
}

// ---------------------------------------------------------------------------
// The handler's flow.
// ---------------------------------------------------------------------------

fn fake() -> FakeLake {
    let lake = FakeLake {
        caller: CALLER_SESSION.into(),
        catalog: catalog(),
        ..FakeLake::default()
    };
    {
        let mut state = lake.state.lock().unwrap();
        state.settings.admins = set(&[RUNNER]);
        state.settings.create_database_defaults = set(&[IAM_ALLOWED_PRINCIPALS]);
        state.settings.create_table_defaults = set(&[IAM_ALLOWED_PRINCIPALS]);
        // Someone else's grant, and a hand-made extra on a managed principal.
        state.grants.insert(
            (
                OUTSIDER.into(),
                Resource::AllTables {
                    database: "raw".into(),
                },
            ),
            Permissions {
                permissions: set(&["SELECT"]),
                grantable: BTreeSet::new(),
            },
        );
        state.grants.insert(
            (
                ANALYST.into(),
                Resource::AllTables {
                    database: "raw".into(),
                },
            ),
            Permissions {
                permissions: set(&["SELECT"]),
                grantable: BTreeSet::new(),
            },
        );
    }
    lake
}

fn config() -> Config {
    Config {
        default_policy_uri: None,
        retry: RetryPolicy::immediate(5),
    }
}

fn sample_policy() -> serde_json::Value {
    json!({
        "admins": ["arn:aws:iam::123456789012:role/platform-admin"],
        "lake_formation_only": true,
        "lf_tags": {"tier": ["raw", "curated"]},
        "tag_assignments": [{"database": "curated", "tags": {"tier": "curated"}}],
        "grants": [
            {"principal": ETL, "resource": {"table": {"database": "raw", "name": "*"}}, "permissions": ["ALL"]},
            {"principal": ETL, "resource": {"table": {"database": "curated", "name": "*"}}, "permissions": ["ALL"]},
            {"principal": ANALYST, "resource": {"table": {"database": "curated", "name": "*"}}, "permissions": ["SELECT"]},
            {"principal": ANALYST, "resource": {"lf_tag_policy": {"resource_type": "TABLE", "expression": {"tier": ["curated"]}}}, "permissions": ["SELECT"]}
        ]
    })
}

#[tokio::test]
async fn apply_converges_and_a_second_run_finds_nothing() {
    let lake = fake();
    let event = json!({"mode": "apply", "policy": sample_policy()});
    let report = handler::handle(&lake, &config(), event.clone())
        .await
        .unwrap();
    assert_eq!(report["applied"], true);
    let state = lake.state();
    assert!(
        state.settings.admins.contains(RUNNER),
        "the running admin stays"
    );
    assert!(state
        .settings
        .admins
        .contains("arn:aws:iam::123456789012:role/platform-admin"));
    assert!(state.settings.create_table_defaults.is_empty());
    assert!(
        state.grants.contains_key(&(
            OUTSIDER.to_string(),
            Resource::AllTables {
                database: "raw".into()
            }
        )),
        "unmanaged kept"
    );
    assert!(
        !state.grants.contains_key(&(
            ANALYST.to_string(),
            Resource::AllTables {
                database: "raw".into()
            }
        )),
        "drift revoked"
    );
    assert_eq!(
        state.tag_assignments[&TagTarget::Database {
            name: "curated".into()
        }]["tier"],
        set(&["curated"])
    );
    assert!(report["warnings"][0]
        .as_str()
        .unwrap()
        .contains("stays an admin"));

    let again = handler::handle(&lake, &config(), event).await.unwrap();
    assert_eq!(again["applied"], false);
    assert_eq!(again["drifted_grants"], 0);
    assert_eq!(*lake.settings_writes.lock().unwrap(), 1);
}

#[tokio::test]
async fn plan_changes_nothing() {
    let lake = fake();
    let before = lake.state();
    let report = handler::handle(
        &lake,
        &config(),
        json!({"mode": "plan", "policy": sample_policy()}),
    )
    .await
    .unwrap();
    assert_eq!(report["applied"], false);
    assert_eq!(
        report["drifted_grants"], 5,
        "four grants to make, one to revoke: {report}"
    );
    assert_eq!(lake.state(), before);
    assert!(lake.batch_calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn an_unknown_database_stops_everything() {
    let lake = fake();
    let before = lake.state();
    let mut policy = sample_policy();
    policy["grants"][0]["resource"]["table"]["database"] = json!("rawz");
    let error = handler::handle(&lake, &config(), json!({"mode": "apply", "policy": policy}))
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::InvalidInput);
    assert!(
        error
            .message
            .contains("grants[0].resource: database 'rawz' does not exist"),
        "{error}"
    );
    assert_eq!(lake.state(), before);
    assert_eq!(*lake.settings_writes.lock().unwrap(), 0);
}

#[tokio::test]
async fn concurrent_modifications_are_retried() {
    let lake = fake();
    *lake.concurrent_failures.lock().unwrap() = 2;
    handler::handle(
        &lake,
        &config(),
        json!({"mode": "apply", "policy": sample_policy()}),
    )
    .await
    .unwrap();
    let calls = lake.batch_calls.lock().unwrap().clone();
    assert_eq!(
        calls
            .iter()
            .filter(|(op, _)| *op == BatchOp::Revoke)
            .count(),
        3,
        "{calls:?}"
    );
    assert!(lake.state().grants.contains_key(&(
        ETL.to_string(),
        Resource::AllTables {
            database: "raw".into()
        }
    )));
}

#[tokio::test]
async fn an_unknown_principal_is_reported_with_lake_formations_error() {
    let mut lake = fake();
    let ghost = "arn:aws:iam::123456789012:role/ghost";
    lake.unknown_principals.insert(ghost.into());
    let mut policy = sample_policy();
    policy["grants"].as_array_mut().unwrap().push(
        json!({"principal": ghost, "resource": {"database": "raw"}, "permissions": ["DESCRIBE"]}),
    );
    let error = handler::handle(&lake, &config(), json!({"mode": "apply", "policy": policy}))
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::InvalidInput);
    assert!(
        error.message.contains(ghost)
            && error
                .message
                .contains("InvalidInputException: Invalid principal"),
        "{error}"
    );
    // The rest was applied, and a re-run converges without duplicate grants.
    assert!(lake.state().grants.contains_key(&(
        ETL.to_string(),
        Resource::AllTables {
            database: "raw".into()
        }
    )));
    lake.unknown_principals.clear();
    let report = handler::handle(&lake, &config(), json!({"mode": "apply", "policy": policy}))
        .await
        .unwrap();
    assert_eq!(
        report["plan"]["grants"].as_array().unwrap().len(),
        1,
        "only the missing grant: {report}"
    );
}

#[tokio::test]
async fn large_plans_go_out_in_batches_of_twenty() {
    let lake = FakeLake {
        caller: CALLER_SESSION.into(),
        catalog: (0..45).fold(CatalogSnapshot::default(), |c, i| {
            c.with_table("raw", &format!("t{i:02}"), &["id"])
        }),
        ..FakeLake::default()
    };
    let policy = json!({"grants": [{"principal": ETL, "resource": {"table": {"database": "raw", "name": "t*"}}, "permissions": ["SELECT"]}]});
    handler::handle(&lake, &config(), json!({"mode": "apply", "policy": policy}))
        .await
        .unwrap();
    let sizes: Vec<usize> = lake
        .batch_calls
        .lock()
        .unwrap()
        .iter()
        .map(|(_, n)| *n)
        .collect();
    assert_eq!(sizes, vec![20, 20, 5]);
}

#[tokio::test]
async fn the_running_identity_keeps_its_grants() {
    let lake = fake();
    let extra = (
        RUNNER.to_string(),
        Resource::Database { name: "raw".into() },
    );
    lake.state.lock().unwrap().grants.insert(
        extra.clone(),
        Permissions {
            permissions: set(&["ALL"]),
            grantable: set(&["ALL"]),
        },
    );
    let mut policy = sample_policy();
    policy["managed_principals"] = json!([RUNNER]);
    let report = handler::handle(&lake, &config(), json!({"mode": "apply", "policy": policy}))
        .await
        .unwrap();
    assert!(lake.state().grants.contains_key(&extra));
    assert!(
        report["warnings"]
            .to_string()
            .contains("not revoking ALL on database raw"),
        "{report}"
    );
}

#[tokio::test]
async fn a_new_table_gets_its_grants_through_the_event() {
    let mut lake = fake();
    let mut policy = sample_policy();
    policy["tag_assignments"]
        .as_array_mut()
        .unwrap()
        .push(json!({"database": "curated", "tables": "sales_*", "tags": {"tier": "curated"}}));
    policy["grants"].as_array_mut().unwrap().push(json!({"principal": ANALYST, "resource": {"table": {"database": "curated", "name": "sales_*"}}, "permissions": ["ALTER"]}));
    lake.policies
        .insert("s3://policies/grants.json".into(), policy.to_string());
    let config = Config {
        default_policy_uri: Some("s3://policies/grants.json".into()),
        retry: RetryPolicy::immediate(5),
    };
    handler::handle(&lake, &config, json!({"mode": "apply"}))
        .await
        .unwrap();

    lake.catalog = lake
        .catalog
        .clone()
        .with_table("curated", "sales_2027", &["id"]);
    let event = json!({
        "detail-type": "Glue Data Catalog Table State Change", "source": "aws.glue",
        "detail": {"databaseName": "curated", "typeOfChange": "CreateTable", "tableName": "sales_2027"}
    });
    let report = handler::handle(&lake, &config, event).await.unwrap();
    let new_table = &report["new_table"];
    assert_eq!(
        new_table["effective"][ANALYST]["permissions"],
        json!(["ALTER", "SELECT"]),
        "{report}"
    );
    assert_eq!(new_table["effective"][ETL]["permissions"], json!(["ALL"]));
    assert_eq!(new_table["tags"]["tier"], "curated");
    let target = TagTarget::Table {
        database: "curated".into(),
        name: "sales_2027".into(),
    };
    assert_eq!(
        lake.state().tag_assignments[&target]["tier"],
        set(&["curated"])
    );
    assert_eq!(
        report["plan"]["grants"].as_array().unwrap().len(),
        1,
        "only the new table's grant: {report}"
    );
}

#[test]
fn the_permissions_table_is_aligned() {
    let rows = vec![
        handler::PermissionRow {
            principal: "a".into(),
            resource: "table raw.*".into(),
            permissions: vec!["ALL".into()],
            grantable: vec![],
        },
        handler::PermissionRow {
            principal: "long-principal".into(),
            resource: "database raw".into(),
            permissions: vec!["DESCRIBE".into(), "ALTER".into()],
            grantable: vec!["ALTER".into()],
        },
    ];
    let text = handler::render_table(&rows);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].starts_with("PRINCIPAL       RESOURCE"), "{text}");
    assert_eq!(lines[1].find("table raw.*"), lines[2].find("database raw"));
}
