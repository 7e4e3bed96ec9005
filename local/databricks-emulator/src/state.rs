//! The emulator's whole state: one serialisable struct behind one mutex.
//!
//! Resources whose shape is the API's own JSON are stored as `serde_json::Value` objects
//! exactly as they are returned, so a response is the stored object plus the few fields
//! that are derived from time (status fields). Records with a state machine keep the
//! timestamps they need; the current status is computed from them when read (see
//! `lifecycle`), so nothing runs in the background.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::errors::ApiError;
use crate::faults::{FaultConfig, FaultCounters};
use crate::lifecycle::{
    ClusterPhase, PipelinePhase, RunPhase, WarehousePhase, WorkspaceProvisioning,
};

/// Timing and identity settings fixed at start.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub account_id: String,
    pub admin_client_id: String,
    pub admin_client_secret: String,
    pub provisioning_ms: i64,
    pub cluster_ms: i64,
    pub run_ms: i64,
    /// How long a SQL statement stays RUNNING.
    pub statement_ms: i64,
    /// How long a SQL warehouse takes to start, stop or be deleted.
    pub warehouse_ms: i64,
    pub oauth_token_seconds: i64,
    pub state_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum TokenScope {
    Account(String),
    Workspace(i64),
}

/// An OAuth access token issued by one of the token endpoints.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OAuthToken {
    pub service_principal_id: String,
    pub scope: TokenScope,
    pub expires_ms: i64,
}

/// An OAuth secret of a service principal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpSecret {
    pub info: Value,
    pub secret: String,
    pub expires_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkspaceRecord {
    /// The `Workspace` object without its status fields.
    pub info: Value,
    pub provisioning: WorkspaceProvisioning,
    /// Principal that created it; it is made workspace admin, as the real service does.
    pub creator_principal_id: Option<i64>,
}

/// A personal access token. `value` is kept so a persisted emulator accepts tokens
/// issued before a restart; `/_emulator/state` redacts it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PatRecord {
    pub value: String,
    pub info: Value,
    pub owner_id: i64,
    pub owner_name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterRecord {
    pub info: Value,
    pub phase: ClusterPhase,
}

/// A SQL warehouse: its settings as created, and its phase.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WarehouseRecord {
    pub info: Value,
    pub phase: WarehousePhase,
    /// Lists are in creation order.
    pub created_ms: i64,
}

/// A pipeline: its spec and who made it, its phase, and its updates (newest first).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PipelineRecord {
    pub info: Value,
    pub phase: PipelinePhase,
    /// (update id, creation time ms), newest first.
    pub updates: Vec<(String, i64)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub info: Value,
    pub phase: RunPhase,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct SecretScope {
    pub backend_type: String,
    /// key -> (base64 value, last update ms)
    pub secrets: BTreeMap<String, (String, i64)>,
    /// principal -> permission
    pub acls: BTreeMap<String, String>,
}

/// Everything that lives inside one workspace.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct WorkspaceData {
    pub conf: BTreeMap<String, String>,
    pub tokens: BTreeMap<String, PatRecord>,
    pub clusters: BTreeMap<String, ClusterRecord>,
    pub cluster_policies: BTreeMap<String, Value>,
    pub instance_pools: BTreeMap<String, Value>,
    pub instance_profiles: BTreeMap<String, Value>,
    pub global_init_scripts: BTreeMap<String, Value>,
    pub jobs: BTreeMap<i64, Value>,
    pub runs: BTreeMap<i64, RunRecord>,
    pub repos: BTreeMap<i64, Value>,
    pub secret_scopes: BTreeMap<String, SecretScope>,
    pub statements: BTreeMap<String, Value>,
    /// Absent from state files written before warehouses were emulated.
    #[serde(default)]
    pub warehouses: BTreeMap<String, WarehouseRecord>,
    #[serde(default)]
    pub pipelines: BTreeMap<String, PipelineRecord>,
    /// SQL statements of the Statement Execution API (`workspace::statements`).
    /// `statements` above holds what the earlier stub recorded and is no longer used.
    #[serde(default)]
    pub sql_statements: BTreeMap<String, crate::workspace::statements::StatementRecord>,
}

