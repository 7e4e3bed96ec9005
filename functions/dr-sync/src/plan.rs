//! What a sync does to the secondary, decided from the spec and the two inventories.
//! Pure: `plan` makes no call; `apply` executes its changes stage by stage, and `plan`
//! mode reports them. A change that cannot be planned (a location outside every
//! mapping, a view in a dependency cycle) fails only its object.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::inventory::{Inventory, Securable, Table, TableType};
use crate::mapping::FullName;
use crate::spec::{DrSpec, ExternalTables, ObjectKind};

/// The sync's stages, in the order the DR design gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Storage,
    Catalogs,
    Sharing,
    ManagedTables,
    ExternalTables,
    Views,
    Volumes,
    Functions,
    TagsComments,
    Grants,
    Deletes,
}

impl Stage {
    pub const ALL: [Stage; 11] = [
        Stage::Storage,
        Stage::Catalogs,
        Stage::Sharing,
        Stage::ManagedTables,
        Stage::ExternalTables,
        Stage::Views,
        Stage::Volumes,
        Stage::Functions,
        Stage::TagsComments,
        Stage::Grants,
        Stage::Deletes,
    ];
}

/// One thing to do on the secondary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Storage credentials and external locations go through the REST API.
    CreateStorageCredential {
        name: String,
        role_arn: String,
    },
    UpdateStorageCredential {
        name: String,
        role_arn: String,
    },
    CreateExternalLocation {
        name: String,
        url: String,
        credential_name: String,
    },
    UpdateExternalLocation {
        name: String,
        url: String,
        credential_name: String,
    },
    /// `storage_root`: the primary's own managed storage of the catalog, mapped by
    /// `locations[]`; None: the secondary metastore's.
    CreateCatalog {
        name: String,
        comment: Option<String>,
        storage_root: Option<String>,
    },
    /// Schemas go through the REST API too, as catalogs do.
    CreateSchema {
        catalog: String,
        name: String,
        comment: Option<String>,
        storage_root: Option<String>,
    },
    /// On the primary: a DATABRICKS recipient for the secondary's metastore.
    CreateRecipient {
        name: String,
        global_metastore_id: String,
    },
    /// On the primary: a share, and what it holds (see [`shared_objects`]).
    CreateShare {
        name: String,
    },
    /// Data objects added to and removed from a share: a name with one dot is a
    /// SCHEMA (`cat.schema`), with two a TABLE (`cat.schema.table`).
    UpdateShare {
        share: String,
        add: Vec<String>,
        remove: Vec<String>,
    },
    GrantShare {
        share: String,
        recipient: String,
    },
    /// On the secondary: the catalog over a share, from the provider whose global
    /// metastore id is the primary's (its name is only known once the recipient exists).
    CreateShareCatalog {
        name: String,
        share: String,
        provider_global_metastore_id: String,
    },
    /// A DEEP CLONE, submitted asynchronously and polled by the state machine.
    Clone {
        target: String,
        source: String,
        source_version: Option<i64>,
        target_version: Option<i64>,
        statement: String,
    },
    /// Any other single statement; `schema` (`catalog.schema`) is the statement's
    /// context when names in it are relative (a view's definition).
    Statement {
        statement: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        schema: Option<String>,
    },
    /// Permissions API PATCH of one securable.
    UpdateGrants {
        securable: Securable,
        changes: Vec<GrantChange>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantChange {
    pub principal: String,
    pub add: BTreeSet<String>,
    pub remove: BTreeSet<String>,
}

/// A planned change: what it is about, in words, and how to do it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub stage: Stage,
    /// `table`, `view`, `schema`, `grants`, ...
    pub kind: String,
    /// The secondary's object.
    pub object: String,
    /// What apply does, e.g. "deep clone main.s.t, source version 12, target version 9".
    pub description: String,
    pub action: Action,
    /// Objects of this stage that must be done first (a view's views).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
}

/// An object the sync leaves as it is, with the reason, for the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    pub kind: String,
    pub object: String,
    pub reason: String,
    /// True when it is a failure of this object (reported as failed); false when it is
    /// by design (an extra object kept because deletes do not propagate).
    pub failed: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub changes: Vec<Change>,
    pub skipped: Vec<Skipped>,
}

/// Which workspace an action changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Primary,
    Secondary,
}

impl Action {
    pub fn side(&self) -> Side {
        match self {
            Action::CreateRecipient { .. }
            | Action::CreateShare { .. }
            | Action::UpdateShare { .. }
            | Action::GrantShare { .. } => Side::Primary,
            _ => Side::Secondary,
        }
    }

    /// Whether the action is a statement on the secondary's warehouse (queued, async).
    pub fn statement(&self) -> Option<(&str, Option<&str>)> {
        match self {
            Action::Clone { statement, .. } => Some((statement, None)),
            Action::Statement { statement, schema } => Some((statement, schema.as_deref())),
            _ => None,
        }
    }
}

