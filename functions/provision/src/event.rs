//! The contract between the state machine and the function.
//!
//! Request: `{"stage": "...", "mode": "plan"|"apply"|"destroy", "spec": {...} | "s3://...",
//! "outputs": {...}, "all_changes": [...]}`. Response: the same `mode` and `spec`,
//! `outputs` with this stage's outputs merged in, this stage's `changes`,
//! `all_changes` (every stage's so far), and `ready`/`wait_seconds` for the
//! state machine's Wait/Choice loop. Outputs hold ids, names and ARNs, never a
//! secret value.

use crate::plan::{Change, Mode};
use lakeops_shared::{Error, ErrorKind};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub stage: String,
    #[serde(default)]
    pub mode: Mode,
    /// The platform spec, or an `s3://bucket/key` URI of it.
    pub spec: Value,
    #[serde(default)]
    pub outputs: Map<String, Value>,
    #[serde(default)]
    pub all_changes: Vec<Change>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Response {
    pub stage: String,
    pub mode: Mode,
    pub spec: Value,
    pub outputs: Map<String, Value>,
    pub changes: Vec<Change>,
    pub all_changes: Vec<Change>,
    /// False while the state machine must wait and call the stage again.
    pub ready: bool,
    /// How long to wait before calling again when not ready.
    pub wait_seconds: u64,
}

/// A stage's result before it is folded into the response.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StageResult {
    pub outputs: Map<String, Value>,
    pub changes: Vec<Change>,
    /// `Some(seconds)`: not ready, call again after that long.
    pub wait: Option<u64>,
}

impl Response {
    pub fn build(request: Request, result: StageResult) -> Self {
        let mut outputs = request.outputs;
        for (key, value) in result.outputs {
            outputs.insert(key, value);
        }
        let mut all_changes = request.all_changes;
        all_changes.extend(result.changes.iter().cloned());
        Self {
            stage: request.stage,
            mode: request.mode,
            spec: request.spec,
            outputs,
            changes: result.changes,
            all_changes,
            ready: result.wait.is_none(),
            wait_seconds: result.wait.unwrap_or(0),
        }
    }
}

/// The Step Functions error name of a failed credential validation: retried
/// by the state machine with its own, longer but bounded, budget because IAM
/// takes minutes to propagate a new role.
pub const CREDENTIAL_VALIDATION: &str = "Lakeops.CredentialValidation";

/// A stage's failure, as the Lambda runtime reports it: `errorType` is the
/// stable name the state machine matches, `errorMessage` names the stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageFailure {
    pub name: &'static str,
    pub message: String,
}

impl StageFailure {
    pub fn credential_validation(message: impl Into<String>) -> Self {
        Self {
            name: CREDENTIAL_VALIDATION,
            message: message.into(),
        }
    }

    pub fn in_stage(mut self, stage: &str) -> Self {
        self.message = format!("stage {stage}: {}", self.message);
        self
    }

    pub fn is_retryable(&self) -> bool {
        self.name == CREDENTIAL_VALIDATION || self.name == ErrorKind::Retryable.error_name()
    }
}

impl From<Error> for StageFailure {
    fn from(error: Error) -> Self {
        Self {
            name: error.error_name(),
            message: error.message,
        }
    }
}

impl From<lakeops_shared::validate::Problems> for StageFailure {
    fn from(problems: lakeops_shared::validate::Problems) -> Self {
        Error::invalid_fields(&problems).into()
    }
}

impl std::fmt::Display for StageFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.name, self.message)
    }
}

impl std::error::Error for StageFailure {}

impl From<StageFailure> for lambda_runtime::Diagnostic {
    fn from(failure: StageFailure) -> Self {
        lambda_runtime::Diagnostic {
            error_type: failure.name.to_string(),
            error_message: failure.message,
        }
    }
}

/// Whether a Databricks error is the credential check that fails until IAM
/// has propagated a new cross-account role ("MALFORMED_REQUEST: Failed
/// credential validation checks", sometimes as text/plain).
pub fn is_credential_validation(error: &lakeops_shared::databricks::DatabricksError) -> bool {
    let text = format!(
        "{} {}",
        error.error_code.as_deref().unwrap_or_default(),
        error.message
    )
    .to_ascii_lowercase();
    error.status == 400 && text.contains("credential validation")
}

/// When is a workspace ready for the workspace-level stages?
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Poll again after this many seconds.
    Wait(u64),
    /// Provisioning failed, or did not finish in time.
    Failed(String),
}

