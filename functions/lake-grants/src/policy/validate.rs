//! Validation of a parsed policy document, one function per section (admins,
//! LF-tags, data locations, tag assignments, grants; a grant's resource in
//! `resource.rs`). Each records its problems under the field's path and
//! carries on, so one run reports them all.

use super::resource::validate_resource;
use super::{
    DataLocationDocument, GrantDocument, Policy, PolicyDocument, PolicyGrant, PolicyLocation,
    PolicyResource, PolicyTagAssignment, TableSelector, TagAssignmentDocument,
};
use crate::model::{Principal, IAM_ALLOWED_PRINCIPALS};
use lakeops_shared::validate::{is_bucket_name, Problems};
use std::collections::{BTreeMap, BTreeSet};

/// The LF-tags a policy declares: key to its allowed values.
pub(super) type DeclaredTags = BTreeMap<String, BTreeSet<String>>;

/// A principal Lake Formation accepts: `IAM_ALLOWED_PRINCIPALS`, an account
/// id, or an IAM, Identity Center, Organizations or QuickSight ARN.
pub fn is_principal(value: &str) -> bool {
    if value == IAM_ALLOWED_PRINCIPALS {
        return true;
    }
    if value.len() == 12 && value.chars().all(|c| c.is_ascii_digit()) {
        return true;
    }
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && matches!(
            parts[2],
            "iam" | "identitystore" | "organizations" | "quicksight"
        )
        && !parts[5].is_empty()
        && !parts[5].ends_with('/')
        && (parts[2] != "iam"
            || (parts[4].len() == 12
                && parts[4].chars().all(|c| c.is_ascii_digit())
                && ["role/", "user/", "saml-provider/"]
                    .iter()
                    .any(|p| parts[5].starts_with(p))))
}

/// An S3 location ARN (`arn:aws:s3:::bucket` or `arn:aws:s3:::bucket/prefix`).
pub fn is_s3_location_arn(value: &str) -> bool {
    let Some(rest) = value
        .strip_prefix("arn:aws:s3:::")
        .or_else(|| value.strip_prefix("arn:aws-cn:s3:::"))
        .or_else(|| value.strip_prefix("arn:aws-us-gov:s3:::"))
    else {
        return false;
    };
    let bucket = rest.split('/').next().unwrap_or_default();
    is_bucket_name(bucket) && !rest.contains("//")
}

/// Glue keeps database and table names in lower case; a policy that names
/// `Sales` would never match what Lake Formation lists.
pub(super) fn check_catalog_name(
    problems: &mut Problems,
    value: &str,
    path: &str,
    allow_glob: bool,
) {
    if value.trim().is_empty() {
        problems.add(path, "is required");
    } else if !value.chars().all(|c| {
        c.is_ascii_lowercase()
            || c.is_ascii_digit()
            || c == '_'
            || c == '-'
            || (allow_glob && c == '*')
    }) {
        problems.add(
            path,
            format!(
                "'{value}' is not a Glue name (lower-case letters, digits, '_' and '-' only{})",
                if allow_glob {
                    ", or '*' as a wildcard"
                } else {
                    ""
                }
            ),
        );
    }
}

fn check_principal(problems: &mut Problems, value: &str, path: &str) {
    if value.trim().is_empty() {
        problems.add(path, "is required");
    } else if !is_principal(value) {
        problems.add(
            path,
            format!("'{value}' is not a Lake Formation principal (an IAM role/user ARN, an Identity Center or Organizations ARN, an account id, or IAM_ALLOWED_PRINCIPALS)"),
        );
    }
}

fn check_principals(problems: &mut Problems, values: &[String], path: &str) -> BTreeSet<Principal> {
    for (i, value) in values.iter().enumerate() {
        check_principal(problems, value, &format!("{path}[{i}]"));
    }
    values.iter().cloned().collect()
}

/// A tag key and value a resource uses must be among those the policy declares.
pub(super) fn check_tag(
    problems: &mut Problems,
    lf_tags: &DeclaredTags,
    key: &str,
    value: &str,
    path: &str,
) {
    match lf_tags.get(key) {
        None => problems.add(
            path,
            format!("LF-tag '{key}' is not declared under lf_tags"),
        ),
        Some(values) if !values.contains(value) => problems.add(
            path,
            format!("'{value}' is not a declared value of LF-tag '{key}'"),
        ),
        Some(_) => {}
    }
}

