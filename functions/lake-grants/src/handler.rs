//! The function: read the policy and the state, plan, apply, report.

pub use crate::event::{parse_event, Mode, NewTables, Parsed, PolicySource, Request};
use crate::lake::{BatchOp, Lake};
use crate::model::*;
use crate::plan::{self, batches, GrantChange, Plan};
use crate::policy;
use lakeops_shared::aws::is_transient_code;
use lakeops_shared::retry::{RetryAdvice, RetryPolicy};
use lakeops_shared::telemetry::{Metrics, Unit};
use lakeops_shared::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

pub const FUNCTION: &str = "lake-grants";

/// Settings read once at init.
#[derive(Debug, Clone)]
pub struct Config {
    pub default_policy_uri: Option<String>,
    pub retry: RetryPolicy,
}

/// A batch entry Lake Formation refused, with its own error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedChange {
    pub op: BatchOp,
    pub principal: Principal,
    pub resource: String,
    pub code: String,
    pub message: String,
}

/// One row of the permissions table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionRow {
    pub principal: Principal,
    pub resource: String,
    pub permissions: Vec<String>,
    pub grantable: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewTableReport {
    pub database: String,
    pub table: String,
    /// Who may do what on the table now, directly or through a wildcard.
    pub effective: BTreeMap<Principal, Permissions>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub mode: Mode,
    pub trigger: String,
    /// The identity the function ran as, as Lake Formation knows it.
    pub caller: String,
    pub plan: Plan,
    pub drifted_grants: usize,
    pub applied: bool,
    pub warnings: Vec<String>,
    pub failures: Vec<FailedChange>,
    /// Grants of the managed principals after the run.
    pub permissions: Vec<PermissionRow>,
    /// The tables of a Glue CreateTable event, each with its access now.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub new_tables: Vec<NewTableReport>,
}

fn advise(error: &Error) -> RetryAdvice {
    if error.is_retryable() {
        RetryAdvice::Retry
    } else {
        RetryAdvice::Stop
    }
}

/// Send changes in batches of at most 20, retrying only the entries that hit
/// a transient fault (ConcurrentModificationException) with jittered backoff;
/// refused entries are returned with Lake Formation's own error.
pub async fn run_batches<L: Lake>(
    lake: &L,
    retry: &RetryPolicy,
    op: BatchOp,
    changes: &[GrantChange],
) -> Result<Vec<FailedChange>> {
    let mut refused = Vec::new();
    for chunk in batches(changes) {
        let pending = Mutex::new(chunk.to_vec());
        let failed = Mutex::new(Vec::new());
        let (pending_ref, failed_ref) = (&pending, &failed);
        retry
            .run(
                move |_| async move {
                    let entries = pending_ref.lock().unwrap().clone();
                    let failures = lake.batch(op, &entries).await?;
                    let mut again = Vec::new();
                    for failure in failures {
                        match entries.get(failure.index) {
                            Some(entry) if is_transient_code(&failure.code) => {
                                again.push(entry.clone())
                            }
                            entry => failed_ref.lock().unwrap().push(FailedChange {
                                op,
                                principal: entry.map(|e| e.principal.clone()).unwrap_or_default(),
                                resource: entry
                                    .map(|e| e.resource.to_string())
                                    .unwrap_or_else(|| "(unknown entry)".to_string()),
                                code: failure.code,
                                message: failure.message,
                            }),
                        }
                    }
                    let retrying = again.len();
                    *pending_ref.lock().unwrap() = again;
                    if retrying == 0 {
                        Ok(())
                    } else {
                        Err(Error::retryable(format!(
                            "{retrying} {op:?} entries hit a concurrent modification"
                        )))
                    }
                },
                advise,
            )
            .await?;
        refused.extend(failed.into_inner().unwrap());
    }
    Ok(refused)
}

async fn load_policy<L: Lake>(lake: &L, source: &PolicySource) -> Result<policy::Policy> {
    let document = match source {
        PolicySource::Inline(value) => policy::policy_from_value(value.clone()),
        PolicySource::Uri(uri) => policy::parse_policy(&lake.read_policy(uri).await?),
    }
    .map_err(Error::invalid_input)?;
    Ok(policy::validate(&document)?)
}