/// Pure: from the workspace status, whether its API answered, and how long
/// since it was created.
pub fn readiness(
    status: &str,
    status_message: &str,
    api_answers: bool,
    age_seconds: u64,
    timeout_seconds: u64,
) -> Readiness {
    match status {
        "RUNNING" if api_answers => Readiness::Ready,
        "FAILED" | "BANNED" | "CANCELLING" => {
            Readiness::Failed(format!("workspace is {status}: {status_message}"))
        }
        _ if age_seconds >= timeout_seconds => Readiness::Failed(format!(
            "workspace is not ready after {} minutes (status {status}{})",
            age_seconds / 60,
            if status == "RUNNING" {
                ", API not answering"
            } else {
                ""
            }
        )),
        // The API of a freshly RUNNING workspace takes a little while; the
        // provisioning itself takes minutes.
        "RUNNING" => Readiness::Wait(10),
        _ => Readiness::Wait(30),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Action;
    use lakeops_shared::databricks::DatabricksError;
    use serde_json::json;

    #[test]
    fn request_defaults_and_rejects_unknown_fields() {
        let r: Request =
            serde_json::from_value(json!({"stage": "credentials", "spec": "s3://b/k.json"}))
                .unwrap();
        assert_eq!(r.mode, Mode::Apply);
        assert!(r.outputs.is_empty());
        assert!(serde_json::from_value::<Request>(
            json!({"stage": "x", "spec": {}, "mdoe": "plan"})
        )
        .is_err());
    }

    #[test]
    fn response_merges_outputs_and_accumulates_changes() {
        let request: Request = serde_json::from_value(json!({
            "stage": "storage", "mode": "plan", "spec": {"environment": "dev"},
            "outputs": {"credentials_id": "c-1", "storage_configuration_id": "old"},
            "all_changes": [{"action": "create", "resource": "credentials/x"}]
        }))
        .unwrap();
        let mut result = StageResult::default();
        result
            .outputs
            .insert("storage_configuration_id".into(), json!("s-1"));
        result
            .changes
            .push(Change::new(Action::Create, "storage", "y"));
        let response = serde_json::to_value(Response::build(request, result)).unwrap();
        assert_eq!(
            response["outputs"],
            json!({"credentials_id": "c-1", "storage_configuration_id": "s-1"})
        );
        assert_eq!(response["changes"].as_array().unwrap().len(), 1);
        assert_eq!(response["all_changes"].as_array().unwrap().len(), 2);
        assert_eq!(response["ready"], json!(true));
        assert_eq!(response["mode"], json!("plan"));
        assert_eq!(response["spec"], json!({"environment": "dev"}));
    }

    #[test]
    fn failures_carry_stable_names_and_the_stage() {
        let failure = StageFailure::from(Error::terminal("boom")).in_stage("network");
        let diagnostic: lambda_runtime::Diagnostic = failure.into();
        assert_eq!(diagnostic.error_type, "Lakeops.Terminal");
        assert_eq!(diagnostic.error_message, "stage network: boom");
        assert!(StageFailure::credential_validation("x").is_retryable());
    }

    #[test]
    fn recognises_credential_validation_failures() {
        let json = DatabricksError::from_response(
            400,
            r#"{"error_code":"MALFORMED_REQUEST","message":"Failed credential validation checks: please use a valid cross account IAM role"}"#,
            "POST /w".into(),
            None,
        );
        assert!(is_credential_validation(&json));
        let plain = DatabricksError::from_response(
            400,
            "MALFORMED_REQUEST: Failed credential validation checks",
            "POST /w".into(),
            None,
        );
        assert!(is_credential_validation(&plain));
        let other = DatabricksError::from_response(
            400,
            r#"{"error_code":"INVALID_PARAMETER_VALUE","message":"bad"}"#,
            "POST /w".into(),
            None,
        );
        assert!(!is_credential_validation(&other));
    }

    #[test]
    fn readiness_rules() {
        assert_eq!(readiness("RUNNING", "", true, 10, 3600), Readiness::Ready);
        assert_eq!(
            readiness("RUNNING", "", false, 10, 3600),
            Readiness::Wait(10)
        );
        assert_eq!(
            readiness("PROVISIONING", "", false, 10, 3600),
            Readiness::Wait(30)
        );
        assert!(
            matches!(readiness("FAILED", "bad network", false, 10, 3600), Readiness::Failed(m) if m.contains("bad network"))
        );
        assert!(
            matches!(readiness("PROVISIONING", "", false, 3600, 3600), Readiness::Failed(m) if m.contains("60 minutes"))
        );
    }
}
