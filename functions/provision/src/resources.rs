//! How each kind of Databricks resource is listed, found by its deterministic
//! name, created, updated and deleted — as data — and the one engine
//! ([`converge`]) that, for any of them, finds, plans and acts.

use crate::event::{is_credential_validation, StageFailure};
use crate::plan::{change_for, decide, Change, Decision, Desired, Mode, Observed};
use lakeops_shared::databricks::{DatabricksClient, DatabricksError};
use lakeops_shared::Error;
use reqwest::Method;
use serde_json::{json, Value};

/// A Databricks error as a stage failure: the credential check that fails
/// while IAM propagates gets its own name; 429/503 (after the client's own
/// short retries) are retryable; the rest is terminal.
pub fn databricks_failure(error: DatabricksError) -> StageFailure {
    if is_credential_validation(&error) {
        StageFailure::credential_validation(error.to_string())
    } else {
        Error::from(error).into()
    }
}

/// How to update an existing resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateOp {
    /// `PATCH {item}` with the compared fields.
    Patch,
    /// `PATCH {item}?update_mask=a,b` with the changed fields (workspaces).
    PatchMasked,
    /// `PUT {item}` with the whole create body.
    Put,
    /// `POST path` with the whole create body plus the id under `id_key`.
    PostWithId {
        path: &'static str,
        id_key: &'static str,
    },
    /// `PATCH {item}` with `{"status": "ENABLED"}` (log delivery).
    PatchStatus,
}

/// How to delete a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOp {
    /// `DELETE {item}` plus an optional query (`?force=true`).
    Delete { query: &'static str },
    /// `POST path` with `{id_key: id}`.
    PostId {
        path: &'static str,
        id_key: &'static str,
    },
    /// `PATCH {item}` with `{"status": "DISABLED"}`: log delivery cannot be deleted.
    Disable,
}

/// One kind of resource in a Databricks API.
#[derive(Debug, Clone, PartialEq)]
pub struct Collection {
    pub kind: &'static str,
    /// Path of the list call (account paths already expanded), with any query.
    pub list_path: String,
    /// Where the items are in the list response; `None` for a bare array.
    pub items_key: Option<&'static str>,
    /// JSON pointers to an item's name and id.
    pub name_pointer: &'static str,
    pub id_pointer: &'static str,
    /// Path of the create call.
    pub create_path: String,
    /// Wrap the create body under this key, and read the created item from it.
    pub wrap_key: Option<&'static str>,
    /// The item path, with `{id}`.
    pub item_path: String,
    pub update: Option<UpdateOp>,
    pub delete: DeleteOp,
    /// Where the item's comment is; when set, an item is lakeops' own only if
    /// its comment carries [`OWNER_MARK`] (otherwise it was adopted).
    pub comment_pointer: Option<&'static str>,
}

/// Written into the comment of resources that have one.
pub const OWNER_MARK: &str = "managed by lakeops";