/// Validate a parsed document: every malformed or inconsistent field, by path.
pub fn validate(doc: &PolicyDocument) -> Result<Policy, Problems> {
    let mut problems = Problems::new();
    problems.check(
        doc.version == 1,
        "version",
        format!("{} is not a supported version (only 1)", doc.version),
    );
    let (admins, read_only_admins) = validate_admins(&mut problems, doc);
    let managed_principals =
        check_principals(&mut problems, &doc.managed_principals, "managed_principals");
    let lf_tags = validate_lf_tags(&mut problems, &doc.lf_tags);
    let (locations, location_grants) = validate_data_locations(&mut problems, &doc.data_locations);
    let tag_assignments = validate_tag_assignments(&mut problems, &doc.tag_assignments, &lf_tags);
    let mut grants = validate_grants(&mut problems, &doc.grants, &lf_tags);
    grants.extend(location_grants);

    problems.into_result()?;
    Ok(Policy {
        admins,
        read_only_admins,
        lake_formation_only: doc.lake_formation_only,
        managed_principals,
        locations,
        lf_tags,
        tag_assignments,
        grants,
    })
}

/// `admins` and `read_only_admins`, each managed only when given.
fn validate_admins(
    problems: &mut Problems,
    doc: &PolicyDocument,
) -> (Option<BTreeSet<Principal>>, Option<BTreeSet<Principal>>) {
    let admins = doc
        .admins
        .as_ref()
        .map(|a| check_principals(problems, a, "admins"));
    let read_only_admins = doc
        .read_only_admins
        .as_ref()
        .map(|a| check_principals(problems, a, "read_only_admins"));
    if let Some(admins) = &admins {
        if admins.contains(IAM_ALLOWED_PRINCIPALS) {
            problems.add(
                "admins",
                "IAM_ALLOWED_PRINCIPALS cannot be a data lake admin",
            );
        }
    }
    (admins, read_only_admins)
}

/// `lf_tags`: the declared keys and values that tag assignments and grants
/// may use. Returned even when malformed, so their uses are checked too.
fn validate_lf_tags(
    problems: &mut Problems,
    declared: &BTreeMap<String, Vec<String>>,
) -> DeclaredTags {
    let mut lf_tags = BTreeMap::new();
    for (key, values) in declared {
        let path = format!("lf_tags.{key}");
        if key.trim().is_empty() || key.len() > 128 {
            problems.add(&path, "tag key must be 1 to 128 characters");
        }
        if values.is_empty() {
            problems.add(&path, "needs at least one value");
        }
        for (i, value) in values.iter().enumerate() {
            if value.trim().is_empty() || value.len() > 256 {
                problems.add(
                    format!("{path}[{i}]"),
                    "tag value must be 1 to 256 characters",
                );
            }
        }
        lf_tags.insert(key.clone(), values.iter().cloned().collect::<BTreeSet<_>>());
    }
    lf_tags
}

/// `data_locations`: the locations, and the DATA_LOCATION_ACCESS grant each
/// of their principals gets.
fn validate_data_locations(
    problems: &mut Problems,
    data_locations: &[DataLocationDocument],
) -> (Vec<PolicyLocation>, Vec<PolicyGrant>) {
    let mut locations = Vec::new();
    let mut location_grants = Vec::new();
    for (i, location) in data_locations.iter().enumerate() {
        let path = format!("data_locations[{i}]");
        if !is_s3_location_arn(&location.location) {
            problems.add(
                format!("{path}.location"),
                format!(
                    "'{}' is not an S3 location ARN (arn:aws:s3:::bucket/prefix)",
                    location.location
                ),
            );
        }
        if let Some(role) = &location.role_arn {
            if !(is_principal(role) && role.contains(":role/")) {
                problems.add(
                    format!("{path}.role_arn"),
                    format!("'{role}' is not an IAM role ARN"),
                );
            }
        }
        let location_arn = location.location.trim_end_matches('/').to_string();
        for (j, principal) in location.principals.iter().enumerate() {
            check_principal(problems, principal, &format!("{path}.principals[{j}]"));
            location_grants.push(PolicyGrant {
                path: format!("{path}.principals[{j}]"),
                principal: principal.clone(),
                resource: PolicyResource::DataLocation(location_arn.clone()),
                permissions: BTreeSet::from(["DATA_LOCATION_ACCESS".to_string()]),
                grantable: BTreeSet::new(),
            });
        }
        locations.push(PolicyLocation {
            arn: location_arn,
            register: location.register,
            role_arn: location.role_arn.clone(),
        });
    }
    (locations, location_grants)
}

