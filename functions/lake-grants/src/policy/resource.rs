//! The resource of a grant: which one kind its document names, what of it
//! is malformed, and which permissions apply to it.

use super::validate::{check_catalog_name, check_tag, is_s3_location_arn, DeclaredTags};
use super::{
    ColumnsDocument, LfTagDocument, LfTagPolicyDocument, PolicyResource, ResourceDocument,
    TableDocument, TableSelector,
};
use crate::model::{Columns, TagPolicyTarget};
use lakeops_shared::validate::Problems;
use std::collections::BTreeMap;

const CATALOG_PERMISSIONS: &[&str] = &[
    "ALL",
    "ALTER",
    "CREATE_CATALOG",
    "CREATE_DATABASE",
    "CREATE_LF_TAG",
    "CREATE_LF_TAG_EXPRESSION",
    "DESCRIBE",
    "DROP",
    "SUPER_USER",
];
const DATABASE_PERMISSIONS: &[&str] = &["ALL", "ALTER", "CREATE_TABLE", "DESCRIBE", "DROP"];
const TABLE_PERMISSIONS: &[&str] = &[
    "ALL", "ALTER", "DELETE", "DESCRIBE", "DROP", "INSERT", "SELECT",
];
const COLUMN_PERMISSIONS: &[&str] = &["SELECT"];
const LOCATION_PERMISSIONS: &[&str] = &["DATA_LOCATION_ACCESS"];
const LF_TAG_PERMISSIONS: &[&str] = &[
    "ALTER",
    "ASSOCIATE",
    "DESCRIBE",
    "DROP",
    "GRANT_WITH_LF_TAG_EXPRESSION",
];

