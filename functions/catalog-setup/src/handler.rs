//! The handler: read the spec, observe, plan, and in apply mode converge.
//!
//! Event: `{"mode": "plan" | "apply", "spec": {...}}` or
//! `{"mode": ..., "spec_uri": "s3://bucket/key.json"}`. `mode` defaults to
//! `plan`, so an event without it never changes anything. `environment` is
//! this deployment's (`LAKEOPS_ENVIRONMENT`): the only environment whose layer
//! buckets setup registers with Lake Formation (see [`crate::scope`]).

use crate::api::{CatalogApi, Created};
use crate::desired::{
    crawler_differences, database_differences, desired, location_differences,
    workgroup_differences, Desired,
};
use crate::plan::{plan, summarize, Action, Change, Observed, ResourceKind, Summary};
use crate::scope::{check_spec_locations, ensure_own_location};
use lakeops_shared::retry::{RetryAdvice, RetryPolicy};
use lakeops_shared::spec::lake::{parse_s3_uri, LakeSpec};
use lakeops_shared::{Error, Result};
use serde::{Deserialize, Serialize};
use std::future::Future;

/// A spec larger than this is not a spec.
pub const MAX_SPEC_BYTES: u64 = 1024 * 1024;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Plan,
    Apply,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetupRequest {
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub spec: Option<serde_json::Value>,
    #[serde(default)]
    pub spec_uri: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetupResponse {
    pub mode: Mode,
    pub lake: String,
    /// In plan mode, what apply would do; in apply mode, what was done.
    pub changes: Vec<Change>,
    pub summary: Summary,
}

pub async fn handle<A: CatalogApi>(
    api: &A,
    event: serde_json::Value,
    retry: RetryPolicy,
    environment: &str,
) -> Result<SetupResponse> {
    let request: SetupRequest = serde_json::from_value(event)
        .map_err(|e| Error::invalid_input(format!("setup request: {e}")))?;
    let spec = load_spec(api, &request).await?;
    check_spec_locations(&spec, environment)?;
    let desired = desired(&spec);
    let observed = observe(api, &desired, retry).await?;
    let planned = plan(&desired, &observed);
    let changes = match request.mode {
        Mode::Plan => planned,
        Mode::Apply => apply(api, &desired, planned, retry, (&spec, environment)).await?,
    };
    let summary = summarize(&changes);
    tracing::info!(mode = ?request.mode, create = summary.create, update = summary.update, unchanged = summary.unchanged, "catalog setup");
    Ok(SetupResponse {
        mode: request.mode,
        lake: spec.name.clone(),
        changes,
        summary,
    })
}

async fn load_spec<A: CatalogApi>(api: &A, request: &SetupRequest) -> Result<LakeSpec> {
    match (&request.spec, &request.spec_uri) {
        (Some(spec), None) => LakeSpec::from_value(spec.clone()),
        (None, Some(uri)) => {
            let (bucket, key) = parse_s3_uri(uri)
                .filter(|(_, key)| !key.is_empty())
                .ok_or_else(|| Error::invalid_input("spec_uri: must be s3://bucket/key"))?;
            let text = api
                .read_spec(bucket, key, MAX_SPEC_BYTES)
                .await
                .map_err(|e| e.context(format!("read spec {uri}")))?;
            LakeSpec::from_json(&text)
        }
        (Some(_), Some(_)) => Err(Error::invalid_input(
            "spec, spec_uri: give one of them, not both",
        )),
        (None, None) => Err(Error::invalid_input("spec: is required (or spec_uri)")),
    }
}

/// Transient faults (throttling, concurrent modification) are retried within
/// the policy's budget; past it the error is `Lakeops.Retryable` and the
/// caller runs setup again, which is safe because every step is idempotent.
async fn retried<T, F, Fut>(retry: RetryPolicy, op: F) -> Result<T>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    retry
        .run(op, |e: &Error| {
            if e.is_retryable() {
                RetryAdvice::Retry
            } else {
                RetryAdvice::Stop
            }
        })
        .await
}

async fn observe<A: CatalogApi>(
    api: &A,
    desired: &Desired,
    retry: RetryPolicy,
) -> Result<Observed> {
    let mut observed = Observed::default();
    for database in &desired.databases {
        if let Some(found) = retried(retry, |_| api.get_database(&database.name)).await? {
            observed.databases.insert(database.name.clone(), found);
        }
    }
    for location in &desired.locations {
        if let Some(found) = retried(retry, |_| api.get_location(&location.resource_arn)).await? {
            observed
                .locations
                .insert(location.resource_arn.clone(), found);
        }
    }
    for crawler in &desired.crawlers {
        if let Some(found) = retried(retry, |_| api.get_crawler(&crawler.name)).await? {
            observed.crawlers.insert(crawler.name.clone(), found);
        }
    }
    for workgroup in &desired.workgroups {
        if let Some(found) = retried(retry, |_| api.get_workgroup(&workgroup.name)).await? {
            observed.workgroups.insert(workgroup.name.clone(), found);
        }
    }
    Ok(observed)
}