/// `tag_assignments`: which databases or tables get which declared tags.
fn validate_tag_assignments(
    problems: &mut Problems,
    assignments: &[TagAssignmentDocument],
    lf_tags: &DeclaredTags,
) -> Vec<PolicyTagAssignment> {
    let mut tag_assignments = Vec::new();
    for (i, assignment) in assignments.iter().enumerate() {
        let path = format!("tag_assignments[{i}]");
        check_catalog_name(
            problems,
            &assignment.database,
            &format!("{path}.database"),
            false,
        );
        if let Some(tables) = &assignment.tables {
            check_catalog_name(problems, tables, &format!("{path}.tables"), true);
        }
        if assignment.tags.is_empty() {
            problems.add(format!("{path}.tags"), "needs at least one tag");
        }
        for (key, value) in &assignment.tags {
            check_tag(problems, lf_tags, key, value, &format!("{path}.tags.{key}"));
        }
        tag_assignments.push(PolicyTagAssignment {
            path,
            database: assignment.database.clone(),
            tables: assignment.tables.as_deref().map(TableSelector::parse),
            tags: assignment.tags.clone(),
        });
    }
    tag_assignments
}

/// `grants`: one [`PolicyGrant`] per principal of each well-formed entry.
fn validate_grants(
    problems: &mut Problems,
    documents: &[GrantDocument],
    lf_tags: &DeclaredTags,
) -> Vec<PolicyGrant> {
    let mut grants = Vec::new();
    for (i, grant) in documents.iter().enumerate() {
        let path = format!("grants[{i}]");
        let principals = grant_principals(problems, grant, &path);
        let resource = validate_resource(
            problems,
            &grant.resource,
            &format!("{path}.resource"),
            lf_tags,
        );
        check_permissions(
            problems,
            grant,
            &path,
            resource.as_ref().map(|(_, allowed)| *allowed),
        );
        if let Some((resource, _)) = resource {
            for (_, principal) in principals {
                grants.push(PolicyGrant {
                    path: path.clone(),
                    principal,
                    resource: resource.clone(),
                    permissions: grant.permissions.iter().cloned().collect(),
                    grantable: grant.grantable.iter().cloned().collect(),
                });
            }
        }
    }
    grants
}

/// A grant's `principal` and `principals`, each with its path; at least one.
fn grant_principals(
    problems: &mut Problems,
    grant: &GrantDocument,
    path: &str,
) -> Vec<(String, String)> {
    let mut principals: Vec<(String, String)> = Vec::new();
    if let Some(principal) = &grant.principal {
        principals.push((format!("{path}.principal"), principal.clone()));
    }
    for (j, principal) in grant.principals.iter().enumerate() {
        principals.push((format!("{path}.principals[{j}]"), principal.clone()));
    }
    if principals.is_empty() {
        problems.add(format!("{path}.principal"), "is required (or principals)");
    }
    for (principal_path, principal) in &principals {
        check_principal(problems, principal, principal_path);
    }
    principals
}

