//! Reading one side's inventory through the Unity Catalog REST API: paged lists of
//! catalogs' schemas, tables, volumes and functions; grants and tags per securable
//! (many small reads, made `READ_CONCURRENCY` at a time); storage and sharing.
//!
//! Delta versions come from a table's `properties` (`delta.lastUpdateVersion`,
//! `delta.lastCommitTimestamp`), which Unity Catalog keeps for Delta tables, so a sync
//! of 1,000 unchanged tables runs no statement to find that nothing changed.

use std::collections::{BTreeMap, BTreeSet};

use futures_util::stream::{self, StreamExt};
use lakeops_shared::databricks::{DatabricksClient, DatabricksError};
use serde::Deserialize;
use serde_json::Value;

use crate::inventory::*;
use crate::mapping::FullName;

/// Reads in flight at once against one workspace.
pub const READ_CONCURRENCY: usize = 16;
const UC: &str = "/api/2.1/unity-catalog";

type Result<T> = std::result::Result<T, DatabricksError>;

/// Every item of a paged list (`next_page_token` / `page_token`).
pub async fn list_all(
    client: &DatabricksClient,
    path: &str,
    query: &[(&str, String)],
    key: &str,
) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    let paging = page_size(path);
    loop {
        let mut q: Vec<(&str, String)> = query.to_vec();
        if let Some((name, value)) = paging {
            if !q.iter().any(|(k, _)| *k == name) {
                q.push((name, value.to_string()));
            }
        }
        if let Some(t) = &token {
            q.push(("page_token", t.clone()));
        }
        let page: Value = client.get_query(path, &q).await?;
        out.extend(page[key].as_array().cloned().unwrap_or_default());
        match page["next_page_token"].as_str() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return Ok(out),
        }
    }
}

/// The page size a list asks for. Unity Catalog's lists without `max_results` return
/// everything in one answer, which Databricks documents as "not recommended" (a large
/// metastore times out); `max_results=0` pages at the server's size. The jobs list
/// pages 20 by default and at most 100 (`limit`). The tag-assignment and warehouse
/// lists have no such documented setting.
fn page_size(path: &str) -> Option<(&'static str, &'static str)> {
    if path.starts_with("/api/2.2/jobs/list") {
        Some(("limit", "100"))
    } else if path.starts_with(UC) && !path.contains("entity-tag-assignments") {
        Some(("max_results", "0"))
    } else {
        None
    }
}

fn text(v: &Value, field: &str) -> Option<String> {
    v[field].as_str().map(str::to_string)
}

fn lower(v: &Value, field: &str) -> String {
    v[field].as_str().unwrap_or_default().to_lowercase()
}

#[derive(Deserialize)]
struct Assignments {
    #[serde(default)]
    privilege_assignments: Vec<Assignment>,
}

#[derive(Deserialize)]
struct Assignment {
    principal: String,
    #[serde(default)]
    privileges: Vec<String>,
}

/// The inventory of the named catalogs (a catalog that does not exist is left out).
pub async fn inventory(
    client: &DatabricksClient,
    catalogs: &[String],
    with_tags: bool,
    with_grants: bool,
) -> Result<Inventory> {
    let mut inv = Inventory::default();
    read_storage(client, &mut inv).await?;
    read_sharing(client, &mut inv).await?;
    for name in catalogs {
        let Some(catalog) = client
            .get_optional::<Value>(&format!("{UC}/catalogs/{name}"))
            .await?
        else {
            continue;
        };
        inv.catalogs.insert(
            name.to_lowercase(),
            Catalog {
                name: name.to_lowercase(),
                comment: text(&catalog, "comment"),
                catalog_type: text(&catalog, "catalog_type").unwrap_or_default(),
                storage_root: text(&catalog, "storage_root"),
            },
        );
        if catalog["catalog_type"].as_str() == Some("DELTASHARING_CATALOG") {
            continue; // its objects are the primary's, read there
        }
        read_catalog(client, name, &mut inv).await?;
    }
    let securables = securables(&inv);
    if with_grants {
        inv.grants = read_grants(client, &securables).await?;
    }
    if with_tags {
        inv.tags = read_tags(client, &securables, &inv).await?;
    }
    Ok(inv)
}

