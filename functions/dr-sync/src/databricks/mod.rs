//! The `Workspace` port over the Databricks REST API (lakeops-shared's client, which
//! retries transient faults within its budget). Reads are in `read`; here are the
//! REST actions, the statements on the sync's SQL warehouse, and the warehouse itself
//! (adopted by id or by name, created only when the first statement needs it, so a
//! plan never creates one).

pub mod read;

use lakeops_shared::databricks::{DatabricksClient, DatabricksError};
use lakeops_shared::Error;
use serde_json::{json, Value};
use tokio::sync::OnceCell;

use crate::clones::StatementState;
use crate::inventory::Inventory;
use crate::plan::{Action, GrantChange};
use crate::ports::{Job, Result, Workspace};
use crate::spec::WarehouseSpec;

const UC: &str = "/api/2.1/unity-catalog";
/// Databricks takes at most 100 object updates in one share PATCH.
const SHARE_UPDATES_PER_CALL: usize = 100;

pub struct DatabricksSide {
    client: DatabricksClient,
    /// The secondary's warehouse; None on the primary, where no statement runs.
    warehouse: Option<WarehouseSpec>,
    warehouse_id: OnceCell<String>,
    with_tags: bool,
    with_grants: bool,
}

impl DatabricksSide {
    pub fn new(
        client: DatabricksClient,
        warehouse: Option<WarehouseSpec>,
        with_tags: bool,
        with_grants: bool,
    ) -> DatabricksSide {
        DatabricksSide {
            client,
            warehouse,
            warehouse_id: OnceCell::new(),
            with_tags,
            with_grants,
        }
    }

    async fn warehouse_id(&self) -> Result<&str> {
        let spec = self
            .warehouse
            .as_ref()
            .ok_or_else(|| Error::terminal("statements run only on the secondary's warehouse"))?;
        let id = self
            .warehouse_id
            .get_or_try_init(|| async {
                match spec {
                    WarehouseSpec::Id(id) => Ok::<_, Error>(id.clone()),
                    WarehouseSpec::Create(w) => {
                        let found = read::list_all(&self.client, "/api/2.0/sql/warehouses", &[], "warehouses").await?;
                        if let Some(id) = found.iter().find(|x| x["name"] == json!(w.name)).and_then(|x| x["id"].as_str()) {
                            return Ok(id.to_string());
                        }
                        let created: Value = self
                            .client
                            .post(
                                "/api/2.0/sql/warehouses",
                                &json!({"name": w.name, "cluster_size": w.cluster_size, "auto_stop_mins": w.auto_stop_mins,
                                        "min_num_clusters": 1, "max_num_clusters": 1, "warehouse_type": "PRO"}),
                            )
                            .await?;
                        created["id"]
                            .as_str()
                            .map(str::to_string)
                            .ok_or_else(|| Error::terminal("the warehouse create answered no id"))
                    }
                }
            })
            .await?;
        Ok(id)
    }