/// An id as a string, whether the API gives a number (workspaces, jobs) or a string.
pub fn id_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Collection {
    fn items(&self, response: Value) -> Vec<Value> {
        let list = match self.items_key {
            None => response,
            Some(key) => response.get(key).cloned().unwrap_or(Value::Null),
        };
        match list {
            Value::Array(items) => items,
            _ => Vec::new(),
        }
    }

    pub fn item_path_for(&self, id: &str) -> String {
        self.item_path.replace("{id}", id)
    }

    /// The items named `name`. Pure.
    pub fn select<'a>(&self, items: &'a [Value], name: &str) -> Vec<&'a Value> {
        items
            .iter()
            .filter(|item| item.pointer(self.name_pointer).and_then(Value::as_str) == Some(name))
            .collect()
    }

    fn observed(&self, item: &Value, adopted: bool) -> Result<Observed, StageFailure> {
        let id = item
            .pointer(self.id_pointer)
            .and_then(id_string)
            .ok_or_else(|| {
                StageFailure::from(Error::terminal(format!(
                    "{} without {}",
                    self.kind, self.id_pointer
                )))
            })?;
        let marked = match self.comment_pointer {
            Some(pointer) => item
                .pointer(pointer)
                .and_then(Value::as_str)
                .is_some_and(|c| c.contains(OWNER_MARK)),
            None => true,
        };
        Ok(Observed {
            id,
            value: item.clone(),
            owned: marked && !adopted,
        })
    }

    /// Find the resource by name. More than one under our name is a conflict
    /// a person must resolve; lakeops never guesses which to keep.
    pub async fn find(
        &self,
        api: &DatabricksClient,
        name: &str,
        adopted: bool,
    ) -> Result<Option<Observed>, StageFailure> {
        let response = match api.get::<Value>(&self.list_path).await {
            Ok(response) => response,
            // A list under a parent that does not exist yet (a catalog's schemas).
            Err(error) if error.is_not_found() => return Ok(None),
            Err(error) => return Err(databricks_failure(error)),
        };
        let items = self.items(response);
        let found = self.select(&items, name);
        match found.as_slice() {
            [] => Ok(None),
            [one] => self.observed(one, adopted).map(Some),
            many => Err(Error::terminal(format!(
                "{} resources of kind {} are named {name:?}; remove the extra ones",
                many.len(),
                self.kind
            ))
            .into()),
        }
    }

    async fn create(
        &self,
        api: &DatabricksClient,
        body: &Value,
    ) -> Result<Option<Value>, DatabricksError> {
        let body = match self.wrap_key {
            Some(key) => json!({ key: body }),
            None => body.clone(),
        };
        let response: Value = api.post(&self.create_path, &body).await?;
        let item = match self.wrap_key {
            Some(key) => response.get(key).cloned(),
            None => Some(response),
        };
        Ok(item.filter(|i| i.pointer(self.id_pointer).and_then(id_string).is_some()))
    }

    async fn update(
        &self,
        api: &DatabricksClient,
        id: &str,
        desired: &Desired,
        create_body: &Value,
        fields: &[String],
    ) -> Result<(), DatabricksError> {
        let item = self.item_path_for(id);
        let Some(op) = self.update else { return Ok(()) };
        match op {
            UpdateOp::Patch => {
                let body = changed_top_level(&desired.compare, fields);
                api.patch::<_, Value>(&item, &body).await.map(drop)
            }
            UpdateOp::PatchMasked => {
                let body = changed_top_level(&desired.compare, fields);
                let mask: Vec<&str> = body
                    .as_object()
                    .map(|o| o.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                api.call::<_, Value>(
                    Method::PATCH,
                    &item,
                    &[("update_mask", mask.join(","))],
                    Some(&body),
                )
                .await
                .map(drop)
            }
            UpdateOp::Put => api.put::<_, Value>(&item, create_body).await.map(drop),
            UpdateOp::PostWithId { path, id_key } => {
                let mut body = create_body.clone();
                body[id_key] = id_value(id);
                api.post::<_, Value>(path, &body).await.map(drop)
            }
            UpdateOp::PatchStatus => api
                .patch::<_, Value>(&item, &json!({"status": "ENABLED"}))
                .await
                .map(drop),
        }
    }

    async fn delete(&self, api: &DatabricksClient, id: &str) -> Result<(), DatabricksError> {
        let result = match self.delete {
            DeleteOp::Delete { query } => {
                api.delete(&format!("{}{query}", self.item_path_for(id)))
                    .await
            }
            DeleteOp::PostId { path, id_key } => api
                .post::<_, Value>(path, &json!({ id_key: id_value(id) }))
                .await
                .map(drop),
            DeleteOp::Disable => api
                .patch::<_, Value>(&self.item_path_for(id), &json!({"status": "DISABLED"}))
                .await
                .map(drop),
        };
        match result {
            // Gone already (a re-run after a killed destroy).
            Err(error) if error.is_not_found() => Ok(()),
            other => other,
        }
    }
}

/// Numeric ids go back as numbers (job_id), others as strings.
fn id_value(id: &str) -> Value {
    id.parse::<i64>()
        .map(Value::from)
        .unwrap_or_else(|_| Value::String(id.to_string()))
}

