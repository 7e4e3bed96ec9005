//! The Lambda handler: parse the request, load and validate the spec, build the two
//! workspaces' clients from their secrets, run the sync or failover step, and publish
//! the report's metrics.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_smithy_types::date_time::{DateTime, Format};
use lakeops_shared::credentials::Credential;
use lakeops_shared::databricks::{Credentials, DatabricksConnector};
use lakeops_shared::telemetry::{Metrics, Unit};
use lakeops_shared::Error;
use serde_json::Value;

use crate::aws::{S3RunStore, SsmPointer};
use crate::databricks::DatabricksSide;
use crate::event::{Request, Response};
use crate::failover_runner::{Failover, FailoverRequest, FailoverResponse};
use crate::runner::Sync;
use crate::spec::{DrSpec, ObjectKind};

/// Built once per process (init), shared by every invocation.
pub struct Clients {
    pub s3: aws_sdk_s3::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub databricks: DatabricksConnector,
    /// Where runs keep their state and reports (`DR_STATE_BUCKET`).
    pub state_bucket: String,
}

/// A failed step, as the Lambda runtime reports it: `errorType` is the name the
/// state machine routes on.
#[derive(Debug)]
pub struct StepFailure(pub Error);

impl std::fmt::Display for StepFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.0.error_name(), self.0.message)
    }
}

impl std::error::Error for StepFailure {}

impl From<StepFailure> for lambda_runtime::Diagnostic {
    fn from(failure: StepFailure) -> Self {
        // A refusal of the generation guard has its own name, so a state machine
        // can tell "a failover overtook this run" from a broken run.
        // A refusal of the guard goes out under its own name (DR.StaleGeneration,
        // DR.PrimaryNotActive, DR.NotInSync, DR.OtherPair), so a state machine, or a
        // person reading the execution, tells it from a broken run.
        let refusal = failure
            .0
            .message
            .split(": ")
            .find(|part| part.starts_with("DR.") && !part.contains(' '));
        let error_type = refusal.map_or_else(|| failure.0.error_name().to_string(), str::to_string);
        lambda_runtime::Diagnostic {
            error_type,
            error_message: failure.0.message,
        }
    }
}

/// What one invocation answers: a sync step's response, or a failover step's.
#[derive(serde::Serialize)]
#[serde(untagged)]
pub enum Answer {
    Sync(Box<Response>),
    Failover(Box<FailoverResponse>),
}

async fn credentials(
    clients: &Clients,
    secret_arn: &str,
    field: &str,
) -> Result<Credentials, Error> {
    match lakeops_shared::aws::read_credential(&clients.secrets, secret_arn).await? {
        Credential::DatabricksSpSecret(sp) => Ok(Credentials::OAuthM2M { client_id: sp.client_id, client_secret: sp.client_secret }),
        Credential::DatabricksPat(pat) => Ok(Credentials::Pat(pat.token)),
        other => Err(Error::invalid_input(format!(
            "{field}: the secret is a {} credential, expected databricks-sp-secret or databricks-pat",
            other.kind()
        ))),
    }
}

fn now() -> (String, i64) {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default();
    let text = DateTime::from_millis(ms)
        .fmt(Format::DateTime)
        .unwrap_or_else(|_| ms.to_string());
    (text, ms)
}

pub async fn handle(clients: &Clients, event: Value) -> Result<Answer, StepFailure> {
    let failover = event.get("failover_step").is_some();
    let reverse = event
        .get("reverse")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let given = event.get("spec").cloned().unwrap_or(Value::Null);
    let spec_value = lakeops_shared::aws::resolve_json(&clients.s3, &given, "spec")
        .await
        .map_err(StepFailure)?;
    let spec =
        crate::spec::parse(&spec_value).map_err(|p| StepFailure(Error::invalid_fields(&p)))?;
    // Failback runs along the reversed spec: the promoted secondary is its primary.
    let spec = if reverse { spec.reversed() } else { spec };
    if failover {
        let request: FailoverRequest = serde_json::from_value(event).map_err(|e| {
            StepFailure(Error::invalid_input(format!(
                "malformed failover request: {e}"
            )))
        })?;
        let step = format!("failover step {:?}", request.failover_step);
        return run_failover(clients, &spec, &request)
            .await
            .map(|r| Answer::Failover(Box::new(r)))
            .map_err(|e| StepFailure(e.context(step)));
    }
    let request: Request = serde_json::from_value(event)
        .map_err(|e| StepFailure(Error::invalid_input(format!("malformed request: {e}"))))?;
    run(clients, &spec, &request)
        .await
        .map(|r| Answer::Sync(Box::new(r)))
        .map_err(|e| StepFailure(e.context(format!("step {}", request.step))))
}