async fn read_state<L: Lake>(
    lake: &L,
    targets: impl Iterator<Item = &TagTarget>,
) -> Result<LakeState> {
    let mut state = LakeState {
        settings: lake.read_settings().await?,
        grants: lake.list_grants().await?,
        lf_tags: lake.list_lf_tags().await?,
        registered_locations: lake.registered_locations().await?,
        ..LakeState::default()
    };
    for target in targets {
        state
            .tag_assignments
            .insert(target.clone(), lake.resource_tags(target).await?);
    }
    Ok(state)
}

async fn with_retry<T, F, Fut>(retry: &RetryPolicy, op: F) -> Result<T>
where
    F: FnMut(u32) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    retry.run(op, advise).await
}

/// Make the plan, in dependency order: settings, locations, LF-tags, tag
/// assignments, revokes, grants (tags and locations exist before the grants
/// that name them; revokes go first so a dropped grant option can be granted
/// back without it).
async fn execute<L: Lake>(
    lake: &L,
    retry: &RetryPolicy,
    plan: &Plan,
    locations: &[policy::PolicyLocation],
    caller: &str,
) -> Result<Vec<FailedChange>> {
    if !plan.settings.is_empty() {
        plan::check_admins_keep_caller(&plan.settings, caller)?;
        with_retry(retry, |_| lake.write_settings(&plan.settings)).await?;
    }
    for arn in &plan.register_locations {
        let role = locations
            .iter()
            .find(|l| &l.arn == arn)
            .and_then(|l| l.role_arn.as_deref());
        with_retry(retry, |_| lake.register_location(arn, role)).await?;
    }
    for change in &plan.lf_tags {
        if change.create {
            with_retry(retry, |_| lake.create_lf_tag(&change.key, &change.add)).await?;
        } else {
            with_retry(retry, |_| {
                lake.update_lf_tag(&change.key, &change.add, &change.remove)
            })
            .await?;
        }
    }
    for change in &plan.tag_assignments {
        if !change.remove.is_empty() {
            with_retry(retry, |_| {
                lake.remove_resource_tags(&change.target, &change.remove)
            })
            .await?;
        }
        if !change.set.is_empty() {
            with_retry(retry, |_| {
                lake.add_resource_tags(&change.target, &change.set)
            })
            .await?;
        }
    }
    let mut failures = run_batches(lake, retry, BatchOp::Revoke, &plan.revokes).await?;
    failures.extend(run_batches(lake, retry, BatchOp::Grant, &plan.grants).await?);
    Ok(failures)
}

fn permission_rows(grants: &GrantMap, managed: &BTreeSet<Principal>) -> Vec<PermissionRow> {
    grants
        .iter()
        .filter(|((principal, _), _)| managed.contains(principal))
        .map(|((principal, resource), held)| PermissionRow {
            principal: principal.clone(),
            resource: resource.to_string(),
            permissions: held.permissions.iter().cloned().collect(),
            grantable: held.grantable.iter().cloned().collect(),
        })
        .collect()
}

/// The permissions table as aligned text (for logs and the README).
pub fn render_table(rows: &[PermissionRow]) -> String {
    let header = ["PRINCIPAL", "RESOURCE", "PERMISSIONS", "GRANTABLE"];
    let cells: Vec<[String; 4]> = rows
        .iter()
        .map(|r| {
            [
                r.principal.clone(),
                r.resource.clone(),
                r.permissions.join(","),
                r.grantable.join(","),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.len());
        }
    }
    let line = |row: [&str; 4]| {
        let text: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        text.join("  ").trim_end().to_string()
    };
    let mut out = vec![line(header)];
    for row in &cells {
        out.push(line([
            row[0].as_str(),
            row[1].as_str(),
            row[2].as_str(),
            row[3].as_str(),
        ]));
    }
    out.join("\n")
}