/// The top-level fields of `compare` that contain a changed path. Pure.
pub fn changed_top_level(compare: &Value, fields: &[String]) -> Value {
    let mut body = serde_json::Map::new();
    for field in fields {
        let top = field.split(['.', '[']).next().unwrap_or(field);
        if let Some(value) = compare.get(top) {
            body.insert(top.to_string(), value.clone());
        }
    }
    Value::Object(body)
}

/// The outcome of converging one resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Converged {
    pub change: Change,
    /// Its id, when it exists (after `apply`) or existed (`plan`, `destroy`).
    pub id: Option<String>,
    /// The resource as last seen or as created.
    pub value: Option<Value>,
}

/// Find the resource by its deterministic name, decide, and act for the mode:
/// `plan` only reports; `apply` creates, updates or adopts; `destroy`
/// deletes what lakeops owns. A create that races another (409) adopts the
/// winner instead of failing.
pub async fn converge(
    api: &DatabricksClient,
    collection: &Collection,
    mode: Mode,
    desired: &Desired,
    create_body: &Value,
    adopted: bool,
    include_adopted: bool,
) -> Result<Converged, StageFailure> {
    let found = collection.find(api, &desired.name, adopted).await?;
    let decision = decide(mode, desired, found.as_ref(), include_adopted);
    let change = change_for(&decision, desired, found.as_ref());
    let found_id = found.as_ref().map(|f| f.id.clone());
    let found_value = found.as_ref().map(|f| f.value.clone());
    if mode == Mode::Plan {
        return Ok(Converged {
            change,
            id: found_id,
            value: found_value,
        });
    }
    match decision {
        Decision::Create => match collection.create(api, create_body).await {
            Ok(created) => {
                let (id, value) = match created {
                    Some(item) => (
                        item.pointer(collection.id_pointer).and_then(id_string),
                        Some(item),
                    ),
                    // Some create calls answer only an id field elsewhere: look it up.
                    None => match collection.find(api, &desired.name, adopted).await? {
                        Some(found) => (Some(found.id), Some(found.value)),
                        None => (None, None),
                    },
                };
                Ok(Converged {
                    change: change.with_id(id.clone()),
                    id,
                    value,
                })
            }
            Err(error) if error.is_already_exists() => {
                let Some(found) = collection.find(api, &desired.name, adopted).await? else {
                    return Err(databricks_failure(error));
                };
                let change = change_for(&Decision::Keep, desired, Some(&found))
                    .with_note("created concurrently; adopted");
                Ok(Converged {
                    change,
                    id: Some(found.id),
                    value: Some(found.value),
                })
            }
            Err(error) => Err(databricks_failure(error)),
        },
        Decision::Update { ref update, .. } => {
            let id = found_id.clone().unwrap_or_default();
            collection
                .update(api, &id, desired, create_body, update)
                .await
                .map_err(databricks_failure)?;
            Ok(Converged {
                change,
                id: found_id,
                value: found_value,
            })
        }
        Decision::Delete => {
            let id = found_id.clone().unwrap_or_default();
            collection
                .delete(api, &id)
                .await
                .map_err(databricks_failure)?;
            Ok(Converged {
                change,
                id: found_id,
                value: None,
            })
        }
        Decision::Keep | Decision::Drift(_) | Decision::Absent | Decision::LeaveAdopted => {
            Ok(Converged {
                change,
                id: found_id,
                value: found_value,
            })
        }
    }
}

/// Account API collections.
pub mod account {
    use super::*;

    fn plain(
        api: &DatabricksClient,
        kind: &'static str,
        rest: &str,
        name: &'static str,
        id: &'static str,
    ) -> Collection {
        Collection {
            kind,
            list_path: api.account_path(rest),
            items_key: None,
            name_pointer: name,
            id_pointer: id,
            create_path: api.account_path(rest),
            wrap_key: None,
            item_path: api.account_path(&format!("{rest}/{{id}}")),
            update: None,
            delete: DeleteOp::Delete { query: "" },
            comment_pointer: None,
        }
    }

    pub fn credentials(api: &DatabricksClient) -> Collection {
        plain(
            api,
            "credentials",
            "credentials",
            "/credentials_name",
            "/credentials_id",
        )
    }

