//! The AWS side: Lake Formation, Glue, STS and S3 behind one small trait, so
//! the handler's flow can also run against an in-memory fake in unit tests.

use crate::model::*;
use crate::plan::{GrantChange, SettingsChange};
use aws_sdk_lakeformation::types as lf;
use lakeops_shared::aws::{aws_error, error_code};
use lakeops_shared::{Error, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

/// Grant or revoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchOp {
    Grant,
    Revoke,
}

/// One entry of a batch call that Lake Formation refused.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EntryFailure {
    /// Position of the entry in the batch that was sent.
    pub index: usize,
    pub code: String,
    pub message: String,
}

/// The calls this function makes. Each method is one API call (or one paged
/// listing); retries and ordering live in the handler.
pub trait Lake: Send + Sync {
    /// The ARN of the identity the function runs as (STS GetCallerIdentity).
    fn caller_arn(&self) -> impl Future<Output = Result<String>> + Send;
    /// Read a policy document from `s3://bucket/key`.
    fn read_policy(&self, uri: &str) -> impl Future<Output = Result<String>> + Send;
    /// The named databases that exist, with their tables and columns.
    fn read_catalog(
        &self,
        databases: &BTreeSet<String>,
    ) -> impl Future<Output = Result<CatalogSnapshot>> + Send;
    fn read_settings(&self) -> impl Future<Output = Result<SettingsView>> + Send;
    /// Read-modify-write of the data lake settings: only the fields in
    /// `change` are replaced, every other field is written back as read.
    fn write_settings(&self, change: &SettingsChange) -> impl Future<Output = Result<()>> + Send;
    /// Every grant of the account's catalog (ListPermissions, all pages).
    fn list_grants(&self) -> impl Future<Output = Result<GrantMap>> + Send;
    fn list_lf_tags(
        &self,
    ) -> impl Future<Output = Result<BTreeMap<String, BTreeSet<String>>>> + Send;
    fn resource_tags(
        &self,
        target: &TagTarget,
    ) -> impl Future<Output = Result<TagAssignment>> + Send;
    fn registered_locations(&self) -> impl Future<Output = Result<BTreeSet<String>>> + Send;
    fn register_location(
        &self,
        arn: &str,
        role_arn: Option<&str>,
    ) -> impl Future<Output = Result<()>> + Send;
    fn create_lf_tag(
        &self,
        key: &str,
        values: &BTreeSet<String>,
    ) -> impl Future<Output = Result<()>> + Send;
    fn update_lf_tag(
        &self,
        key: &str,
        add: &BTreeSet<String>,
        remove: &BTreeSet<String>,
    ) -> impl Future<Output = Result<()>> + Send;
    fn add_resource_tags(
        &self,
        target: &TagTarget,
        tags: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<()>> + Send;
    fn remove_resource_tags(
        &self,
        target: &TagTarget,
        tags: &BTreeMap<String, BTreeSet<String>>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// One BatchGrantPermissions or BatchRevokePermissions call (at most 20
    /// entries); the entries Lake Formation reports in `Failures`.
    fn batch(
        &self,
        op: BatchOp,
        entries: &[GrantChange],
    ) -> impl Future<Output = Result<Vec<EntryFailure>>> + Send;
}

/// The real thing: SDK clients built once at init.
#[derive(Clone)]
pub struct AwsLake {
    pub lakeformation: aws_sdk_lakeformation::Client,
    pub glue: aws_sdk_glue::Client,
    pub sts: aws_sdk_sts::Client,
    pub s3: aws_sdk_s3::Client,
    /// The function's own identity: asked once per process (it cannot change while
    /// the process lives), not once per run and again for the account id.
    caller: tokio::sync::OnceCell<String>,
}

impl AwsLake {
    pub fn new(config: &aws_types::SdkConfig) -> Self {
        Self {
            lakeformation: lakeops_shared::aws::lakeformation(config),
            glue: lakeops_shared::aws::glue(config),
            sts: lakeops_shared::aws::sts(config),
            s3: lakeops_shared::aws::s3(config),
            caller: tokio::sync::OnceCell::new(),
        }
    }
}

// ---------------------------------------------------------------------------
// Conversions between the normal form and the SDK's types.
// ---------------------------------------------------------------------------

fn principal(identifier: &str) -> lf::DataLakePrincipal {
    lf::DataLakePrincipal::builder()
        .data_lake_principal_identifier(identifier)
        .build()
}

fn principal_ids(list: &Option<Vec<lf::DataLakePrincipal>>) -> BTreeSet<Principal> {
    list.iter()
        .flatten()
        .filter_map(|p| p.data_lake_principal_identifier.clone())
        .collect()
}

fn default_principals(list: &Option<Vec<lf::PrincipalPermissions>>) -> BTreeSet<Principal> {
    list.iter()
        .flatten()
        .filter(|p| !p.permissions.as_deref().unwrap_or_default().is_empty())
        .filter_map(|p| {
            p.principal
                .as_ref()
                .and_then(|p| p.data_lake_principal_identifier.clone())
        })
        .collect()
}

pub fn settings_view(settings: &lf::DataLakeSettings) -> SettingsView {
    SettingsView {
        admins: principal_ids(&settings.data_lake_admins),
        read_only_admins: principal_ids(&settings.read_only_admins),
        create_database_defaults: default_principals(&settings.create_database_default_permissions),
        create_table_defaults: default_principals(&settings.create_table_default_permissions),
    }
}

fn iam_allowed_all() -> lf::PrincipalPermissions {
    lf::PrincipalPermissions::builder()
        .principal(principal(IAM_ALLOWED_PRINCIPALS))
        .permissions(lf::Permission::All)
        .build()
}

/// Apply a change to settings as read, leaving every field it does not name
/// (trusted owners, external filtering, parameters, other default
/// principals...) exactly as it was: `PutDataLakeSettings` replaces the whole
/// object, so anything not written back would be lost.
pub fn apply_settings_change(settings: &mut lf::DataLakeSettings, change: &SettingsChange) {
    if let Some(admins) = &change.admins {
        settings.data_lake_admins = Some(admins.iter().map(|a| principal(a)).collect());
    }
    if let Some(read_only) = &change.read_only_admins {
        settings.read_only_admins = Some(read_only.iter().map(|a| principal(a)).collect());
    }
    if let Some(lf_only) = change.lake_formation_only {
        for defaults in [
            &mut settings.create_database_default_permissions,
            &mut settings.create_table_default_permissions,
        ] {
            let mut kept: Vec<lf::PrincipalPermissions> = defaults
                .take()
                .unwrap_or_default()
                .into_iter()
                .filter(|p| {
                    p.principal
                        .as_ref()
                        .and_then(|p| p.data_lake_principal_identifier.as_deref())
                        != Some(IAM_ALLOWED_PRINCIPALS)
                })
                .collect();
            if !lf_only {
                kept.push(iam_allowed_all());
            }
            *defaults = Some(kept);
        }
    }
}

fn perm_names(list: &Option<Vec<lf::Permission>>) -> BTreeSet<String> {
    list.iter()
        .flatten()
        .map(|p| p.as_str().to_string())
        .collect()
}

/// The normal form of a listed resource; `None` for resources of another
/// catalog or of kinds this function does not manage (data cell filters...).
pub fn resource_from_sdk(resource: &lf::Resource, account: &str) -> Option<Resource> {
    let ours = |catalog: &Option<String>| catalog.as_deref().is_none_or(|c| c == account);
    if let Some(table) = &resource.table {
        if !ours(&table.catalog_id) {
            return None;
        }
        return Some(match (&table.table_wildcard, &table.name) {
            (Some(_), _) => Resource::AllTables {
                database: table.database_name.clone(),
            },
            (None, Some(name)) => Resource::Table {
                database: table.database_name.clone(),
                name: name.clone(),
            },
            (None, None) => return None,
        });
    }
    if let Some(twc) = &resource.table_with_columns {
        if !ours(&twc.catalog_id) {
            return None;
        }
        let columns = match (&twc.column_names, &twc.column_wildcard) {
            (_, Some(wildcard)) => {
                let excluded: BTreeSet<String> = wildcard
                    .excluded_column_names
                    .iter()
                    .flatten()
                    .cloned()
                    .collect();
                if excluded.is_empty() {
                    // All columns of a table is the table: Lake Formation lists
                    // table-level SELECT this way.
                    return Some(Resource::Table {
                        database: twc.database_name.clone(),
                        name: twc.name.clone(),
                    });
                }
                Columns::AllExcept(excluded)
            }
            (Some(names), None) => Columns::Only(names.iter().cloned().collect()),
            (None, None) => return None,
        };
        return Some(Resource::Columns {
            database: twc.database_name.clone(),
            table: twc.name.clone(),
            columns,
        });
    }
    if let Some(database) = &resource.database {
        return ours(&database.catalog_id).then(|| Resource::Database {
            name: database.name.clone(),
        });
    }
    if let Some(location) = &resource.data_location {
        return ours(&location.catalog_id).then(|| Resource::DataLocation {
            arn: location.resource_arn.trim_end_matches('/').to_string(),
        });
    }
    if let Some(tag) = &resource.lf_tag {
        return ours(&tag.catalog_id).then(|| Resource::LfTag {
            key: tag.tag_key.clone(),
            values: tag.tag_values.iter().cloned().collect(),
        });
    }
    if let Some(policy) = &resource.lf_tag_policy {
        if !ours(&policy.catalog_id) || policy.expression.is_empty() {
            return None;
        }
        let target = match policy.resource_type {
            lf::ResourceType::Database => TagPolicyTarget::Database,
            lf::ResourceType::Table => TagPolicyTarget::Table,
            _ => return None,
        };
        let expression = policy
            .expression
            .iter()
            .map(|t| (t.tag_key.clone(), t.tag_values.iter().cloned().collect()))
            .collect();
        return Some(Resource::LfTagPolicy { target, expression });
    }
    if let Some(catalog) = &resource.catalog {
        return ours(&catalog.id).then_some(Resource::Catalog);
    }
    None
}

fn built<T>(
    what: &str,
    result: std::result::Result<T, aws_smithy_types::error::operation::BuildError>,
) -> Result<T> {
    result.map_err(|e| Error::terminal(format!("building {what}: {e}")))
}

/// The SDK form of a resource; the catalog id is left out, which means the
/// caller's own catalog.
pub fn resource_to_sdk(resource: &Resource) -> Result<lf::Resource> {
    let builder = lf::Resource::builder();
    Ok(match resource {
        Resource::Catalog => builder
            .catalog(lf::CatalogResource::builder().build())
            .build(),
        Resource::Database { name } => builder
            .database(built(
                "database resource",
                lf::DatabaseResource::builder().name(name).build(),
            )?)
            .build(),
        Resource::Table { database, name } => builder
            .table(built(
                "table resource",
                lf::TableResource::builder()
                    .database_name(database)
                    .name(name)
                    .build(),
            )?)
            .build(),
        Resource::AllTables { database } => builder
            .table(built(
                "table resource",
                lf::TableResource::builder()
                    .database_name(database)
                    .table_wildcard(lf::TableWildcard::builder().build())
                    .build(),
            )?)
            .build(),
        Resource::Columns {
            database,
            table,
            columns,
        } => {
            let twc = lf::TableWithColumnsResource::builder()
                .database_name(database)
                .name(table);
            let twc = match columns {
                Columns::Only(names) => twc.set_column_names(Some(names.iter().cloned().collect())),
                Columns::AllExcept(excluded) => twc.column_wildcard(
                    lf::ColumnWildcard::builder()
                        .set_excluded_column_names(Some(excluded.iter().cloned().collect()))
                        .build(),
                ),
            };
            builder
                .table_with_columns(built("columns resource", twc.build())?)
                .build()
        }
        Resource::DataLocation { arn } => builder
            .data_location(built(
                "location resource",
                lf::DataLocationResource::builder()
                    .resource_arn(arn)
                    .build(),
            )?)
            .build(),
        Resource::LfTag { key, values } => builder
            .lf_tag(built(
                "LF-tag resource",
                lf::LfTagKeyResource::builder()
                    .tag_key(key)
                    .set_tag_values(Some(values.iter().cloned().collect()))
                    .build(),
            )?)
            .build(),
        Resource::LfTagPolicy { target, expression } => {
            let mut terms = Vec::new();
            for (key, values) in expression {
                terms.push(built(
                    "LF-tag",
                    lf::LfTag::builder()
                        .tag_key(key)
                        .set_tag_values(Some(values.iter().cloned().collect()))
                        .build(),
                )?);
            }
            let resource_type = match target {
                TagPolicyTarget::Database => lf::ResourceType::Database,
                TagPolicyTarget::Table => lf::ResourceType::Table,
            };
            builder
                .lf_tag_policy(built(
                    "LF-tag policy resource",
                    lf::LfTagPolicyResource::builder()
                        .resource_type(resource_type)
                        .set_expression(Some(terms))
                        .build(),
                )?)
                .build()
        }
    })
}

fn tag_resource(target: &TagTarget) -> Result<lf::Resource> {
    resource_to_sdk(&match target {
        TagTarget::Database { name } => Resource::Database { name: name.clone() },
        TagTarget::Table { database, name } => Resource::Table {
            database: database.clone(),
            name: name.clone(),
        },
    })
}

fn tag_pairs(pairs: &Option<Vec<lf::LfTagPair>>) -> TagAssignment {
    let mut assignment = TagAssignment::new();
    for pair in pairs.iter().flatten() {
        assignment
            .entry(pair.tag_key.clone())
            .or_default()
            .extend(pair.tag_values.iter().cloned());
    }
    assignment
}

fn lf_tag_pair(key: &str, values: impl IntoIterator<Item = String>) -> Result<lf::LfTagPair> {
    built(
        "LF-tag pair",
        lf::LfTagPair::builder()
            .tag_key(key)
            .set_tag_values(Some(values.into_iter().collect()))
            .build(),
    )
}

// The one parser of s3:// URIs (a valid bucket name and a key).
pub use lakeops_shared::s3_uri::parse_s3_uri;

impl AwsLake {
    async fn account(&self) -> Result<String> {
        let arn = self.caller_arn().await?;
        Ok(arn.split(':').nth(4).unwrap_or_default().to_string())
    }
}

impl Lake for AwsLake {
    async fn caller_arn(&self) -> Result<String> {
        self.caller
            .get_or_try_init(|| async {
                let identity = self
                    .sts
                    .get_caller_identity()
                    .send()
                    .await
                    .map_err(|e| aws_error("sts:GetCallerIdentity", e))?;
                identity
                    .arn
                    .ok_or_else(|| Error::terminal("sts:GetCallerIdentity returned no ARN"))
            })
            .await
            .cloned()
    }

    async fn read_policy(&self, uri: &str) -> Result<String> {
        let (bucket, key) = parse_s3_uri(uri).ok_or_else(|| {
            Error::invalid_input(format!("policy_uri: '{uri}' is not an s3://bucket/key URI"))
        })?;
        let object = self
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| aws_error(format!("s3:GetObject {uri}"), e))?;
        let bytes = object
            .body
            .collect()
            .await
            .map_err(|e| Error::retryable(format!("reading {uri}: {e}")))?
            .into_bytes();
        String::from_utf8(bytes.to_vec())
            .map_err(|_| Error::invalid_input(format!("policy_uri: {uri} is not UTF-8 text")))
    }

    async fn read_catalog(&self, databases: &BTreeSet<String>) -> Result<CatalogSnapshot> {
        let mut snapshot = CatalogSnapshot::default();
        for database in databases {
            match self.glue.get_database().name(database).send().await {
                Ok(_) => {}
                Err(e) if error_code(&e) == Some("EntityNotFoundException") => continue,
                Err(e) => return Err(aws_error(format!("glue:GetDatabase {database}"), e)),
            }
            let tables = snapshot.databases.entry(database.clone()).or_default();
            let mut pages = self
                .glue
                .get_tables()
                .database_name(database)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| aws_error(format!("glue:GetTables {database}"), e))?;
                for table in page.table_list.unwrap_or_default() {
                    let mut columns = BTreeSet::new();
                    if let Some(sd) = &table.storage_descriptor {
                        columns.extend(sd.columns.iter().flatten().map(|c| c.name.clone()));
                    }
                    columns.extend(
                        table
                            .partition_keys
                            .iter()
                            .flatten()
                            .map(|c| c.name.clone()),
                    );
                    tables.insert(table.name, columns);
                }
            }
        }
        Ok(snapshot)
    }

    async fn read_settings(&self) -> Result<SettingsView> {
        let output = self
            .lakeformation
            .get_data_lake_settings()
            .send()
            .await
            .map_err(|e| aws_error("lakeformation:GetDataLakeSettings", e))?;
        Ok(output
            .data_lake_settings
            .as_ref()
            .map(settings_view)
            .unwrap_or_default())
    }

    async fn write_settings(&self, change: &SettingsChange) -> Result<()> {
        // Read right before writing, so the window for a concurrent change to
        // an unmanaged field is as short as it can be.
        let output = self
            .lakeformation
            .get_data_lake_settings()
            .send()
            .await
            .map_err(|e| aws_error("lakeformation:GetDataLakeSettings", e))?;
        let mut settings = output
            .data_lake_settings
            .unwrap_or_else(|| lf::DataLakeSettings::builder().build());
        // IAM cannot scope PutDataLakeSettings: never write an admin list
        // without this function's own identity.
        crate::plan::check_admins_keep_caller(change, &self.caller_arn().await?)?;
        apply_settings_change(&mut settings, change);
        self.lakeformation
            .put_data_lake_settings()
            .data_lake_settings(settings)
            .send()
            .await
            .map_err(|e| aws_error("lakeformation:PutDataLakeSettings", e))?;
        Ok(())
    }

    async fn list_grants(&self) -> Result<GrantMap> {
        let account = self.account().await?;
        let mut grants = GrantMap::new();
        let mut pages = self
            .lakeformation
            .list_permissions()
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| aws_error("lakeformation:ListPermissions", e))?;
            for entry in page.principal_resource_permissions.unwrap_or_default() {
                let Some(principal) = entry
                    .principal
                    .as_ref()
                    .and_then(|p| p.data_lake_principal_identifier.clone())
                else {
                    continue;
                };
                let Some(resource) = entry
                    .resource
                    .as_ref()
                    .and_then(|r| resource_from_sdk(r, &account))
                else {
                    continue;
                };
                let permissions = Permissions {
                    permissions: perm_names(&entry.permissions),
                    grantable: perm_names(&entry.permissions_with_grant_option),
                };
                grants
                    .entry((principal, resource))
                    .or_default()
                    .merge(&permissions);
            }
        }
        Ok(grants)
    }

    async fn list_lf_tags(&self) -> Result<BTreeMap<String, BTreeSet<String>>> {
        let mut tags = BTreeMap::new();
        let mut pages = self.lakeformation.list_lf_tags().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| aws_error("lakeformation:ListLFTags", e))?;
            for pair in page.lf_tags.unwrap_or_default() {
                tags.insert(pair.tag_key, pair.tag_values.into_iter().collect());
            }
        }
        Ok(tags)
    }

    async fn resource_tags(&self, target: &TagTarget) -> Result<TagAssignment> {
        let output = self
            .lakeformation
            .get_resource_lf_tags()
            .resource(tag_resource(target)?)
            .show_assigned_lf_tags(true)
            .send()
            .await
            .map_err(|e| aws_error(format!("lakeformation:GetResourceLFTags {target}"), e))?;
        Ok(match target {
            TagTarget::Database { .. } => tag_pairs(&output.lf_tag_on_database),
            TagTarget::Table { .. } => tag_pairs(&output.lf_tags_on_table),
        })
    }

    async fn registered_locations(&self) -> Result<BTreeSet<String>> {
        let mut locations = BTreeSet::new();
        let mut pages = self.lakeformation.list_resources().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| aws_error("lakeformation:ListResources", e))?;
            for info in page.resource_info_list.unwrap_or_default() {
                if let Some(arn) = info.resource_arn {
                    locations.insert(arn.trim_end_matches('/').to_string());
                }
            }
        }
        Ok(locations)
    }

    async fn register_location(&self, arn: &str, role_arn: Option<&str>) -> Result<()> {
        let request = self.lakeformation.register_resource().resource_arn(arn);
        let request = match role_arn {
            Some(role) => request.role_arn(role),
            None => request.use_service_linked_role(true),
        };
        match request.send().await {
            Ok(_) => Ok(()),
            // Registered by someone else since we listed: the goal is reached.
            Err(e) if error_code(&e) == Some("AlreadyExistsException") => Ok(()),
            Err(e) => Err(aws_error(
                format!("lakeformation:RegisterResource {arn}"),
                e,
            )),
        }
    }

    async fn create_lf_tag(&self, key: &str, values: &BTreeSet<String>) -> Result<()> {
        self.lakeformation
            .create_lf_tag()
            .tag_key(key)
            .set_tag_values(Some(values.iter().cloned().collect()))
            .send()
            .await
            .map_err(|e| aws_error(format!("lakeformation:CreateLFTag {key}"), e))?;
        Ok(())
    }

    async fn update_lf_tag(
        &self,
        key: &str,
        add: &BTreeSet<String>,
        remove: &BTreeSet<String>,
    ) -> Result<()> {
        let request = self.lakeformation.update_lf_tag().tag_key(key);
        let request = if add.is_empty() {
            request
        } else {
            request.set_tag_values_to_add(Some(add.iter().cloned().collect()))
        };
        let request = if remove.is_empty() {
            request
        } else {
            request.set_tag_values_to_delete(Some(remove.iter().cloned().collect()))
        };
        request
            .send()
            .await
            .map_err(|e| aws_error(format!("lakeformation:UpdateLFTag {key}"), e))?;
        Ok(())
    }

    async fn add_resource_tags(
        &self,
        target: &TagTarget,
        tags: &BTreeMap<String, String>,
    ) -> Result<()> {
        let mut pairs = Vec::new();
        for (key, value) in tags {
            pairs.push(lf_tag_pair(key, [value.clone()])?);
        }
        let output = self
            .lakeformation
            .add_lf_tags_to_resource()
            .resource(tag_resource(target)?)
            .set_lf_tags(Some(pairs))
            .send()
            .await
            .map_err(|e| aws_error(format!("lakeformation:AddLFTagsToResource {target}"), e))?;
        let failures: Vec<String> = output
            .failures
            .unwrap_or_default()
            .into_iter()
            .map(|f| {
                let key = f.lf_tag.map(|t| t.tag_key).unwrap_or_default();
                let error = f
                    .error
                    .unwrap_or_else(|| lf::ErrorDetail::builder().build());
                format!(
                    "{key}: {}: {}",
                    error.error_code.unwrap_or_default(),
                    error.error_message.unwrap_or_default()
                )
            })
            .collect();
        if failures.is_empty() {
            Ok(())
        } else {
            Err(Error::terminal(format!(
                "lakeformation:AddLFTagsToResource {target}: {}",
                failures.join("; ")
            )))
        }
    }

    async fn remove_resource_tags(
        &self,
        target: &TagTarget,
        tags: &BTreeMap<String, BTreeSet<String>>,
    ) -> Result<()> {
        let mut pairs = Vec::new();
        for (key, values) in tags {
            pairs.push(lf_tag_pair(key, values.iter().cloned())?);
        }
        self.lakeformation
            .remove_lf_tags_from_resource()
            .resource(tag_resource(target)?)
            .set_lf_tags(Some(pairs))
            .send()
            .await
            .map_err(|e| {
                aws_error(
                    format!("lakeformation:RemoveLFTagsFromResource {target}"),
                    e,
                )
            })?;
        Ok(())
    }

    async fn batch(&self, op: BatchOp, entries: &[GrantChange]) -> Result<Vec<EntryFailure>> {
        let mut request_entries = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            let permissions = |set: &BTreeSet<String>| {
                Some(
                    set.iter()
                        .map(|p| lf::Permission::from(p.as_str()))
                        .collect(),
                )
            };
            request_entries.push(built(
                "batch entry",
                lf::BatchPermissionsRequestEntry::builder()
                    .id(index.to_string())
                    .principal(principal(&entry.principal))
                    .resource(resource_to_sdk(&entry.resource)?)
                    .set_permissions(permissions(&entry.permissions))
                    .set_permissions_with_grant_option(permissions(&entry.grantable))
                    .build(),
            )?);
        }
        let failures = match op {
            BatchOp::Grant => {
                self.lakeformation
                    .batch_grant_permissions()
                    .set_entries(Some(request_entries))
                    .send()
                    .await
                    .map_err(|e| aws_error("lakeformation:BatchGrantPermissions", e))?
                    .failures
            }
            BatchOp::Revoke => {
                self.lakeformation
                    .batch_revoke_permissions()
                    .set_entries(Some(request_entries))
                    .send()
                    .await
                    .map_err(|e| aws_error("lakeformation:BatchRevokePermissions", e))?
                    .failures
            }
        };
        Ok(failures
            .unwrap_or_default()
            .into_iter()
            .map(|failure| {
                let index = failure
                    .request_entry
                    .as_ref()
                    .and_then(|e| e.id.parse::<usize>().ok())
                    .unwrap_or(usize::MAX);
                let error = failure
                    .error
                    .unwrap_or_else(|| lf::ErrorDetail::builder().build());
                EntryFailure {
                    index,
                    code: error.error_code.unwrap_or_else(|| "Unknown".to_string()),
                    message: error.error_message.unwrap_or_default(),
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_write_back_keeps_unmanaged_fields() {
        let mut settings = lf::DataLakeSettings::builder()
            .data_lake_admins(principal("arn:aws:iam::123456789012:role/old-admin"))
            .trusted_resource_owners("210987654321")
            .allow_external_data_filtering(true)
            .parameters("CROSS_ACCOUNT_VERSION", "4")
            .create_database_default_permissions(iam_allowed_all())
            .create_table_default_permissions(iam_allowed_all())
            .build();
        let change = SettingsChange {
            admins: Some(BTreeSet::from([
                "arn:aws:iam::123456789012:role/admin".to_string()
            ])),
            read_only_admins: None,
            lake_formation_only: Some(true),
        };
        apply_settings_change(&mut settings, &change);
        assert_eq!(
            settings.trusted_resource_owners,
            Some(vec!["210987654321".to_string()])
        );
        assert_eq!(settings.allow_external_data_filtering, Some(true));
        assert_eq!(
            settings.parameters.as_ref().unwrap()["CROSS_ACCOUNT_VERSION"],
            "4"
        );
        assert_eq!(settings.create_database_default_permissions, Some(vec![]));
        assert_eq!(settings.create_table_default_permissions, Some(vec![]));
        assert_eq!(settings.read_only_admins, None, "unmanaged: not written");
        let view = settings_view(&settings);
        assert_eq!(
            view.admins,
            BTreeSet::from(["arn:aws:iam::123456789012:role/admin".to_string()])
        );

        apply_settings_change(
            &mut settings,
            &SettingsChange {
                lake_formation_only: Some(false),
                ..Default::default()
            },
        );
        assert!(settings_view(&settings)
            .create_table_defaults
            .contains(IAM_ALLOWED_PRINCIPALS));
        assert!(settings_view(&settings)
            .create_database_defaults
            .contains(IAM_ALLOWED_PRINCIPALS));
    }

    #[test]
    fn resources_round_trip_through_the_sdk_form() {
        let resources = [
            Resource::Catalog,
            Resource::Database { name: "raw".into() },
            Resource::Table {
                database: "raw".into(),
                name: "events".into(),
            },
            Resource::AllTables {
                database: "raw".into(),
            },
            Resource::Columns {
                database: "curated".into(),
                table: "orders".into(),
                columns: Columns::Only(BTreeSet::from(["id".to_string(), "total".to_string()])),
            },
            Resource::Columns {
                database: "curated".into(),
                table: "orders".into(),
                columns: Columns::AllExcept(BTreeSet::from(["card".to_string()])),
            },
            Resource::DataLocation {
                arn: "arn:aws:s3:::lake-raw/events".into(),
            },
            Resource::LfTag {
                key: "tier".into(),
                values: BTreeSet::from(["raw".to_string()]),
            },
            Resource::LfTagPolicy {
                target: TagPolicyTarget::Table,
                expression: BTreeMap::from([(
                    "tier".to_string(),
                    BTreeSet::from(["curated".to_string()]),
                )]),
            },
        ];
        for resource in resources {
            let sdk = resource_to_sdk(&resource).unwrap();
            assert_eq!(
                resource_from_sdk(&sdk, "123456789012"),
                Some(resource.clone()),
                "{resource}"
            );
        }
    }

    #[test]
    fn listed_forms_are_normalised() {
        let all_columns = lf::Resource::builder()
            .table_with_columns(
                lf::TableWithColumnsResource::builder()
                    .catalog_id("123456789012")
                    .database_name("curated")
                    .name("orders")
                    .column_wildcard(lf::ColumnWildcard::builder().build())
                    .build()
                    .unwrap(),
            )
            .build();
        assert_eq!(
            resource_from_sdk(&all_columns, "123456789012"),
            Some(Resource::Table {
                database: "curated".into(),
                name: "orders".into()
            })
        );
        let foreign = lf::Resource::builder()
            .database(
                lf::DatabaseResource::builder()
                    .catalog_id("999999999999")
                    .name("shared")
                    .build()
                    .unwrap(),
            )
            .build();
        assert_eq!(
            resource_from_sdk(&foreign, "123456789012"),
            None,
            "other catalogs are not ours"
        );
        let location = lf::Resource::builder()
            .data_location(
                lf::DataLocationResource::builder()
                    .resource_arn("arn:aws:s3:::b/p/")
                    .build()
                    .unwrap(),
            )
            .build();
        assert_eq!(
            resource_from_sdk(&location, "1"),
            Some(Resource::DataLocation {
                arn: "arn:aws:s3:::b/p".into()
            })
        );
    }
}