/// A grant's `permissions` and `grantable`. `allowed` is what applies to the
/// grant's resource; None when the resource is malformed, whose permissions
/// are then not judged (its own problem says what to fix first).
fn check_permissions(
    problems: &mut Problems,
    grant: &GrantDocument,
    path: &str,
    allowed: Option<&[&str]>,
) {
    if grant.permissions.is_empty() {
        problems.add(
            format!("{path}.permissions"),
            "needs at least one permission",
        );
    }
    if let Some(allowed) = allowed {
        for (j, permission) in grant.permissions.iter().enumerate() {
            if !allowed.contains(&permission.as_str()) {
                problems.add(
                    format!("{path}.permissions[{j}]"),
                    format!(
                        "'{permission}' does not apply to this resource (use one of {})",
                        allowed.join(", ")
                    ),
                );
            }
        }
    }
    for (j, permission) in grant.grantable.iter().enumerate() {
        if !grant.permissions.contains(permission) {
            problems.add(
                format!("{path}.grantable[{j}]"),
                format!("'{permission}' is not among the permissions granted"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::parse_policy;

    const SAMPLE: &str = r#"
version: 1
admins: [arn:aws:iam::123456789012:role/platform-admin]
lake_formation_only: true
data_locations:
  - location: arn:aws:s3:::lakeops-dev-raw/
    principals: [arn:aws:iam::123456789012:role/etl]
lf_tags:
  tier: [raw, curated]
tag_assignments:
  - database: curated
    tags: {tier: curated}
grants:
  - principal: arn:aws:iam::123456789012:role/etl
    resource: {table: {database: raw, name: "*"}}
    permissions: [ALL]
  - principals: [arn:aws:iam::123456789012:role/analyst]
    resource: {lf_tag_policy: {resource_type: TABLE, expression: {tier: [curated]}}}
    permissions: [SELECT, DESCRIBE]
    grantable: [DESCRIBE]
  - principal: arn:aws:iam::123456789012:role/analyst
    resource: {columns: {database: curated, table: orders, excluded: [card_number]}}
    permissions: [SELECT]
"#;

    #[test]
    fn parses_and_validates_a_yaml_policy() {
        let policy = validate(&parse_policy(SAMPLE).unwrap()).unwrap();
        assert_eq!(policy.lake_formation_only, Some(true));
        assert_eq!(
            policy.grants.len(),
            4,
            "three grants plus one location grant"
        );
        assert_eq!(
            policy.grants[0].resource,
            PolicyResource::Table {
                database: "raw".into(),
                table: TableSelector::All
            }
        );
        assert_eq!(policy.locations[0].arn, "arn:aws:s3:::lakeops-dev-raw");
        assert_eq!(policy.managed().len(), 2);
    }

    #[test]
    fn reports_every_problem_by_path() {
        let doc = parse_policy(
            r#"
version: 2
admins: [IAM_ALLOWED_PRINCIPALS, "arn:aws:iam::123:role/short-account"]
data_locations:
  - location: s3://bucket/prefix
    role_arn: arn:aws:iam::123456789012:user/not-a-role
lf_tags: {tier: []}
tag_assignments:
  - database: Curated
    tags: {owner: finance}
grants:
  - resource: {database: raw}
    permissions: [SELECT]
  - principal: arn:aws:iam::123456789012:role/etl
    resource: {columns: {database: raw, table: t, names: [a], excluded: [b]}}
    permissions: [SELECT]
    grantable: [ALTER]
  - principal: arn:aws:iam::123456789012:role/etl
    resource: {lf_tag_policy: {resource_type: TABLE, expression: {tier: [gold]}}}
    permissions: []
"#,
        )
        .unwrap();
        let problems = validate(&doc).unwrap_err();
        let text = problems.to_string();
        for expected in [
            "version: 2 is not a supported version",
            "admins[1]: 'arn:aws:iam::123:role/short-account' is not a Lake Formation principal",
            "admins: IAM_ALLOWED_PRINCIPALS cannot be a data lake admin",
            "data_locations[0].location: 's3://bucket/prefix' is not an S3 location ARN",
            "data_locations[0].role_arn",
            "lf_tags.tier: needs at least one value",
            "tag_assignments[0].database: 'Curated' is not a Glue name",
            "tag_assignments[0].tags.owner: LF-tag 'owner' is not declared",
            "grants[0].principal: is required",
            "grants[0].permissions[0]: 'SELECT' does not apply to this resource",
            "grants[1].resource.columns: give either names or excluded",
            "grants[1].grantable[0]: 'ALTER' is not among the permissions granted",
            "grants[2].resource.lf_tag_policy.expression.tier[0]: 'gold' is not a declared value",
            "grants[2].permissions: needs at least one permission",
        ] {
            assert!(text.contains(expected), "missing `{expected}` in: {text}");
        }
    }

    #[test]
    fn principals_and_locations() {
        assert!(is_principal("arn:aws:iam::123456789012:role/etl"));
        assert!(is_principal("arn:aws:iam::123456789012:role/path/etl"));
        assert!(is_principal("arn:aws:iam::123456789012:user/alice"));
        assert!(is_principal("123456789012"));
        assert!(is_principal("IAM_ALLOWED_PRINCIPALS"));
        assert!(is_principal("arn:aws:identitystore:::group/abc-123"));
        assert!(!is_principal("arn:aws:iam::123456789012:policy/p"));
        assert!(!is_principal("arn:aws:iam::123456789012:role/"));
        assert!(!is_principal("etl"));
        assert!(!is_principal("arn:aws:s3:::bucket"));
        assert!(is_s3_location_arn("arn:aws:s3:::lakeops-dev-raw"));
        assert!(is_s3_location_arn("arn:aws:s3:::lakeops-dev-raw/events/"));
        assert!(!is_s3_location_arn("arn:aws:s3:::Bad_Bucket/x"));
        assert!(!is_s3_location_arn("s3://lakeops-dev-raw/x"));
    }
}