/// Carry out the plan in its order (databases before the crawlers that write
/// into them). A create that finds the resource already there (a concurrent
/// setup) re-reads it and updates it if it differs.
/// The spec and the environment that bound the Lake Formation locations.
type Bounds<'a> = (&'a LakeSpec, &'a str);

async fn apply<A: CatalogApi>(
    api: &A,
    desired: &Desired,
    planned: Vec<Change>,
    retry: RetryPolicy,
    bounds: Bounds<'_>,
) -> Result<Vec<Change>> {
    let mut done = Vec::with_capacity(planned.len());
    for mut change in planned {
        if change.action == Action::Unchanged {
            done.push(change);
            continue;
        }
        let what = format!(
            "{:?} {} ({:?})",
            change.resource, change.name, change.action
        );
        let outcome = apply_one(api, desired, &change, retry, bounds)
            .await
            .map_err(|e| e.context(&what))?;
        if let Some(differences) = outcome {
            change.action = if differences.is_empty() {
                Action::Unchanged
            } else {
                Action::Update
            };
            change.differences = differences;
        }
        tracing::info!(change = %what, "applied");
        done.push(change);
    }
    Ok(done)
}

/// Apply one change. Returns `Some(differences)` when a create raced with
/// another writer, describing what had to be done after all.
async fn apply_one<A: CatalogApi>(
    api: &A,
    desired: &Desired,
    change: &Change,
    retry: RetryPolicy,
    (spec, environment): Bounds<'_>,
) -> Result<Option<Vec<String>>> {
    let create = change.action == Action::Create;
    match change.resource {
        ResourceKind::GlueDatabase => {
            let want = desired
                .databases
                .iter()
                .find(|d| d.name == change.name)
                .expect("planned from desired");
            if create && retried(retry, |_| api.create_database(want)).await? == Created::Created {
                return Ok(None);
            }
            let differences = if create {
                let found = retried(retry, |_| api.get_database(&want.name)).await?;
                found
                    .map(|f| database_differences(want, &f))
                    .unwrap_or_default()
            } else {
                change.differences.clone()
            };
            if !differences.is_empty() {
                retried(retry, |_| api.update_database(want)).await?;
            }
            Ok(create.then_some(differences))
        }
        ResourceKind::LakeFormationLocation => {
            let want = desired
                .locations
                .iter()
                .find(|l| l.resource_arn == change.name)
                .expect("planned from desired");
            // Register, update and deregister are allowed on "*" in IAM.
            ensure_own_location(&want.resource_arn, spec, environment)?;
            if create && retried(retry, |_| api.register_location(want)).await? == Created::Created
            {
                return Ok(None);
            }
            let differences = if create {
                let found = retried(retry, |_| api.get_location(&want.resource_arn)).await?;
                found
                    .map(|f| location_differences(want, &f))
                    .unwrap_or_default()
            } else {
                change.differences.clone()
            };
            if !differences.is_empty() {
                retried(retry, |_| api.update_location(want)).await?;
            }
            Ok(create.then_some(differences))
        }
        ResourceKind::GlueCrawler => {
            let want = desired
                .crawlers
                .iter()
                .find(|c| c.name == change.name)
                .expect("planned from desired");
            if create && retried(retry, |_| api.create_crawler(want)).await? == Created::Created {
                return Ok(None);
            }
            let differences = if create {
                let found = retried(retry, |_| api.get_crawler(&want.name)).await?;
                found
                    .map(|f| crawler_differences(want, &f))
                    .unwrap_or_default()
            } else {
                change.differences.clone()
            };
            if !differences.is_empty() {
                retried(retry, |_| api.update_crawler(want)).await?;
            }
            Ok(create.then_some(differences))
        }
        ResourceKind::AthenaWorkgroup => {
            let want = desired
                .workgroups
                .iter()
                .find(|w| w.name == change.name)
                .expect("planned from desired");
            if create && retried(retry, |_| api.create_workgroup(want)).await? == Created::Created {
                return Ok(None);
            }
            let differences = if create {
                let found = retried(retry, |_| api.get_workgroup(&want.name)).await?;
                found
                    .map(|f| workgroup_differences(want, &f))
                    .unwrap_or_default()
            } else {
                change.differences.clone()
            };
            if !differences.is_empty() {
                retried(retry, |_| api.update_workgroup(want)).await?;
            }
            Ok(create.then_some(differences))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{spec_json, FakeCatalog};
    use lakeops_shared::ErrorKind;
    use serde_json::json;

    fn policy() -> RetryPolicy {
        RetryPolicy::immediate(5)
    }

    async fn run(api: &FakeCatalog, event: serde_json::Value) -> Result<SetupResponse> {
        handle(api, event, policy(), "dev").await
    }

    #[tokio::test]
    async fn plan_is_the_default_and_writes_nothing() {
        let api = FakeCatalog::default();
        let response = run(&api, json!({"spec": spec_json()})).await.unwrap();
        assert_eq!(response.mode, Mode::Plan);
        assert_eq!(
            response.summary,
            Summary {
                create: 18,
                update: 0,
                unchanged: 0
            }
        );
        assert!(api.state.lock().unwrap().writes.is_empty());
    }

    #[tokio::test]
    async fn apply_converges_and_a_second_apply_changes_nothing() {
        let api = FakeCatalog::default();
        let first = run(&api, json!({"mode": "apply", "spec": spec_json()}))
            .await
            .unwrap();
        assert_eq!(first.summary.create, 18);
        let writes = api.state.lock().unwrap().writes.clone();
        assert_eq!(writes.len(), 18);
        // Databases exist before the crawlers that write into them.
        let first_crawler = writes
            .iter()
            .position(|w| w.starts_with("create_crawler"))
            .unwrap();
        let last_database = writes
            .iter()
            .rposition(|w| w.starts_with("create_database"))
            .unwrap();
        assert!(last_database < first_crawler, "{writes:?}");

        let second = run(&api, json!({"mode": "apply", "spec": spec_json()}))
            .await
            .unwrap();
        assert_eq!(
            second.summary,
            Summary {
                create: 0,
                update: 0,
                unchanged: 18
            }
        );
        assert_eq!(
            api.state.lock().unwrap().writes.len(),
            18,
            "no write on a converged lake"
        );
    }

    #[tokio::test]
    async fn drift_is_planned_then_updated() {
        let api = FakeCatalog::default();
        run(&api, json!({"mode": "apply", "spec": spec_json()}))
            .await
            .unwrap();
        {
            let mut state = api.state.lock().unwrap();
            state.crawlers.get_mut("lakeops-dev-raw").unwrap().role =
                "arn:aws:iam::1:role/other".into();
            state
                .workgroups
                .get_mut("lakeops-dev-analyst")
                .unwrap()
                .bytes_scanned_cutoff_per_query = None;
            state.writes.clear();
        }
        let planned = run(&api, json!({"mode": "plan", "spec": spec_json()}))
            .await
            .unwrap();
        let updates: Vec<_> = planned
            .changes
            .iter()
            .filter(|c| c.action == Action::Update)
            .collect();
        assert_eq!(updates.len(), 2);
        assert_eq!(updates[0].name, "lakeops-dev-raw");
        assert_eq!(updates[0].differences, vec!["role"]);
        assert_eq!(
            updates[1].differences,
            vec!["bytes_scanned_cutoff_per_query"]
        );
        assert!(api.state.lock().unwrap().writes.is_empty());

        run(&api, json!({"mode": "apply", "spec": spec_json()}))
            .await
            .unwrap();
        let state = api.state.lock().unwrap();
        assert_eq!(
            state.writes,
            vec![
                "update_crawler lakeops-dev-raw",
                "update_workgroup lakeops-dev-analyst"
            ]
        );
        assert_eq!(
            state.crawlers["lakeops-dev-raw"].role,
            "arn:aws:iam::123456789012:role/lakeops-dev-crawler"
        );
    }

    #[tokio::test]
    async fn throttling_is_retried() {
        let api = FakeCatalog::default();
        api.state.lock().unwrap().throttle_next = 3;
        let response = run(&api, json!({"mode": "apply", "spec": spec_json()}))
            .await
            .unwrap();
        assert_eq!(response.summary.create, 18);
    }

    #[tokio::test]
    async fn throttling_past_the_budget_is_a_retryable_error() {
        let api = FakeCatalog::default();
        api.state.lock().unwrap().throttle_next = 100;
        let error = run(&api, json!({"mode": "apply", "spec": spec_json()}))
            .await
            .unwrap_err();
        assert_eq!(error.kind, ErrorKind::Retryable);
    }

    #[tokio::test]
    async fn a_concurrent_create_is_reconciled_not_failed() {
        let api = FakeCatalog::default();
        api.state.lock().unwrap().race_creates = true;
        let response = run(&api, json!({"mode": "apply", "spec": spec_json()}))
            .await
            .unwrap();
        // The racing writer made databases with another description: updated.
        let databases: Vec<_> = response
            .changes
            .iter()
            .filter(|c| c.resource == ResourceKind::GlueDatabase)
            .collect();
        assert!(databases
            .iter()
            .all(|c| c.action == Action::Update && c.differences == vec!["description"]));
        // The rest was created as asked by the other writer: unchanged.
        assert_eq!(response.summary.unchanged, 13);
        let state = api.state.lock().unwrap();
        assert!(state
            .databases
            .values()
            .all(|d| d.description.contains("managed by lakeops")));
    }

    #[tokio::test]
    async fn reads_the_spec_from_s3() {
        let api = FakeCatalog::default();
        api.state.lock().unwrap().objects.insert(
            ("specs".into(), "lake.json".into()),
            spec_json().to_string(),
        );
        let response = run(&api, json!({"spec_uri": "s3://specs/lake.json"}))
            .await
            .unwrap();
        assert_eq!(response.lake, "lakeops-dev");
        let error = run(&api, json!({"spec_uri": "s3://specs/"}))
            .await
            .unwrap_err();
        assert_eq!(error.kind, ErrorKind::InvalidInput);
        assert!(error.message.contains("spec_uri"), "{}", error.message);
    }

    #[tokio::test]
    async fn bad_requests_name_the_field() {
        let api = FakeCatalog::default();
        for (event, expected) in [
            (json!({}), "spec: is required"),
            (
                json!({"spec": spec_json(), "spec_uri": "s3://a/b"}),
                "not both",
            ),
            (json!({"mode": "destroy", "spec": spec_json()}), "destroy"),
            (json!({"spec": spec_json(), "dry_run": true}), "dry_run"),
        ] {
            let error = run(&api, event).await.unwrap_err();
            assert_eq!(error.kind, ErrorKind::InvalidInput);
            assert!(
                error.message.contains(expected),
                "`{expected}` not in {}",
                error.message
            );
        }
        let mut bad = spec_json();
        bad["layers"][0]["database"] = json!("Raw-DB");
        bad["athena"]["workgroups"][0]["result_location"] = json!("bucket/x");
        let error = run(&api, json!({"spec": bad})).await.unwrap_err();
        assert!(
            error.message.contains("layers[0].database"),
            "{}",
            error.message
        );
        assert!(
            error
                .message
                .contains("athena.workgroups[0].result_location"),
            "{}",
            error.message
        );
        assert!(api.state.lock().unwrap().writes.is_empty());
    }

    /// Lake Formation's location actions are allowed on "*" in IAM: a spec
    /// naming another environment's bucket is refused before anything runs,
    /// in plan mode too, and a spec of this environment is refused elsewhere.
    #[tokio::test]
    async fn only_this_environments_buckets_are_registered() {
        let api = FakeCatalog::default();
        let mut other = spec_json();
        other["layers"][2]["bucket"] = json!("lakeops-prod-filtered");
        for mode in ["plan", "apply"] {
            let error = run(&api, json!({"mode": mode, "spec": other}))
                .await
                .unwrap_err();
            assert_eq!(error.kind, ErrorKind::InvalidInput);
            assert!(error.message.contains("layers[2].bucket"), "{error}");
        }
        let error = handle(
            &api,
            json!({"mode": "apply", "spec": spec_json()}),
            policy(),
            "prod",
        )
        .await
        .unwrap_err();
        assert!(error.message.contains("layers[0].bucket"), "{error}");
        let state = api.state.lock().unwrap();
        assert!(state.writes.is_empty(), "{:?}", state.writes);
    }
}

#[cfg(test)]
mod sample_events {
    use super::*;

    /// The sample events in `events/` are valid requests.
    #[test]
    fn sample_events_are_valid() {
        let plan: SetupRequest =
            serde_json::from_str(include_str!("../../../events/catalog-setup-plan.json")).unwrap();
        assert_eq!(plan.mode, Mode::Plan);
        let spec = LakeSpec::from_value(plan.spec.unwrap()).unwrap();
        assert_eq!(spec.layers.len(), 5);
        let apply: SetupRequest =
            serde_json::from_str(include_str!("../../../events/catalog-setup-apply.json")).unwrap();
        assert_eq!(apply.mode, Mode::Apply);
        assert!(apply.spec_uri.is_some());
    }
}