async fn read_storage(client: &DatabricksClient, inv: &mut Inventory) -> Result<()> {
    for c in list_all(
        client,
        &format!("{UC}/storage-credentials"),
        &[],
        "storage_credentials",
    )
    .await?
    {
        let name = lower(&c, "name");
        let role_arn = c["aws_iam_role"]["role_arn"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        inv.storage_credentials
            .insert(name.clone(), StorageCredential { name, role_arn });
    }
    for l in list_all(
        client,
        &format!("{UC}/external-locations"),
        &[],
        "external_locations",
    )
    .await?
    {
        let name = lower(&l, "name");
        inv.external_locations.insert(
            name.clone(),
            ExternalLocation {
                name,
                url: text(&l, "url").unwrap_or_default(),
                credential_name: lower(&l, "credential_name"),
            },
        );
    }
    Ok(())
}

async fn read_sharing(client: &DatabricksClient, inv: &mut Inventory) -> Result<()> {
    let summary: Value = client.get(&format!("{UC}/metastore_summary")).await?;
    inv.sharing.global_metastore_id = text(&summary, "global_metastore_id").unwrap_or_default();
    for r in list_all(client, &format!("{UC}/recipients"), &[], "recipients").await? {
        if let Some(global) = r["data_recipient_global_metastore_id"].as_str() {
            inv.sharing
                .recipients
                .insert(lower(&r, "name"), global.to_string());
        }
    }
    for s in list_all(client, &format!("{UC}/shares"), &[], "shares").await? {
        let name = lower(&s, "name");
        let full: Value = client
            .get_query(
                &format!("{UC}/shares/{name}"),
                &[("include_shared_data", "true".into())],
            )
            .await?;
        let objects: BTreeSet<String> = full["objects"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|o| lower(o, "name"))
            .collect();
        let grants: Value = client
            .get(&format!("{UC}/shares/{name}/permissions"))
            .await?;
        let recipients = grants["privilege_assignments"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| {
                a["privileges"]
                    .as_array()
                    .is_some_and(|p| p.iter().any(|x| x == "SELECT"))
            })
            .map(|a| lower(a, "principal"))
            .collect();
        inv.sharing.shares.insert(name.clone(), objects);
        inv.sharing.share_grants.insert(name, recipients);
    }
    for p in list_all(client, &format!("{UC}/providers"), &[], "providers").await? {
        if let Some(global) = p["data_provider_global_metastore_id"].as_str() {
            inv.sharing
                .providers
                .insert(lower(&p, "name"), global.to_string());
        }
    }
    Ok(())
}

async fn read_catalog(client: &DatabricksClient, catalog: &str, inv: &mut Inventory) -> Result<()> {
    let schemas = list_all(
        client,
        &format!("{UC}/schemas"),
        &[("catalog_name", catalog.into())],
        "schemas",
    )
    .await?;
    let names: Vec<String> = schemas
        .iter()
        .map(|s| lower(s, "name"))
        .filter(|s| s != "information_schema")
        .collect();
    for s in &schemas {
        let full = lower(s, "full_name");
        if !full.ends_with(".information_schema") {
            inv.schemas.insert(
                full.clone(),
                Schema {
                    full_name: full,
                    comment: text(s, "comment"),
                    storage_root: text(s, "storage_root"),
                },
            );
        }
    }
    // Owned arguments (and a cloned client, which shares its pool) keep these futures
    // free of borrowed lifetimes, as a Send future of a trait method needs.
    let per_schema = stream::iter(
        names
            .into_iter()
            .map(|schema| schema_objects(client.clone(), catalog.to_string(), schema)),
    )
    .buffer_unordered(READ_CONCURRENCY)
    .collect::<Vec<_>>()
    .await;
    for result in per_schema {
        let (tables, volumes, functions) = result?;
        for t in tables.iter().filter_map(table) {
            inv.tables.insert(t.name.clone(), t);
        }
        for v in volumes.iter().filter_map(volume) {
            inv.volumes.insert(v.name.clone(), v);
        }
        for f in functions.iter().filter_map(function) {
            inv.functions.insert(f.name.clone(), f);
        }
    }
    // ListTables leaves out view_dependencies ("view_dependencies and
    // table_constraints are not returned by ListTables queries", the SDK's
    // TablesAPI.list): each view's come from a GET of it, so views wait for theirs.
    let views: Vec<String> = inv
        .tables
        .values()
        .filter(|t| t.is_view() && t.name.catalog == catalog.to_lowercase())
        .map(|t| t.name.to_string())
        .collect();
    let reads: Vec<_> = views
        .into_iter()
        .map(|v| view_dependencies(client.clone(), v))
        .collect();
    let results = stream::iter(reads)
        .buffer_unordered(READ_CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    for r in results {
        let (name, deps) = r?;
        if let Some(t) = FullName::parse(&name).and_then(|n| inv.tables.get_mut(&n)) {
            t.view_dependencies = deps;
        }
    }
    Ok(())
}

pub fn table(v: &Value) -> Option<Table> {
    let name = FullName::parse(v["full_name"].as_str()?)?;
    let table_type = serde_json::from_value(v["table_type"].clone()).ok()?;
    let property = |k: &str| {
        v["properties"][k]
            .as_str()
            .and_then(|s| s.parse::<i64>().ok())
    };
    let version = property("delta.lastUpdateVersion");
    let commit_times = match (version, property("delta.lastCommitTimestamp")) {
        (Some(version), Some(ts)) => BTreeMap::from([(version, ts)]),
        _ => BTreeMap::new(),
    };
    let dependencies = v["view_dependencies"]["dependencies"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| {
            d["table"]["table_full_name"]
                .as_str()
                .and_then(FullName::parse)
        })
        .collect();
    Some(Table {
        name,
        table_type,
        format: text(v, "data_source_format"),
        storage_location: text(v, "storage_location"),
        columns: v["columns"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| Column {
                name: lower(c, "name"),
                type_text: text(c, "type_text").unwrap_or_default(),
                comment: text(c, "comment"),
            })
            .collect(),
        comment: text(v, "comment"),
        view_definition: text(v, "view_definition"),
        view_dependencies: dependencies,
        version,
        cloned_source_version: None,
        commit_times,
        row_count: None,
    })
}

fn volume(v: &Value) -> Option<Volume> {
    let name = FullName::parse(&format!(
        "{}.{}.{}",
        v["catalog_name"].as_str()?,
        v["schema_name"].as_str()?,
        v["name"].as_str()?
    ))?;
    Some(Volume {
        name,
        volume_type: text(v, "volume_type").unwrap_or_default(),
        storage_location: text(v, "storage_location"),
        comment: text(v, "comment"),
    })
}

fn function(v: &Value) -> Option<Function> {
    let name = FullName::parse(v["full_name"].as_str()?)?;
    let parameters = v["input_params"]["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            format!(
                "{} {}",
                p["name"].as_str().unwrap_or_default(),
                p["type_text"].as_str().unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    Some(Function {
        name,
        parameters,
        returns: text(v, "full_data_type")
            .or_else(|| text(v, "data_type"))
            .unwrap_or_default(),
        body: text(v, "routine_definition").unwrap_or_default(),
        comment: text(v, "comment"),
        unsupported: if v["routine_body"].as_str() == Some("EXTERNAL") {
            Some("an external (Python) function is not re-created: its body is not SQL".into())
        } else if v["data_type"].as_str() == Some("TABLE_TYPE") {
            Some("a table function is not re-created: its RETURNS TABLE is not read".into())
        } else {
            None
        },
    })
}

/// Every securable of the inventory that can carry grants and tags, with the
/// permissions API's type and the tag API's entity type.
fn securables(inv: &Inventory) -> Vec<(Securable, &'static str)> {
    let mut out: Vec<(Securable, &'static str)> = Vec::new();
    for (name, c) in &inv.catalogs {
        if c.catalog_type != "DELTASHARING_CATALOG" {
            out.push((Securable::new("CATALOG", name), "catalogs"));
        }
    }
    out.extend(
        inv.schemas
            .keys()
            .map(|s| (Securable::new("SCHEMA", s), "schemas")),
    );
    out.extend(
        inv.tables
            .keys()
            .map(|t| (Securable::new("TABLE", t.to_string()), "tables")),
    );
    out.extend(
        inv.volumes
            .keys()
            .map(|v| (Securable::new("VOLUME", v.to_string()), "volumes")),
    );
    out.extend(
        inv.functions
            .keys()
            .map(|f| (Securable::new("FUNCTION", f.to_string()), "functions")),
    );
    out
}

async fn read_grants(
    client: &DatabricksClient,
    securables: &[(Securable, &'static str)],
) -> Result<BTreeMap<Securable, Grants>> {
    // The futures are built first: a stream holding a closure over borrowed items is
    // not Send for every lifetime, which a trait method's future must be.
    let reads: Vec<_> = securables
        .iter()
        .map(|(s, _)| grants_of(client.clone(), s.clone()))
        .collect();
    let results = stream::iter(reads)
        .buffer_unordered(READ_CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    let mut out = BTreeMap::new();
    for r in results {
        let (s, grants) = r?;
        if !grants.is_empty() {
            out.insert(s, grants);
        }
    }
    Ok(out)
}

async fn read_tags(
    client: &DatabricksClient,
    securables: &[(Securable, &'static str)],
    inv: &Inventory,
) -> Result<BTreeMap<Securable, BTreeMap<String, String>>> {
    let mut entities: Vec<(Securable, &'static str)> = securables
        .iter()
        .filter(|(s, _)| s.kind != "FUNCTION")
        .cloned()
        .collect();
    for t in inv.tables.values().filter(|t| !t.is_view()) {
        entities.extend(t.columns.iter().map(|c| {
            (
                Securable::new("COLUMN", format!("{}.{}", t.name, c.name)),
                "columns",
            )
        }));
    }
    let reads: Vec<_> = entities
        .into_iter()
        .map(|(s, entity_type)| tags_of(client.clone(), s, entity_type))
        .collect();
    let results = stream::iter(reads)
        .buffer_unordered(READ_CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    let mut out = BTreeMap::new();
    for r in results {
        let (s, tags) = r?;
        if !tags.is_empty() {
            out.insert(s, tags);
        }
    }
    Ok(out)
}

type SchemaObjects = (Vec<Value>, Vec<Value>, Vec<Value>);

async fn schema_objects(
    client: DatabricksClient,
    catalog: String,
    schema: String,
) -> Result<SchemaObjects> {
    let q = [("catalog_name", catalog), ("schema_name", schema)];
    let tables = list_all(&client, &format!("{UC}/tables"), &q, "tables").await?;
    let volumes = list_all(&client, &format!("{UC}/volumes"), &q, "volumes").await?;
    let functions = list_all(&client, &format!("{UC}/functions"), &q, "functions").await?;
    Ok((tables, volumes, functions))
}

async fn grants_of(client: DatabricksClient, s: Securable) -> Result<(Securable, Grants)> {
    let path = format!("{UC}/permissions/{}/{}", s.kind.to_lowercase(), s.name);
    let got: Assignments = client.get(&path).await?;
    let grants: Grants = got
        .privilege_assignments
        .into_iter()
        .filter(|a| !a.privileges.is_empty())
        .map(|a| (a.principal, a.privileges.into_iter().collect()))
        .collect();
    Ok((s, grants))
}

async fn tags_of(
    client: DatabricksClient,
    s: Securable,
    entity_type: &'static str,
) -> Result<(Securable, BTreeMap<String, String>)> {
    let path = format!("{UC}/entity-tag-assignments/{entity_type}/{}/tags", s.name);
    let items = match list_all(&client, &path, &[], "tag_assignments").await {
        Ok(items) => items,
        Err(e) if e.is_not_found() => vec![],
        Err(e) => return Err(e),
    };
    let tags = items
        .iter()
        .filter_map(|t| {
            Some((
                t["tag_key"].as_str()?.to_string(),
                t["tag_value"].as_str().unwrap_or_default().to_string(),
            ))
        })
        .collect();
    Ok((s, tags))
}

async fn view_dependencies(
    client: DatabricksClient,
    view: String,
) -> Result<(String, Vec<FullName>)> {
    let info: Value = client.get(&format!("{UC}/tables/{view}")).await?;
    let deps = table(&info)
        .map(|t| t.view_dependencies)
        .unwrap_or_default();
    Ok((view, deps))
}