/// Unity Catalog objects, which belong to a metastore (shared by every workspace
/// assigned to it).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct MetastoreData {
    pub storage_credentials: BTreeMap<String, Value>,
    pub external_locations: BTreeMap<String, Value>,
    pub catalogs: BTreeMap<String, Value>,
    pub schemas: BTreeMap<String, Value>,
    pub volumes: BTreeMap<String, Value>,
    /// "SECURABLE_TYPE/full_name" -> principal -> privileges
    pub grants: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
    /// Tables and views by lower-case full name (the data plane; see `uc_data`).
    /// Fields below are absent from state files written before they were emulated.
    #[serde(default)]
    pub tables: BTreeMap<String, crate::uc_data::TableRecord>,
    /// SQL functions (`FunctionInfo` objects) by lower-case full name.
    #[serde(default)]
    pub functions: BTreeMap<String, Value>,
    /// Tag assignments by securable (`uc_data::tag_key`).
    #[serde(default)]
    pub tags: BTreeMap<String, crate::uc_data::Tags>,
    /// Delta Sharing, provider side: shares (`ShareInfo`, with `objects[]`) and
    /// recipients (`RecipientInfo`), by lower-case name. Share grants to recipients
    /// are in `grants` under `SHARE/<share>`, keyed by recipient name.
    #[serde(default)]
    pub shares: BTreeMap<String, Value>,
    #[serde(default)]
    pub recipients: BTreeMap<String, Value>,
    /// Delta Sharing, recipient side: providers (`ProviderInfo`, with
    /// `data_provider_global_metastore_id`) by lower-case name.
    #[serde(default)]
    pub providers: BTreeMap<String, Value>,
    /// When and by whom each tag assignment was last set through the REST API
    /// (`tags` key -> tag key -> (epoch ms, principal)); tags set by SQL have none.
    #[serde(default)]
    pub tag_updates: BTreeMap<String, BTreeMap<String, (i64, String)>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct State {
    pub account_id: String,
    pub credentials: BTreeMap<String, Value>,
    pub storage_configurations: BTreeMap<String, Value>,
    pub networks: BTreeMap<String, Value>,
    pub vpc_endpoints: BTreeMap<String, Value>,
    pub private_access_settings: BTreeMap<String, Value>,
    pub customer_managed_keys: BTreeMap<String, Value>,
    pub workspaces: BTreeMap<i64, WorkspaceRecord>,
    pub log_delivery: BTreeMap<String, Value>,
    pub groups: BTreeMap<String, Value>,
    pub service_principals: BTreeMap<String, Value>,
    /// service principal id -> secrets
    pub sp_secrets: BTreeMap<String, Vec<SpSecret>>,
    /// workspace id -> principal id -> permissions
    pub permission_assignments: BTreeMap<i64, BTreeMap<i64, Vec<String>>>,
    pub metastores: BTreeMap<String, Value>,
    /// workspace id -> MetastoreAssignment
    pub metastore_assignments: BTreeMap<i64, Value>,
    pub oauth_tokens: BTreeMap<String, OAuthToken>,
    pub workspace_data: BTreeMap<i64, WorkspaceData>,
    pub metastore_data: BTreeMap<String, MetastoreData>,
    pub faults: FaultConfig,
    pub fault_counters: FaultCounters,
}

pub const ADMIN_SP_ID: &str = "1000000000000001";

impl State {
    /// The state a fresh emulator starts with: one account and its admin service principal.
    pub fn initial(settings: &Settings) -> State {
        let mut state = State {
            account_id: settings.account_id.clone(),
            ..State::default()
        };
        state.ensure_admin(settings);
        state
    }

    /// Makes sure the bootstrap admin service principal exists with the configured
    /// credentials (also after loading a persisted state).
    pub fn ensure_admin(&mut self, settings: &Settings) {
        let sp = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServicePrincipal"],
            "id": ADMIN_SP_ID,
            "applicationId": settings.admin_client_id,
            "displayName": "emulator-account-admin",
            "active": true,
            "roles": [{"value": "account_admin"}],
            "account_id": settings.account_id,
        });
        self.service_principals
            .entry(ADMIN_SP_ID.to_string())
            .or_insert(sp);
    }

    pub fn sp_by_application_id(&self, application_id: &str) -> Option<&Value> {
        self.service_principals
            .values()
            .find(|sp| sp["applicationId"].as_str() == Some(application_id))
    }

    pub fn ws_data(&mut self, workspace_id: i64) -> &mut WorkspaceData {
        self.workspace_data.entry(workspace_id).or_default()
    }
}

#[derive(Clone)]
pub struct App {
    pub settings: Arc<Settings>,
    state: Arc<Mutex<State>>,
    pub requests: crate::requests::RequestLog,
}

impl App {
    pub fn new(settings: Settings, state: State) -> App {
        App {
            settings: Arc::new(settings),
            state: Arc::new(Mutex::new(state)),
            requests: crate::requests::RequestLog::default(),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the state as it was at the panic; the
        // emulator keeps serving rather than failing every later request.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs a mutation and persists the state afterwards when `--state` is set, also
    /// when the mutation fails part-way (failed requests do not change state by design,
    /// but counters such as fault counters may change).
    pub fn mutate<T>(
        &self,
        f: impl FnOnce(&mut State) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut guard = self.lock();
        let result = f(&mut guard);
        self.persist(&guard);
        result
    }

    pub fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        let guard = self.lock();
        f(&guard)
    }

    pub fn replace(&self, state: State) {
        let mut guard = self.lock();
        *guard = state;
        self.persist(&guard);
    }

    fn persist(&self, state: &State) {
        let Some(path) = &self.settings.state_file else {
            return;
        };
        if let Err(e) = write_atomically(path, state) {
            eprintln!(
                "databricks-emulator: cannot persist state to {}: {e}",
                path.display()
            );
        }
    }
}

/// Writes the state to a temporary file next to the target and renames it over the
/// target, so a crash never leaves a half-written state file.
pub fn write_atomically(path: &std::path::Path, state: &State) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

pub fn load_state(path: &std::path::Path) -> std::io::Result<Option<State>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// RFC 3339 UTC timestamp (seconds precision) for fields the API returns as strings.
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

pub fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub fn random_hex(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap_or('0'))
        .collect()
}