impl Plan {
    pub fn stage(&self, stage: Stage) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(move |c| c.stage == stage)
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    pub(crate) fn push(
        &mut self,
        stage: Stage,
        kind: &str,
        object: &str,
        description: String,
        action: Action,
    ) {
        self.changes.push(Change {
            stage,
            kind: kind.into(),
            object: object.into(),
            description,
            action,
            after: vec![],
        });
    }

    pub(crate) fn skip(
        &mut self,
        kind: &str,
        object: &str,
        reason: impl Into<String>,
        failed: bool,
    ) {
        self.skipped.push(Skipped {
            kind: kind.into(),
            object: object.into(),
            reason: reason.into(),
            failed,
        });
    }

    pub(crate) fn statement(
        &mut self,
        stage: Stage,
        kind: &str,
        object: &str,
        description: String,
        statement: String,
    ) {
        self.push(
            stage,
            kind,
            object,
            description,
            Action::Statement {
                statement,
                schema: None,
            },
        );
    }
}

/// The whole plan of a sync: every stage's changes, in stage order.
pub fn plan(spec: &DrSpec, primary: &Inventory, secondary: &Inventory) -> Plan {
    let mut out = Plan::default();
    plan_storage(spec, primary, secondary, &mut out);
    plan_catalogs(spec, primary, secondary, &mut out);
    plan_sharing(spec, primary, secondary, &mut out);
    if spec.objects.contains(&ObjectKind::Tables) {
        crate::plan_tables::plan_tables(spec, primary, secondary, &mut out);
    }
    if spec.objects.contains(&ObjectKind::Views) {
        crate::plan_tables::plan_views(spec, primary, secondary, &mut out);
    }
    crate::plan_objects::plan_volumes_and_functions(spec, primary, secondary, &mut out);
    crate::plan_objects::plan_tags_and_comments(spec, primary, secondary, &mut out);
    if spec.objects.contains(&ObjectKind::Grants) {
        crate::plan_objects::plan_grants(spec, primary, secondary, &mut out);
    }
    crate::plan_objects::plan_deletes(spec, primary, secondary, &mut out);
    out.changes.sort_by_key(|c| c.stage);
    out
}

/// Credentials of synced locations get the mapped role; locations the mapped URL.
fn plan_storage(spec: &DrSpec, primary: &Inventory, secondary: &Inventory, out: &mut Plan) {
    for (name, cred) in &primary.storage_credentials {
        let Some(role) = spec.map_credential_role(&cred.name) else {
            continue;
        };
        match secondary.storage_credentials.get(name) {
            None => out.push(
                Stage::Storage,
                "storage_credential",
                name,
                format!("create storage credential {name} with role {role}"),
                Action::CreateStorageCredential {
                    name: name.clone(),
                    role_arn: role.into(),
                },
            ),
            Some(have) if have.role_arn != role => out.push(
                Stage::Storage,
                "storage_credential",
                name,
                format!(
                    "update storage credential {name}: role {} -> {role}",
                    have.role_arn
                ),
                Action::UpdateStorageCredential {
                    name: name.clone(),
                    role_arn: role.into(),
                },
            ),
            Some(_) => {}
        }
    }
    for (name, loc) in &primary.external_locations {
        if spec.map_credential_role(&loc.credential_name).is_none() {
            continue;
        }
        let url = match spec.map_location(&loc.url) {
            Ok(url) => url,
            Err(reason) => {
                out.skip("external_location", name, reason, true);
                continue;
            }
        };
        let action = |create: bool| {
            let (name, url, credential_name) =
                (name.clone(), url.clone(), loc.credential_name.clone());
            if create {
                Action::CreateExternalLocation {
                    name,
                    url,
                    credential_name,
                }
            } else {
                Action::UpdateExternalLocation {
                    name,
                    url,
                    credential_name,
                }
            }
        };
        match secondary.external_locations.get(name) {
            None => out.push(
                Stage::Storage,
                "external_location",
                name,
                format!("create external location {name} at {url}"),
                action(true),
            ),
            Some(have) if have.url != url || have.credential_name != loc.credential_name => out
                .push(
                    Stage::Storage,
                    "external_location",
                    name,
                    format!("update external location {name}: {} -> {url}", have.url),
                    action(false),
                ),
            Some(_) => {}
        }
    }
}