async fn sides(
    clients: &Clients,
    spec: &DrSpec,
) -> Result<(DatabricksSide, DatabricksSide), Error> {
    let (primary_credentials, secondary_credentials) = tokio::try_join!(
        credentials(
            clients,
            &spec.primary.credentials_secret_arn,
            "primary.credentials_secret_arn"
        ),
        credentials(
            clients,
            &spec.secondary.credentials_secret_arn,
            "secondary.credentials_secret_arn"
        ),
    )?;
    let tags = spec.objects.contains(&ObjectKind::Tags);
    let grants = spec.objects.contains(&ObjectKind::Grants);
    let primary = DatabricksSide::new(
        clients
            .databricks
            .workspace_at(&spec.primary.host, primary_credentials),
        None,
        tags,
        grants,
    );
    let secondary = DatabricksSide::new(
        clients
            .databricks
            .workspace_at(&spec.secondary.host, secondary_credentials),
        Some(spec.warehouse.clone()),
        tags,
        grants,
    );
    Ok((primary, secondary))
}

async fn run_failover(
    clients: &Clients,
    spec: &DrSpec,
    request: &FailoverRequest,
) -> Result<FailoverResponse, Error> {
    let (primary, secondary) = sides(clients, spec).await?;
    let pointer = SsmPointer {
        ssm: clients.ssm.clone(),
        name: spec.active_workspace_parameter.clone(),
    };
    let store = S3RunStore::new(clients.s3.clone(), &clients.state_bucket, &spec.name);
    let failover = Failover {
        spec,
        primary: &primary,
        secondary: &secondary,
        store: &store,
        pointer: &pointer,
        now: now().0,
    };
    let response = failover.step(request).await?;
    tracing::info!(step = ?request.failover_step, mode = ?request.mode, reverse = request.reverse, jobs = ?response.jobs, errors = ?response.errors, "failover step done");
    Ok(response)
}

async fn run(clients: &Clients, spec: &DrSpec, request: &Request) -> Result<Response, Error> {
    let (primary, secondary) = sides(clients, spec).await?;
    // A reverse sync keeps its own runs and ledger: its targets are the old primary's.
    let pair = if request.reverse {
        format!("{}/reverse", spec.name)
    } else {
        spec.name.clone()
    };
    let store = S3RunStore::new(clients.s3.clone(), &clients.state_bucket, &pair);
    let pointer = SsmPointer {
        ssm: clients.ssm.clone(),
        name: spec.active_workspace_parameter.clone(),
    };
    let sync = Sync {
        spec,
        primary: &primary,
        secondary: &secondary,
        store: &store,
        pointer: &pointer,
        now: now(),
    };
    let response = sync.step(request).await?;
    tracing::info!(
        step = %response.step,
        mode = response.mode.as_str(),
        pair = %spec.name,
        reverse = request.reverse,
        changes = response.changes_total,
        ready = response.ready,
        "step done"
    );
    if let Some(summary) = &response.summary {
        // One dimension (Function), so the template's alarms can name the metric.
        let mut m = Metrics::new("dr-sync");
        m.property("Pair", Value::String(spec.name.clone()));
        m.put(
            "ReplicationLagSeconds",
            summary.replication_lag_seconds as f64,
            Unit::Seconds,
        );
        m.put("ObjectsMissing", summary.missing as f64, Unit::Count);
        m.put("ObjectsDrifted", summary.drifted as f64, Unit::Count);
        m.put("ObjectsFailed", summary.failed as f64, Unit::Count);
        m.put("ObjectsExtra", summary.extra as f64, Unit::Count);
        m.emit();
    }
    Ok(response)
}