    /// A create whose object exists already (a re-run after a crash) is done.
    async fn create(&self, path: &str, body: Value) -> Result<()> {
        match self.client.post::<_, Value>(path, &body).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_already_exists() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn patch(&self, path: &str, body: Value) -> Result<()> {
        self.client
            .patch::<_, Value>(path, &body)
            .await
            .map(|_| ())
            .map_err(Error::from)
    }

    async fn create_share_catalog(
        &self,
        name: &str,
        share: &str,
        provider_global: &str,
    ) -> Result<()> {
        let providers =
            read::list_all(&self.client, &format!("{UC}/providers"), &[], "providers").await?;
        let provider = providers
            .iter()
            .find(|p| p["data_provider_global_metastore_id"] == json!(provider_global))
            .and_then(|p| p["name"].as_str())
            .ok_or_else(|| {
                Error::terminal(format!(
                    "no provider for the primary's metastore {provider_global} on the secondary: the recipient on the primary must exist first"
                ))
            })?;
        self.create(
            &format!("{UC}/catalogs"),
            json!({"name": name, "provider_name": provider, "share_name": share}),
        )
        .await
    }

    /// Removes first (a schema leaves a share before its tables are added one by
    /// one), then adds, [`SHARE_UPDATES_PER_CALL`] updates per call. A call refused
    /// because one object is in the share already (or gone already) is repeated one
    /// object at a time, so the rest of its batch is not skipped.
    async fn update_share(&self, share: &str, add: &[String], remove: &[String]) -> Result<()> {
        let updates: Vec<(bool, Value)> = remove
            .iter()
            .map(|name| (false, share_update("REMOVE", name)))
            .chain(add.iter().map(|name| (true, share_update("ADD", name))))
            .collect();
        let path = format!("{UC}/shares/{share}");
        // One at a time, an ADD already there or an object gone since discover (its
        // clone reports it), and a REMOVE already done, are settled.
        let settled = |adding: bool, e: &lakeops_shared::databricks::DatabricksError| {
            e.is_not_found() || (adding && e.is_already_exists())
        };
        for chunk in updates.chunks(SHARE_UPDATES_PER_CALL) {
            let body: Vec<&Value> = chunk.iter().map(|(_, u)| u).collect();
            match self
                .client
                .patch::<_, Value>(&path, &json!({"updates": body}))
                .await
            {
                Ok(_) => continue,
                Err(e) if e.is_already_exists() || e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
            for (adding, update) in chunk {
                match self
                    .client
                    .patch::<_, Value>(&path, &json!({"updates": [update]}))
                    .await
                {
                    Ok(_) => {}
                    Err(e) if settled(*adding, &e) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }
}

fn grant_changes(changes: &[GrantChange]) -> Value {
    Value::Array(
        changes
            .iter()
            .map(|c| json!({"principal": c.principal, "add": c.add, "remove": c.remove}))
            .collect(),
    )
}

fn state_of(v: &Value) -> StatementState {
    let status = &v["status"];
    match status["state"].as_str().unwrap_or_default() {
        "PENDING" => StatementState::Pending,
        "RUNNING" => StatementState::Running,
        "SUCCEEDED" => StatementState::Succeeded,
        "CANCELED" => StatementState::Canceled,
        "CLOSED" => StatementState::Closed,
        _ => {
            let e = &status["error"];
            StatementState::Failed {
                error: format!(
                    "{}: {}",
                    e["error_code"].as_str().unwrap_or("FAILED"),
                    e["message"].as_str().unwrap_or("the statement failed")
                ),
            }
        }
    }
}

impl Workspace for DatabricksSide {
    async fn inventory(&self, catalogs: &[String]) -> Result<Inventory> {
        read::inventory(&self.client, catalogs, self.with_tags, self.with_grants)
            .await
            .map_err(Error::from)
    }

    async fn apply(&self, action: &Action) -> Result<()> {
        match action {
            Action::CreateStorageCredential { name, role_arn } => {
                self.create(&format!("{UC}/storage-credentials"), json!({"name": name, "aws_iam_role": {"role_arn": role_arn}})).await
            }
            Action::UpdateStorageCredential { name, role_arn } => {
                self.patch(&format!("{UC}/storage-credentials/{name}"), json!({"aws_iam_role": {"role_arn": role_arn}})).await
            }
            Action::CreateExternalLocation { name, url, credential_name } => {
                self.create(&format!("{UC}/external-locations"), json!({"name": name, "url": url, "credential_name": credential_name})).await
            }
            Action::UpdateExternalLocation { name, url, credential_name } => {
                self.patch(&format!("{UC}/external-locations/{name}"), json!({"url": url, "credential_name": credential_name})).await
            }
            Action::CreateCatalog { name, comment, storage_root } => {
                self.create(&format!("{UC}/catalogs"), with_root(json!({"name": name, "comment": comment}), storage_root)).await
            }
                        Action::CreateSchema { catalog, name, comment, storage_root } => {
                self.create(&format!("{UC}/schemas"), with_root(json!({"name": name, "catalog_name": catalog, "comment": comment}), storage_root)).await
            }
            Action::CreateRecipient { name, global_metastore_id } => {
                self.create(
                    &format!("{UC}/recipients"),
                    json!({"name": name, "authentication_type": "DATABRICKS", "data_recipient_global_metastore_id": global_metastore_id}),
                )
                .await
            }
            Action::CreateShare { name } => self.create(&format!("{UC}/shares"), json!({"name": name})).await,
            Action::UpdateShare { share, add, remove } => self.update_share(share, add, remove).await,
            Action::GrantShare { share, recipient } => {
                self.patch(
                    &format!("{UC}/shares/{share}/permissions"),
                    json!({"changes": [{"principal": recipient, "add": ["SELECT"]}]}),
                )
                .await
            }
            Action::CreateShareCatalog { name, share, provider_global_metastore_id } => {
                self.create_share_catalog(name, share, provider_global_metastore_id).await
            }
            Action::UpdateGrants { securable, changes } => {
                self.patch(
                    &format!("{UC}/permissions/{}/{}", securable.kind.to_lowercase(), securable.name),
                    json!({"changes": grant_changes(changes)}),
                )
                .await
            }
            Action::Clone { .. } | Action::Statement { .. } => {
                Err(Error::terminal("a statement is submitted through the stage's queue, not applied"))
            }
        }
    }

    async fn submit(&self, statement: &str, schema: Option<&str>) -> Result<String> {
        let warehouse_id = self.warehouse_id().await?;
        let mut body = json!({
            "statement": statement,
            "warehouse_id": warehouse_id,
            "wait_timeout": "0s",
            "on_wait_timeout": "CONTINUE",
            "disposition": "INLINE",
            "format": "JSON_ARRAY"
        });
        if let Some((catalog, schema)) = schema.and_then(|s| s.split_once('.')) {
            body["catalog"] = json!(catalog);
            body["schema"] = json!(schema);
        }
        let answer: Value = self.client.post("/api/2.0/sql/statements", &body).await?;
        answer["statement_id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| Error::terminal("the statement API answered no statement_id"))
    }

    async fn poll(&self, statement_id: &str) -> Result<StatementState> {
        let v: Value = self
            .client
            .get(&format!("/api/2.0/sql/statements/{statement_id}"))
            .await
            .map_err(|e: DatabricksError| Error::from(e))?;
        Ok(state_of(&v))
    }

    async fn table_version(&self, full_name: &str) -> Result<Option<i64>> {
        let table: Option<Value> = self
            .client
            .get_optional(&format!("{UC}/tables/{full_name}"))
            .await?;
        Ok(table.and_then(|t| {
            t["properties"]["delta.lastUpdateVersion"]
                .as_str()
                .and_then(|v| v.parse().ok())
        }))
    }

    async fn triggered_jobs(&self) -> Result<Vec<Job>> {
        let jobs = read::list_all(&self.client, "/api/2.2/jobs/list", &[], "jobs").await?;
        Ok(jobs
            .iter()
            .filter_map(|j| {
                let settings = &j["settings"];
                let trigger = ["schedule", "continuous", "trigger"]
                    .into_iter()
                    .find(|t| settings[*t].is_object())?;
                Some(Job {
                    job_id: j["job_id"].as_i64()?,
                    name: settings["name"].as_str().unwrap_or_default().to_string(),
                    trigger: trigger.to_string(),
                    block: settings[trigger].clone(),
                    paused: settings[trigger]["pause_status"].as_str() == Some("PAUSED"),
                })
            })
            .collect())
    }

    async fn set_job_paused(&self, job: &Job, paused: bool) -> Result<()> {
        // jobs/update replaces a top-level block whole: write it back as read, with
        // only its pause_status changed.
        let mut block = job.block.clone();
        block["pause_status"] = json!(if paused { "PAUSED" } else { "UNPAUSED" });
        let mut new_settings = serde_json::Map::new();
        new_settings.insert(job.trigger.clone(), block);
        self.client
            .post::<_, Value>(
                "/api/2.2/jobs/update",
                &json!({"job_id": job.job_id, "new_settings": new_settings}),
            )
            .await
            .map(|_| ())
            .map_err(Error::from)
    }

    async fn cancel_job_runs(&self, job_id: i64) -> Result<()> {
        self.client
            .post::<_, Value>("/api/2.2/jobs/runs/cancel-all", &json!({"job_id": job_id}))
            .await
            .map(|_| ())
            .map_err(Error::from)
    }

    async fn cancel_statement(&self, statement_id: &str) -> Result<()> {
        match self
            .client
            .post::<_, Value>(
                &format!("/api/2.0/sql/statements/{statement_id}/cancel"),
                &json!({}),
            )
            .await
        {
            Ok(_) => Ok(()),
            // Gone already (Databricks keeps finished statements for hours): nothing runs.
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// One `SharedDataObjectUpdate`: `cat.schema` is a SCHEMA, `cat.schema.table` a TABLE.
fn share_update(action: &str, name: &str) -> Value {
    let kind = if name.matches('.').count() == 1 {
        "SCHEMA"
    } else {
        "TABLE"
    };
    json!({"action": action, "data_object": {"name": name, "data_object_type": kind}})
}

/// A create body with `storage_root` only when there is one (absent: the parent's storage).
fn with_root(mut body: Value, storage_root: &Option<String>) -> Value {
    if let Some(root) = storage_root {
        body["storage_root"] = json!(root);
    }
    body
}