/// Handle one event.
pub async fn handle<L: Lake>(lake: &L, config: &Config, event: Value) -> Result<Value> {
    let request = match parse_event(&event, config.default_policy_uri.as_deref())? {
        Parsed::Ignored(reason) => {
            tracing::info!(%reason, "event ignored");
            return Ok(serde_json::json!({"ignored": reason}));
        }
        Parsed::Run(request) => request,
    };
    let report = reconcile(lake, config, &request).await?;
    let mut metrics = Metrics::new(FUNCTION);
    metrics.put("DriftedGrants", report.drifted_grants as f64, Unit::Count);
    metrics.put("FailedChanges", report.failures.len() as f64, Unit::Count);
    metrics.property("trigger", Value::String(report.trigger.clone()));
    metrics.property(
        "mode",
        serde_json::to_value(report.mode).unwrap_or_default(),
    );
    metrics.emit();
    tracing::info!(
        mode = ?report.mode,
        trigger = %report.trigger,
        drifted_grants = report.drifted_grants,
        grants = report.plan.grants.len(),
        revokes = report.plan.revokes.len(),
        "lake-grants run\n{}",
        render_table(&report.permissions)
    );
    if !report.failures.is_empty() {
        let text: Vec<String> = report
            .failures
            .iter()
            .map(|f| {
                format!(
                    "{:?} {} on {}: {}: {}",
                    f.op, f.principal, f.resource, f.code, f.message
                )
            })
            .collect();
        let message = format!(
            "Lake Formation refused {} change(s): {}",
            report.failures.len(),
            text.join("; ")
        );
        // A principal or resource Lake Formation does not know is the policy's
        // fault; anything else is terminal.
        let input_fault = report.failures.iter().all(|f| {
            matches!(
                f.code.as_str(),
                "InvalidInputException" | "EntityNotFoundException"
            )
        });
        return Err(if input_fault {
            Error::invalid_input(message)
        } else {
            Error::terminal(message)
        });
    }
    serde_json::to_value(&report)
        .map_err(|e| Error::terminal(format!("serialising the report: {e}")))
}

/// Read, plan and (in apply mode) make the changes.
pub async fn reconcile<L: Lake>(lake: &L, config: &Config, request: &Request) -> Result<Report> {
    let retry = &config.retry;
    let policy = load_policy(lake, &request.policy).await?;
    let caller_arn = with_retry(retry, |_| lake.caller_arn()).await?;
    let caller = caller_principal(&caller_arn);
    let databases = plan::referenced_databases(&policy);
    let catalog = with_retry(retry, |_| lake.read_catalog(&databases)).await?;
    let (desired, mut warnings) = plan::resolve(&policy, &catalog)?;

    let scope = request.new_tables.as_ref().map(|t| t.database.as_str());
    let targets = desired
        .tag_assignments
        .keys()
        .filter(|t| scope.is_none_or(|db| t.database() == db));
    let state = with_retry(retry, |_| read_state(lake, targets.clone())).await?;
    if let Some(admins) = &desired.admins {
        if !admins.iter().any(|a| is_caller(a, &caller)) {
            warnings.push(format!("admins: the policy does not list {caller}, the identity this function runs as; it stays an admin (it could grant nothing otherwise)"));
        }
    }

    let mut plan = plan::diff(&desired, &state, &caller);
    if let Some(database) = scope {
        plan = plan.within_database(database);
    }
    for withheld in &plan.protected {
        warnings.push(format!(
            "not revoking {} on {} from {}: it is the identity this function runs as",
            withheld
                .permissions
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(","),
            withheld.resource,
            withheld.principal
        ));
    }
    let drifted_grants = plan.drifted_grants();

    let (applied, failures, grants_after) = if request.mode == Mode::Apply && !plan.is_empty() {
        let failures = execute(lake, retry, &plan, &desired.locations, &caller).await?;
        let after = with_retry(retry, |_| lake.list_grants()).await?;
        (true, failures, after)
    } else {
        (false, Vec::new(), state.grants.clone())
    };

    let new_tables = request
        .new_tables
        .iter()
        .flat_map(|new| new.tables.iter().map(move |table| (&new.database, table)))
        .map(|(database, table)| NewTableReport {
            database: database.clone(),
            table: table.clone(),
            effective: plan::effective_on_table(&grants_after, database, table),
            tags: desired
                .tag_assignments
                .get(&TagTarget::Table {
                    database: database.clone(),
                    name: table.clone(),
                })
                .cloned()
                .unwrap_or_default(),
        })
        .collect();

    Ok(Report {
        mode: request.mode,
        trigger: request.trigger.clone(),
        caller,
        drifted_grants,
        applied,
        warnings,
        failures,
        permissions: permission_rows(&grants_after, &desired.managed),
        new_tables,
        plan,
    })
}