pub fn random_alnum_lower(len: usize) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

/// A positive numeric id with `digits` digits, as used for workspaces, SCIM principals,
/// jobs and runs.
pub fn random_numeric_id(digits: u32) -> i64 {
    let low = 10i64.pow(digits - 1);
    rand::rng().random_range(low..low * 10)
}

/// A JSON request body. An empty body is an empty object (the SDK sends none on
/// DELETE); invalid JSON is the real service's `MALFORMED_REQUEST`.
pub struct Body(pub Value);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::malformed(format!("Cannot read request body: {e}")))?;
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(Body(Value::Object(Map::new())));
        }
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::malformed(format!(
                "Invalid JSON given in the body of the request: {e}"
            ))
        })?;
        if !value.is_object() {
            return Err(ApiError::malformed(
                "Invalid JSON given in the body of the request: expected an object",
            ));
        }
        Ok(Body(value))
    }
}

/// Accessors that turn a missing or wrongly-typed field into the service's error.
pub trait Fields {
    fn req_str(&self, field: &str) -> Result<String, ApiError>;
    fn opt_str(&self, field: &str) -> Option<String>;
    fn opt_i64(&self, field: &str) -> Result<Option<i64>, ApiError>;
    fn opt_bool(&self, field: &str) -> Result<Option<bool>, ApiError>;
    fn str_list(&self, field: &str) -> Result<Vec<String>, ApiError>;
}

impl Fields for Value {
    fn req_str(&self, field: &str) -> Result<String, ApiError> {
        match self.get(field) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(Value::String(_)) | None | Some(Value::Null) => {
                Err(ApiError::missing_field(field))
            }
            Some(_) => Err(ApiError::invalid(format!("Field {field} must be a string"))),
        }
    }

    fn opt_str(&self, field: &str) -> Option<String> {
        self.get(field).and_then(|v| v.as_str()).map(str::to_string)
    }

    fn opt_i64(&self, field: &str) -> Result<Option<i64>, ApiError> {
        match self.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| ApiError::invalid(format!("Field {field} must be an integer"))),
            Some(Value::String(s)) => s
                .parse()
                .map(Some)
                .map_err(|_| ApiError::invalid(format!("Field {field} must be an integer"))),
            Some(_) => Err(ApiError::invalid(format!(
                "Field {field} must be an integer"
            ))),
        }
    }

    fn opt_bool(&self, field: &str) -> Result<Option<bool>, ApiError> {
        match self.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(ApiError::invalid(format!(
                "Field {field} must be a boolean"
            ))),
        }
    }

    fn str_list(&self, field: &str) -> Result<Vec<String>, ApiError> {
        match self.get(field) {
            None | Some(Value::Null) => Ok(vec![]),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str().map(str::to_string).ok_or_else(|| {
                        ApiError::invalid(format!("Field {field} must be a list of strings"))
                    })
                })
                .collect(),
            Some(_) => Err(ApiError::invalid(format!("Field {field} must be a list"))),
        }
    }
}

/// Copies the listed fields of `src` that are present into `dst`.
pub fn copy_fields(dst: &mut Value, src: &Value, fields: &[&str]) {
    for f in fields {
        if let Some(v) = src.get(*f) {
            if !v.is_null() {
                dst[*f] = v.clone();
            }
        }
    }
}

pub fn query_bool(q: &std::collections::HashMap<String, String>, key: &str) -> bool {
    q.get(key).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn numeric_ids_have_requested_digits() {
        for _ in 0..100 {
            assert_eq!(random_numeric_id(16).to_string().len(), 16);
        }
    }

    #[test]
    fn state_round_trips_through_json() {
        let settings = Settings {
            account_id: "a".into(),
            admin_client_id: "c".into(),
            admin_client_secret: "s".into(),
            provisioning_ms: 1,
            cluster_ms: 1,
            run_ms: 1,
            statement_ms: 1,
            warehouse_ms: 1,
            oauth_token_seconds: 1,
            state_file: None,
        };
        let mut state = State::initial(&settings);
        state
            .permission_assignments
            .entry(7)
            .or_default()
            .insert(9, vec!["USER".into()]);
        let text = serde_json::to_string(&state).unwrap();
        let back: State = serde_json::from_str(&text).unwrap();
        assert_eq!(
            back.permission_assignments[&7][&9],
            vec!["USER".to_string()]
        );
        assert!(back.service_principals.contains_key(ADMIN_SP_ID));
    }
}