/// The one kind a resource document names.
enum ResourceKind<'a> {
    Catalog(&'a BTreeMap<String, String>),
    Database(&'a String),
    Table(&'a TableDocument),
    Columns(&'a ColumnsDocument),
    DataLocation(&'a String),
    LfTag(&'a LfTagDocument),
    LfTagPolicy(&'a LfTagPolicyDocument),
}

impl ResourceDocument {
    fn kind(&self) -> Result<ResourceKind<'_>, String> {
        let mut kinds = Vec::new();
        if let Some(v) = &self.catalog {
            kinds.push(ResourceKind::Catalog(v));
        }
        if let Some(v) = &self.database {
            kinds.push(ResourceKind::Database(v));
        }
        if let Some(v) = &self.table {
            kinds.push(ResourceKind::Table(v));
        }
        if let Some(v) = &self.columns {
            kinds.push(ResourceKind::Columns(v));
        }
        if let Some(v) = &self.data_location {
            kinds.push(ResourceKind::DataLocation(v));
        }
        if let Some(v) = &self.lf_tag {
            kinds.push(ResourceKind::LfTag(v));
        }
        if let Some(v) = &self.lf_tag_policy {
            kinds.push(ResourceKind::LfTagPolicy(v));
        }
        match kinds.len() {
            1 => Ok(kinds.pop().unwrap()),
            n => Err(format!(
                "give exactly one of catalog, database, table, columns, data_location, lf_tag, lf_tag_policy (found {n})"
            )),
        }
    }
}

/// The resource a grant names and the permissions that apply to it; None
/// when it names no single kind or is malformed beyond use.
pub(super) fn validate_resource(
    problems: &mut Problems,
    resource: &ResourceDocument,
    resource_path: &str,
    lf_tags: &DeclaredTags,
) -> Option<(PolicyResource, &'static [&'static str])> {
    let kind = match resource.kind() {
        Ok(kind) => kind,
        Err(problem) => {
            problems.add(resource_path, problem);
            return None;
        }
    };
    match kind {
        ResourceKind::Catalog(extra) => {
            if !extra.is_empty() {
                problems.add(
                    format!("{resource_path}.catalog"),
                    "takes no fields (write catalog: {})",
                );
            }
            Some((PolicyResource::Catalog, CATALOG_PERMISSIONS))
        }
        ResourceKind::Database(name) => {
            check_catalog_name(problems, name, &format!("{resource_path}.database"), false);
            Some((PolicyResource::Database(name.clone()), DATABASE_PERMISSIONS))
        }
        ResourceKind::Table(table) => Some((
            table_resource(problems, table, resource_path),
            TABLE_PERMISSIONS,
        )),
        ResourceKind::Columns(columns) => {
            columns_resource(problems, columns, resource_path).map(|r| (r, COLUMN_PERMISSIONS))
        }
        ResourceKind::DataLocation(arn) => {
            if !is_s3_location_arn(arn) {
                problems.add(
                    format!("{resource_path}.data_location"),
                    format!("'{arn}' is not an S3 location ARN (arn:aws:s3:::bucket/prefix)"),
                );
            }
            Some((
                PolicyResource::DataLocation(arn.trim_end_matches('/').to_string()),
                LOCATION_PERMISSIONS,
            ))
        }
        ResourceKind::LfTag(tag) => Some((
            lf_tag_resource(problems, tag, resource_path, lf_tags),
            LF_TAG_PERMISSIONS,
        )),
        ResourceKind::LfTagPolicy(policy) => Some(lf_tag_policy_resource(
            problems,
            policy,
            resource_path,
            lf_tags,
        )),
    }
}

fn table_resource(
    problems: &mut Problems,
    TableDocument { database, name }: &TableDocument,
    resource_path: &str,
) -> PolicyResource {
    check_catalog_name(
        problems,
        database,
        &format!("{resource_path}.table.database"),
        false,
    );
    check_catalog_name(problems, name, &format!("{resource_path}.table.name"), true);
    PolicyResource::Table {
        database: database.clone(),
        table: TableSelector::parse(name),
    }
}

/// None when the columns are not given exactly one way.
fn columns_resource(
    problems: &mut Problems,
    ColumnsDocument {
        database,
        table,
        names,
        excluded,
    }: &ColumnsDocument,
    resource_path: &str,
) -> Option<PolicyResource> {
    let cpath = format!("{resource_path}.columns");
    check_catalog_name(problems, database, &format!("{cpath}.database"), false);
    check_catalog_name(problems, table, &format!("{cpath}.table"), false);
    let columns = match (names, excluded) {
        (Some(names), None) if !names.is_empty() => {
            Some(Columns::Only(names.iter().cloned().collect()))
        }
        (Some(_), None) => {
            problems.add(format!("{cpath}.names"), "needs at least one column");
            None
        }
        (None, Some(excluded)) => Some(Columns::AllExcept(excluded.iter().cloned().collect())),
        (Some(_), Some(_)) => {
            problems.add(&cpath, "give either names or excluded, not both");
            None
        }
        (None, None) => {
            problems.add(
                &cpath,
                "give names (these columns) or excluded (all columns but these)",
            );
            None
        }
    };
    columns.map(|columns| PolicyResource::Columns {
        database: database.clone(),
        table: table.clone(),
        columns,
    })
}

fn lf_tag_resource(
    problems: &mut Problems,
    LfTagDocument { key, values }: &LfTagDocument,
    resource_path: &str,
    lf_tags: &DeclaredTags,
) -> PolicyResource {
    if values.is_empty() {
        problems.add(
            format!("{resource_path}.lf_tag.values"),
            "needs at least one value",
        );
    }
    for (j, value) in values.iter().enumerate() {
        check_tag(
            problems,
            lf_tags,
            key,
            value,
            &format!("{resource_path}.lf_tag.values[{j}]"),
        );
    }
    PolicyResource::LfTag {
        key: key.clone(),
        values: values.iter().cloned().collect(),
    }
}

/// The permissions that apply follow the kind of resource the expression
/// selects (databases or tables).
fn lf_tag_policy_resource(
    problems: &mut Problems,
    LfTagPolicyDocument {
        resource_type,
        expression,
    }: &LfTagPolicyDocument,
    resource_path: &str,
    lf_tags: &DeclaredTags,
) -> (PolicyResource, &'static [&'static str]) {
    let epath = format!("{resource_path}.lf_tag_policy.expression");
    if expression.is_empty() {
        problems.add(&epath, "needs at least one tag");
    }
    for (key, values) in expression {
        if values.is_empty() {
            problems.add(format!("{epath}.{key}"), "needs at least one value");
        }
        for (j, value) in values.iter().enumerate() {
            check_tag(
                problems,
                lf_tags,
                key,
                value,
                &format!("{epath}.{key}[{j}]"),
            );
        }
    }
    let allowed = match resource_type {
        TagPolicyTarget::Database => DATABASE_PERMISSIONS,
        TagPolicyTarget::Table => TABLE_PERMISSIONS,
    };
    (
        PolicyResource::LfTagPolicy {
            target: *resource_type,
            expression: expression
                .iter()
                .map(|(k, v)| (k.clone(), v.iter().cloned().collect()))
                .collect(),
        },
        allowed,
    )
}