/// Target catalogs and schemas. A source catalog that is missing on the primary is
/// reported and its target left alone: the sync never drops a whole catalog.
fn plan_catalogs(spec: &DrSpec, primary: &Inventory, secondary: &Inventory, out: &mut Plan) {
    for m in &spec.catalogs {
        let source = m.source.to_lowercase();
        let target = m.target_name().to_lowercase();
        let Some(cat) = primary.catalogs.get(&source) else {
            out.skip(
                "catalog",
                &target,
                format!("source catalog {source} does not exist on the primary"),
                true,
            );
            continue;
        };
        if !secondary.catalogs.contains_key(&target) {
            // Managed storage in the primary's region would put the replica's data
            // there: it is mapped, and a root outside every mapping fails the catalog.
            let storage_root = match mapped_root(spec, cat.storage_root.as_deref()) {
                Ok(root) => root,
                Err(reason) => {
                    out.skip("catalog", &target, format!("storage_root: {reason}"), true);
                    continue;
                }
            };
            let described = match &storage_root {
                Some(root) => format!("create catalog {target} with managed storage {root}"),
                None => format!("create catalog {target}"),
            };
            out.push(
                Stage::Catalogs,
                "catalog",
                &target,
                described,
                Action::CreateCatalog {
                    name: target.clone(),
                    comment: cat.comment.clone(),
                    storage_root,
                },
            );
        }
        for (full, schema) in primary
            .schemas
            .iter()
            .filter(|(k, _)| catalog_of(k) == source)
        {
            let name = full.split_once('.').map(|x| x.1).unwrap_or_default();
            if !m.includes_schema(name) {
                continue;
            }
            let target_schema = format!("{target}.{name}");
            if !secondary.schemas.contains_key(&target_schema) {
                let storage_root = match mapped_root(spec, schema.storage_root.as_deref()) {
                    Ok(root) => root,
                    Err(reason) => {
                        out.skip(
                            "schema",
                            &target_schema,
                            format!("storage_root: {reason}"),
                            true,
                        );
                        continue;
                    }
                };
                let described = match &storage_root {
                    Some(root) => {
                        format!("create schema {target_schema} with managed storage {root}")
                    }
                    None => format!("create schema {target_schema}"),
                };
                out.push(
                    Stage::Catalogs,
                    "schema",
                    &target_schema,
                    described,
                    Action::CreateSchema {
                        catalog: target.clone(),
                        name: name.to_string(),
                        comment: schema.comment.clone(),
                        storage_root,
                    },
                );
            }
        }
    }
}

/// A managed storage root of the primary, on the secondary (None stays None).
fn mapped_root(spec: &DrSpec, root: Option<&str>) -> Result<Option<String>, String> {
    root.map(|r| spec.map_location(r)).transpose()
}

/// The recipient, a share per synced catalog with every synced schema in it, the grant,
/// and the share catalogs on the secondary.
fn plan_sharing(spec: &DrSpec, primary: &Inventory, secondary: &Inventory, out: &mut Plan) {
    let recipient = spec.sharing.recipient.to_lowercase();
    let secondary_global = secondary.sharing.global_metastore_id.clone();
    let primary_global = primary.sharing.global_metastore_id.clone();
    match primary.sharing.recipients.get(&recipient) {
        None => out.push(
            Stage::Sharing,
            "recipient",
            &recipient,
            format!("create recipient {recipient} on the primary for metastore {secondary_global}"),
            Action::CreateRecipient {
                name: recipient.clone(),
                global_metastore_id: secondary_global.clone(),
            },
        ),
        Some(global) if *global != secondary_global => {
            // Never share with the metastore that recipient names: nothing of the
            // sharing stage is planned, and every clone reports why it cannot read.
            out.skip(
                "recipient",
                &recipient,
                format!("recipient {recipient} exists on the primary for metastore {global}, not the secondary's {secondary_global}: rename sharing.recipient or fix it by hand"),
                true,
            );
            return;
        }
        Some(_) => {}
    }
    for m in &spec.catalogs {
        let source = m.source.to_lowercase();
        if !primary.catalogs.contains_key(&source) {
            continue;
        }
        let share = spec.share_name(&source);
        let have = primary.sharing.shares.get(&share);
        if have.is_none() {
            out.push(
                Stage::Sharing,
                "share",
                &share,
                format!("create share {share} on the primary"),
                Action::CreateShare {
                    name: share.clone(),
                },
            );
        }
        let desired = shared_objects(spec, m, primary);
        let held = have.cloned().unwrap_or_default();
        let add: Vec<String> = desired.difference(&held).cloned().collect();
        let remove: Vec<String> = held
            .iter()
            .filter(|o| catalog_of(o) == source && !desired.contains(*o))
            .cloned()
            .collect();
        if !add.is_empty() || !remove.is_empty() {
            let mut what = vec![];
            if !add.is_empty() {
                what.push(format!("add {} to share {share}", share_objects_text(&add)));
            }
            if !remove.is_empty() {
                what.push(format!(
                    "remove {} from share {share} (not synced as such)",
                    share_objects_text(&remove)
                ));
            }
            out.push(
                Stage::Sharing,
                "share",
                &share,
                what.join("; "),
                Action::UpdateShare {
                    share: share.clone(),
                    add,
                    remove,
                },
            );
        }
        if !primary
            .sharing
            .share_grants
            .get(&share)
            .is_some_and(|r| r.contains(&recipient))
        {
            out.push(
                Stage::Sharing,
                "share",
                &share,
                format!("grant SELECT on share {share} to recipient {recipient}"),
                Action::GrantShare {
                    share: share.clone(),
                    recipient: recipient.clone(),
                },
            );
        }
        if let Some(existing) = secondary.catalogs.get(&share) {
            if existing.catalog_type != "DELTASHARING_CATALOG" {
                out.skip(
                    "share_catalog",
                    &share,
                    format!("catalog {share} exists on the secondary as a {}, not the share catalog of {share}: clones would read it", existing.catalog_type),
                    true,
                );
            }
        } else {
            out.push(
                Stage::Sharing,
                "share_catalog",
                &share,
                format!("create share catalog {share} on the secondary from share {share}"),
                Action::CreateShareCatalog {
                    name: share.clone(),
                    share: share.clone(),
                    provider_global_metastore_id: primary_global.clone(),
                },
            );
        }
    }
}