    pub fn storage_configurations(api: &DatabricksClient) -> Collection {
        plain(
            api,
            "storage_configuration",
            "storage-configurations",
            "/storage_configuration_name",
            "/storage_configuration_id",
        )
    }

    pub fn networks(api: &DatabricksClient) -> Collection {
        plain(api, "network", "networks", "/network_name", "/network_id")
    }

    pub fn vpc_endpoints(api: &DatabricksClient) -> Collection {
        plain(
            api,
            "vpc_endpoint",
            "vpc-endpoints",
            "/vpc_endpoint_name",
            "/vpc_endpoint_id",
        )
    }

    pub fn private_access_settings(api: &DatabricksClient) -> Collection {
        Collection {
            update: Some(UpdateOp::Put),
            ..plain(
                api,
                "private_access_settings",
                "private-access-settings",
                "/private_access_settings_name",
                "/private_access_settings_id",
            )
        }
    }

    /// Keys have no name: they are found by their KMS key ARN.
    pub fn customer_managed_keys(api: &DatabricksClient) -> Collection {
        plain(
            api,
            "customer_managed_key",
            "customer-managed-keys",
            "/aws_key_info/key_arn",
            "/customer_managed_key_id",
        )
    }

    pub fn workspaces(api: &DatabricksClient) -> Collection {
        Collection {
            update: Some(UpdateOp::PatchMasked),
            ..plain(
                api,
                "workspace",
                "workspaces",
                "/workspace_name",
                "/workspace_id",
            )
        }
    }

    pub fn log_delivery(api: &DatabricksClient) -> Collection {
        Collection {
            items_key: Some("log_delivery_configurations"),
            wrap_key: Some("log_delivery_configuration"),
            update: Some(UpdateOp::PatchStatus),
            delete: DeleteOp::Disable,
            ..plain(
                api,
                "log_delivery",
                "log-delivery",
                "/config_name",
                "/config_id",
            )
        }
    }

    pub fn metastores(api: &DatabricksClient) -> Collection {
        Collection {
            items_key: Some("metastores"),
            wrap_key: Some("metastore_info"),
            delete: DeleteOp::Delete {
                query: "?force=true",
            },
            ..plain(api, "metastore", "metastores", "/name", "/metastore_id")
        }
    }

    fn scim(api: &DatabricksClient, kind: &'static str, resource: &str, name: &str) -> Collection {
        let filter = format!("displayName eq \"{name}\"");
        Collection {
            list_path: format!(
                "{}?filter={}",
                api.account_path(&format!("scim/v2/{resource}")),
                url_encode(&filter)
            ),
            items_key: Some("Resources"),
            ..plain(
                api,
                kind,
                &format!("scim/v2/{resource}"),
                "/displayName",
                "/id",
            )
        }
    }

    pub fn groups(api: &DatabricksClient, name: &str) -> Collection {
        scim(api, "group", "Groups", name)
    }

    pub fn service_principals(api: &DatabricksClient, name: &str) -> Collection {
        scim(api, "service_principal", "ServicePrincipals", name)
    }
}

/// Workspace API collections.
pub mod workspace {
    use super::*;

    pub fn tokens() -> Collection {
        Collection {
            kind: "token",
            list_path: "/api/2.0/token/list".into(),
            items_key: Some("token_infos"),
            name_pointer: "/comment",
            id_pointer: "/token_id",
            create_path: "/api/2.0/token/create".into(),
            wrap_key: None,
            item_path: String::new(),
            update: None,
            delete: DeleteOp::PostId {
                path: "/api/2.0/token/delete",
                id_key: "token_id",
            },
            comment_pointer: None,
        }
    }

    pub fn instance_profiles() -> Collection {
        Collection {
            kind: "instance_profile",
            list_path: "/api/2.0/instance-profiles/list".into(),
            items_key: Some("instance_profiles"),
            name_pointer: "/instance_profile_arn",
            id_pointer: "/instance_profile_arn",
            create_path: "/api/2.0/instance-profiles/add".into(),
            wrap_key: None,
            item_path: String::new(),
            update: None,
            delete: DeleteOp::PostId {
                path: "/api/2.0/instance-profiles/remove",
                id_key: "instance_profile_arn",
            },
            comment_pointer: None,
        }
    }

    pub fn cluster_policies() -> Collection {
        Collection {
            kind: "cluster_policy",
            list_path: "/api/2.0/policies/clusters/list".into(),
            items_key: Some("policies"),
            name_pointer: "/name",
            id_pointer: "/policy_id",
            create_path: "/api/2.0/policies/clusters/create".into(),
            wrap_key: None,
            item_path: String::new(),
            update: Some(UpdateOp::PostWithId {
                path: "/api/2.0/policies/clusters/edit",
                id_key: "policy_id",
            }),
            delete: DeleteOp::PostId {
                path: "/api/2.0/policies/clusters/delete",
                id_key: "policy_id",
            },
            comment_pointer: None,
        }
    }

    pub fn instance_pools() -> Collection {
        Collection {
            kind: "instance_pool",
            list_path: "/api/2.0/instance-pools/list".into(),
            items_key: Some("instance_pools"),
            name_pointer: "/instance_pool_name",
            id_pointer: "/instance_pool_id",
            create_path: "/api/2.0/instance-pools/create".into(),
            wrap_key: None,
            item_path: String::new(),
            update: Some(UpdateOp::PostWithId {
                path: "/api/2.0/instance-pools/edit",
                id_key: "instance_pool_id",
            }),
            delete: DeleteOp::PostId {
                path: "/api/2.0/instance-pools/delete",
                id_key: "instance_pool_id",
            },
            comment_pointer: None,
        }
    }

    pub fn clusters() -> Collection {
        Collection {
            kind: "cluster",
            list_path: "/api/2.1/clusters/list".into(),
            items_key: Some("clusters"),
            name_pointer: "/cluster_name",
            id_pointer: "/cluster_id",
            create_path: "/api/2.1/clusters/create".into(),
            wrap_key: None,
            item_path: String::new(),
            update: Some(UpdateOp::PostWithId {
                path: "/api/2.1/clusters/edit",
                id_key: "cluster_id",
            }),
            delete: DeleteOp::PostId {
                path: "/api/2.1/clusters/permanent-delete",
                id_key: "cluster_id",
            },
            comment_pointer: None,
        }
    }

    fn unity(
        kind: &'static str,
        rest: &str,
        list_query: &str,
        items_key: &'static str,
        id_pointer: &'static str,
    ) -> Collection {
        Collection {
            kind,
            list_path: format!("/api/2.1/unity-catalog/{rest}{list_query}"),
            items_key: Some(items_key),
            name_pointer: "/name",
            id_pointer,
            create_path: format!("/api/2.1/unity-catalog/{rest}"),
            wrap_key: None,
            item_path: format!("/api/2.1/unity-catalog/{rest}/{{id}}"),
            update: Some(UpdateOp::Patch),
            delete: DeleteOp::Delete {
                query: "?force=true",
            },
            comment_pointer: Some("/comment"),
        }
    }

    pub fn storage_credentials() -> Collection {
        unity(
            "storage_credential",
            "storage-credentials",
            "",
            "storage_credentials",
            "/name",
        )
    }

    pub fn external_locations() -> Collection {
        unity(
            "external_location",
            "external-locations",
            "",
            "external_locations",
            "/name",
        )
    }

    pub fn catalogs() -> Collection {
        unity("catalog", "catalogs", "", "catalogs", "/name")
    }

    pub fn schemas(catalog: &str) -> Collection {
        unity(
            "schema",
            "schemas",
            &format!("?catalog_name={}", url_encode(catalog)),
            "schemas",
            "/full_name",
        )
    }

    pub fn volumes(catalog: &str, schema: &str) -> Collection {
        Collection {
            delete: DeleteOp::Delete { query: "" },
            ..unity(
                "volume",
                "volumes",
                &format!(
                    "?catalog_name={}&schema_name={}",
                    url_encode(catalog),
                    url_encode(schema)
                ),
                "volumes",
                "/full_name",
            )
        }
    }