/// What the share of mapping `m` holds. Its synced schemas whole, so that tables
/// created later are shared with no edit, when the mapping has no table filters.
/// With `include_tables` or `exclude_tables`, only the tables that are cloned: a
/// schema in a share exposes every table in it to the recipient, so an excluded
/// table would leave the primary's metastore. A table created later in such a
/// catalog is added by the next run's sharing stage, before its clone.
pub(crate) fn shared_objects(
    spec: &DrSpec,
    m: &crate::spec::CatalogMapping,
    primary: &Inventory,
) -> BTreeSet<String> {
    let source = m.source.to_lowercase();
    if m.include_tables.is_empty() && m.exclude_tables.is_empty() {
        return primary
            .schemas
            .keys()
            .filter(|full| catalog_of(full) == source)
            .filter(|full| m.includes_schema(full.split_once('.').map(|x| x.1).unwrap_or_default()))
            .cloned()
            .collect();
    }
    synced_tables(spec, primary)
        .filter(|(t, _)| matches!(copy_of(spec, t), Copy::Clone { .. }))
        .map(|(t, _)| t.name.to_string())
        .filter(|name| catalog_of(name) == source)
        .collect()
}

/// "schemas a.b, a.c and tables a.b.t": the kinds as [`Action::UpdateShare`] reads them.
fn share_objects_text(names: &[String]) -> String {
    let (schemas, tables): (Vec<&String>, Vec<&String>) =
        names.iter().partition(|n| n.matches('.').count() == 1);
    let list = |kind: &str, items: &[&String]| {
        let joined: Vec<&str> = items.iter().map(|s| s.as_str()).collect();
        format!("{kind} {}", joined.join(", "))
    };
    match (schemas.is_empty(), tables.is_empty()) {
        (false, true) => list("schemas", &schemas),
        (true, false) => list("tables", &tables),
        _ => format!(
            "{} and {}",
            list("schemas", &schemas),
            list("tables", &tables)
        ),
    }
}

pub(crate) fn catalog_of(name: &str) -> &str {
    name.split('.').next().unwrap_or_default()
}

/// The synced source tables (and views) with their target names.
pub(crate) fn synced_tables<'a>(
    spec: &'a DrSpec,
    primary: &'a Inventory,
) -> impl Iterator<Item = (&'a Table, FullName)> + 'a {
    primary
        .tables
        .values()
        .filter_map(move |t| spec.target_of(&t.name).map(|target| (t, target)))
}

/// How a table reaches the secondary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Copy {
    /// DEEP CLONE from the share (managed tables), to the mapped location if external.
    Clone { external: bool },
    /// Re-created over replicated storage.
    Metadata,
    /// Not copied (streaming tables, materialized views, views).
    No(&'static str),
}

pub(crate) fn copy_of(spec: &DrSpec, t: &Table) -> Copy {
    match t.table_type {
        TableType::Managed => Copy::Clone { external: false },
        TableType::External if t.is_delta() && spec.external_tables == ExternalTables::Clone => {
            Copy::Clone { external: true }
        }
        TableType::External => Copy::Metadata,
        TableType::StreamingTable => {
            Copy::No("streaming tables are recreated by their pipeline, not copied")
        }
        TableType::MaterializedView => {
            Copy::No("materialized views are recreated by their pipeline, not copied")
        }
        TableType::View => Copy::No("views are created in the views stage"),
        TableType::Other => {
            Copy::No("a table of this type (shallow clone, foreign, metric view) is not copied")
        }
    }
}