    pub fn global_init_scripts() -> Collection {
        Collection {
            kind: "global_init_script",
            list_path: "/api/2.0/global-init-scripts".into(),
            items_key: Some("scripts"),
            name_pointer: "/name",
            id_pointer: "/script_id",
            create_path: "/api/2.0/global-init-scripts".into(),
            wrap_key: None,
            item_path: "/api/2.0/global-init-scripts/{id}".into(),
            update: Some(UpdateOp::Patch),
            delete: DeleteOp::Delete { query: "" },
            comment_pointer: None,
        }
    }

    pub fn jobs(name: &str) -> Collection {
        Collection {
            kind: "job",
            list_path: format!("/api/2.1/jobs/list?name={}", url_encode(name)),
            items_key: Some("jobs"),
            name_pointer: "/settings/name",
            id_pointer: "/job_id",
            create_path: "/api/2.1/jobs/create".into(),
            wrap_key: None,
            item_path: String::new(),
            update: None,
            delete: DeleteOp::PostId {
                path: "/api/2.1/jobs/delete",
                id_key: "job_id",
            },
            comment_pointer: None,
        }
    }

    pub fn repos(path: &str) -> Collection {
        Collection {
            kind: "repo",
            list_path: format!("/api/2.0/repos?path_prefix={}", url_encode(path)),
            items_key: Some("repos"),
            name_pointer: "/path",
            id_pointer: "/id",
            create_path: "/api/2.0/repos".into(),
            wrap_key: None,
            item_path: "/api/2.0/repos/{id}".into(),
            update: None,
            delete: DeleteOp::Delete { query: "" },
            comment_pointer: None,
        }
    }
}

/// Percent-encode a query value (RFC 3986 unreserved characters pass).
pub fn url_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collection() -> Collection {
        workspace::clusters()
    }

    #[test]
    fn selects_by_name_pointer() {
        let items = vec![
            json!({"cluster_name": "a", "cluster_id": "1"}),
            json!({"cluster_name": "b", "cluster_id": "2"}),
            json!({"cluster_id": "3"}),
        ];
        let found = collection().select(&items, "b");
        assert_eq!(found, vec![&items[1]]);
        let jobs = workspace::jobs("x");
        let items = vec![json!({"job_id": 7, "settings": {"name": "x"}})];
        let found = jobs.select(&items, "x");
        assert_eq!(
            found[0]
                .pointer(jobs.id_pointer)
                .and_then(id_string)
                .as_deref(),
            Some("7")
        );
    }

    #[test]
    fn ownership_follows_the_comment_mark() {
        let catalogs = workspace::catalogs();
        let ours = catalogs
            .observed(
                &json!({"name": "dev", "comment": "managed by lakeops (dev)"}),
                false,
            )
            .unwrap();
        assert!(ours.owned);
        let theirs = catalogs
            .observed(&json!({"name": "dev", "comment": "made by hand"}), false)
            .unwrap();
        assert!(!theirs.owned);
        let adopted = catalogs
            .observed(
                &json!({"name": "dev", "comment": "managed by lakeops"}),
                true,
            )
            .unwrap();
        assert!(!adopted.owned);
        assert!(collection()
            .observed(&json!({"cluster_name": "x"}), false)
            .is_err());
    }

    #[test]
    fn patch_bodies_hold_only_changed_top_level_fields() {
        let compare = json!({"aws_iam_role": {"role_arn": "r"}, "comment": "c", "url": "s3://x"});
        let body = changed_top_level(&compare, &["aws_iam_role.role_arn".into(), "url".into()]);
        assert_eq!(
            body,
            json!({"aws_iam_role": {"role_arn": "r"}, "url": "s3://x"})
        );
    }

    #[test]
    fn encodes_scim_filters() {
        assert_eq!(
            url_encode("displayName eq \"a-b\""),
            "displayName%20eq%20%22a-b%22"
        );
        assert_eq!(id_value("123"), json!(123));
        assert_eq!(id_value("abc-1"), json!("abc-1"));
    }
}
