//! From a policy and the current state to the changes that make the state
//! match the policy — pure functions only, so they can be tested hard.

use crate::model::*;
use crate::policy::{Policy, PolicyLocation, PolicyResource, TableSelector};
use lakeops_shared::validate::Problems;
use std::collections::{BTreeMap, BTreeSet};

/// Lake Formation accepts at most this many entries per batch call.
pub const MAX_BATCH: usize = 20;

/// The policy resolved against the catalog: the exact state it asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    pub grants: GrantMap,
    /// Principals whose grants not in `grants` are revoked.
    pub managed: BTreeSet<Principal>,
    pub admins: Option<BTreeSet<Principal>>,
    pub read_only_admins: Option<BTreeSet<Principal>>,
    pub lake_formation_only: Option<bool>,
    pub lf_tags: BTreeMap<String, BTreeSet<String>>,
    pub tag_assignments: BTreeMap<TagTarget, BTreeMap<String, String>>,
    pub locations: Vec<PolicyLocation>,
}

/// The databases a policy names, which the catalog snapshot must cover.
pub fn referenced_databases(policy: &Policy) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for grant in &policy.grants {
        match &grant.resource {
            PolicyResource::Database(name) => {
                names.insert(name.clone());
            }
            PolicyResource::Table { database, .. } | PolicyResource::Columns { database, .. } => {
                names.insert(database.clone());
            }
            _ => {}
        }
    }
    names.extend(policy.tag_assignments.iter().map(|a| a.database.clone()));
    names
}

/// `*` matches any run of characters; everything else matches itself.
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

/// Resolve a validated policy against the catalog. A database, table or column
/// that does not exist is a problem (nothing is applied); a glob that matches
/// no table is only a warning, since tables come and go.
pub fn resolve(
    policy: &Policy,
    catalog: &CatalogSnapshot,
) -> Result<(Desired, Vec<String>), Problems> {
    let mut problems = Problems::new();
    let mut warnings = Vec::new();
    let tables_of =
        |problems: &mut Problems, database: &str, path: &str| match catalog.databases.get(database)
        {
            Some(tables) => Some(tables),
            None => {
                problems.add(
                    path,
                    format!("database '{database}' does not exist in the Glue Data Catalog"),
                );
                None
            }
        };
    let select = |problems: &mut Problems,
                  warnings: &mut Vec<String>,
                  database: &str,
                  selector: &TableSelector,
                  path: &str|
     -> Vec<String> {
        let Some(tables) = tables_of(problems, database, path) else {
            return Vec::new();
        };
        match selector {
            TableSelector::Name(name) => {
                if tables.contains_key(name) {
                    vec![name.clone()]
                } else {
                    problems.add(
                        path,
                        format!(
                            "table '{database}.{name}' does not exist in the Glue Data Catalog"
                        ),
                    );
                    Vec::new()
                }
            }
            TableSelector::All => tables.keys().cloned().collect(),
            TableSelector::Glob(pattern) => {
                let matched: Vec<String> = tables
                    .keys()
                    .filter(|t| glob_matches(pattern, t))
                    .cloned()
                    .collect();
                if matched.is_empty() {
                    warnings.push(format!(
                        "{path}: no table of '{database}' matches '{pattern}' yet"
                    ));
                }
                matched
            }
        }
    };

    let mut grants = GrantMap::new();
    for grant in &policy.grants {
        let path = format!("{}.resource", grant.path);
        let resources: Vec<Resource> = match &grant.resource {
            PolicyResource::Catalog => vec![Resource::Catalog],
            PolicyResource::Database(name) => {
                tables_of(&mut problems, name, &path);
                vec![Resource::Database { name: name.clone() }]
            }
            PolicyResource::Table {
                database,
                table: TableSelector::All,
            } => {
                tables_of(&mut problems, database, &path);
                vec![Resource::AllTables {
                    database: database.clone(),
                }]
            }
            PolicyResource::Table { database, table } => {
                select(&mut problems, &mut warnings, database, table, &path)
                    .into_iter()
                    .map(|name| Resource::Table {
                        database: database.clone(),
                        name,
                    })
                    .collect()
            }
            PolicyResource::Columns {
                database,
                table,
                columns,
            } => {
                let found = select(
                    &mut problems,
                    &mut warnings,
                    database,
                    &TableSelector::Name(table.clone()),
                    &path,
                );
                if let (Some(_), Some(known)) = (
                    found.first(),
                    catalog.databases.get(database).and_then(|t| t.get(table)),
                ) {
                    let named = match columns {
                        Columns::Only(names) | Columns::AllExcept(names) => names,
                    };
                    for column in named.iter().filter(|c| !known.contains(*c)) {
                        problems.add(
                            &path,
                            format!(
                                "column '{column}' does not exist in table '{database}.{table}'"
                            ),
                        );
                    }
                }
                vec![Resource::Columns {
                    database: database.clone(),
                    table: table.clone(),
                    columns: columns.clone(),
                }]
            }
            PolicyResource::DataLocation(arn) => vec![Resource::DataLocation { arn: arn.clone() }],
            PolicyResource::LfTag { key, values } => vec![Resource::LfTag {
                key: key.clone(),
                values: values.clone(),
            }],
            PolicyResource::LfTagPolicy { target, expression } => {
                vec![Resource::LfTagPolicy {
                    target: *target,
                    expression: expression.clone(),
                }]
            }
        };
        let permissions = Permissions {
            permissions: grant.permissions.clone(),
            grantable: grant.grantable.clone(),
        };
        for resource in resources {
            grants
                .entry((grant.principal.clone(), resource))
                .or_default()
                .merge(&permissions);
        }
    }

    let mut tag_assignments: BTreeMap<TagTarget, BTreeMap<String, String>> = BTreeMap::new();
    for assignment in &policy.tag_assignments {
        let targets: Vec<TagTarget> = match &assignment.tables {
            None => {
                tables_of(
                    &mut problems,
                    &assignment.database,
                    &format!("{}.database", assignment.path),
                );
                vec![TagTarget::Database {
                    name: assignment.database.clone(),
                }]
            }
            Some(selector) => select(
                &mut problems,
                &mut warnings,
                &assignment.database,
                selector,
                &format!("{}.tables", assignment.path),
            )
            .into_iter()
            .map(|name| TagTarget::Table {
                database: assignment.database.clone(),
                name,
            })
            .collect(),
        };
        for target in targets {
            let tags = tag_assignments.entry(target.clone()).or_default();
            for (key, value) in &assignment.tags {
                match tags.get(key) {
                    Some(other) if other != value => problems.add(
                        format!("{}.tags.{key}", assignment.path),
                        format!(
                            "{target} would get both '{other}' and '{value}' for LF-tag '{key}'"
                        ),
                    ),
                    _ => {
                        tags.insert(key.clone(), value.clone());
                    }
                }
            }
        }
    }

    problems.into_result()?;
    Ok((
        Desired {
            grants,
            managed: policy.managed(),
            admins: policy.admins.clone(),
            read_only_admins: policy.read_only_admins.clone(),
            lake_formation_only: policy.lake_formation_only,
            lf_tags: policy.lf_tags.clone(),
            tag_assignments,
            locations: policy.locations.clone(),
        },
        warnings,
    ))
}

// ---------------------------------------------------------------------------
// The plan.
// ---------------------------------------------------------------------------

/// New values for the settings fields the policy manages; `None` = unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SettingsChange {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admins: Option<BTreeSet<Principal>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only_admins: Option<BTreeSet<Principal>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lake_formation_only: Option<bool>,
}

impl SettingsChange {
    pub fn is_empty(&self) -> bool {
        self.admins.is_none()
            && self.read_only_admins.is_none()
            && self.lake_formation_only.is_none()
    }
}

/// One entry of a batch grant or revoke.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GrantChange {
    pub principal: Principal,
    pub resource: Resource,
    pub permissions: BTreeSet<String>,
    pub grantable: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LfTagChange {
    pub key: String,
    /// The key does not exist yet and is created with `add`.
    pub create: bool,
    pub add: BTreeSet<String>,
    pub remove: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TagAssignmentChange {
    pub target: TagTarget,
    /// Every tag the target should carry (sent whole: some implementations
    /// replace the resource's tags on each add).
    pub set: BTreeMap<String, String>,
    /// Managed keys the target carries but should not.
    pub remove: BTreeMap<String, BTreeSet<String>>,
}

/// Everything that differs between the policy and the state.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Plan {
    #[serde(skip_serializing_if = "SettingsChange::is_empty")]
    pub settings: SettingsChange,
    pub register_locations: Vec<String>,
    pub lf_tags: Vec<LfTagChange>,
    pub tag_assignments: Vec<TagAssignmentChange>,
    /// Revokes run before grants, so a grant option can be dropped by revoking
    /// the permission and granting it again without the option.
    pub revokes: Vec<GrantChange>,
    pub grants: Vec<GrantChange>,
    /// Revokes the plan will not make because they would take permissions
    /// from the identity this function runs as.
    pub protected: Vec<GrantChange>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.settings.is_empty()
            && self.register_locations.is_empty()
            && self.lf_tags.is_empty()
            && self.tag_assignments.is_empty()
            && self.revokes.is_empty()
            && self.grants.is_empty()
    }

    /// Grants that differ from the policy: each principal-resource pair that
    /// needs a grant or a revoke counts once.
    pub fn drifted_grants(&self) -> usize {
        let keys: BTreeSet<(&Principal, &Resource)> = self
            .grants
            .iter()
            .chain(&self.revokes)
            .map(|c| (&c.principal, &c.resource))
            .collect();
        keys.len()
    }

    /// The part of the plan about one database: what a new table there needs.
    /// Account-wide changes (settings, locations, tag keys) are left to full runs.
    pub fn within_database(self, database: &str) -> Plan {
        let inside = |c: &GrantChange| c.resource.database() == Some(database);
        Plan {
            settings: SettingsChange::default(),
            register_locations: Vec::new(),
            lf_tags: Vec::new(),
            tag_assignments: self
                .tag_assignments
                .into_iter()
                .filter(|t| t.target.database() == database)
                .collect(),
            revokes: self.revokes.into_iter().filter(inside).collect(),
            grants: self.grants.into_iter().filter(inside).collect(),
            protected: self.protected.into_iter().filter(inside).collect(),
        }
    }
}

fn has_iam_allowed(defaults: &BTreeSet<Principal>) -> bool {
    defaults.contains(IAM_ALLOWED_PRINCIPALS)
}

/// The settings change: read-modify-write of the managed fields only. A
/// managed admin list always keeps the identity this function runs as (as it
/// is listed now, or as its role): `PutDataLakeSettings` replaces the list
/// whole, and without being an admin the function could grant nothing more.
pub fn settings_change(current: &SettingsView, desired: &Desired, caller: &str) -> SettingsChange {
    let mut change = SettingsChange::default();
    if let Some(admins) = &desired.admins {
        let mut wanted = admins.clone();
        wanted.extend(
            current
                .admins
                .iter()
                .filter(|a| is_caller(a, caller))
                .cloned(),
        );
        if !wanted.iter().any(|a| is_caller(a, caller)) {
            wanted.insert(caller_principal(caller));
        }
        if wanted != current.admins {
            change.admins = Some(wanted);
        }
    }
    if let Some(read_only) = &desired.read_only_admins {
        if *read_only != current.read_only_admins {
            change.read_only_admins = Some(read_only.clone());
        }
    }
    if let Some(lf_only) = desired.lake_formation_only {
        let iam_kept = has_iam_allowed(&current.create_database_defaults)
            || has_iam_allowed(&current.create_table_defaults);
        let iam_everywhere = has_iam_allowed(&current.create_database_defaults)
            && has_iam_allowed(&current.create_table_defaults);
        if (lf_only && iam_kept) || (!lf_only && !iam_everywhere) {
            change.lake_formation_only = Some(lf_only);
        }
    }
    change
}

/// The last check before `PutDataLakeSettings`, which IAM cannot scope (Lake
/// Formation has no resource types) and which replaces the admin list whole:
/// an admin list this function writes must keep the function itself. Pure.
pub fn check_admins_keep_caller(
    change: &SettingsChange,
    caller: &str,
) -> lakeops_shared::Result<()> {
    match &change.admins {
        Some(admins) if !admins.iter().any(|a| is_caller(a, caller)) => {
            Err(lakeops_shared::Error::terminal(format!(
                "refusing PutDataLakeSettings: the admin list {admins:?} drops {}, the identity this \
                 function runs as (it could grant nothing afterwards)",
                caller_principal(caller)
            )))
        }
        _ => Ok(()),
    }
}

/// The grants and revokes for one principal-resource pair.
fn grant_diff(
    principal: &Principal,
    resource: &Resource,
    desired: &Permissions,
    current: &Permissions,
    revocable: bool,
) -> (Option<GrantChange>, Option<GrantChange>) {
    let (mut revoke_p, revoke_g): (BTreeSet<String>, BTreeSet<String>) = if revocable {
        (
            current
                .permissions
                .difference(&desired.permissions)
                .cloned()
                .collect(),
            current
                .grantable
                .difference(&desired.grantable)
                .cloned()
                .collect(),
        )
    } else {
        Default::default()
    };
    // A grant option that must go while its permission stays: revoke the
    // permission with its option, then grant the permission alone.
    let regrant: BTreeSet<String> = revoke_g
        .intersection(&desired.permissions)
        .cloned()
        .collect();
    revoke_p.extend(regrant.iter().cloned());
    let grant_g: BTreeSet<String> = desired
        .grantable
        .difference(&current.grantable)
        .cloned()
        .collect();
    let mut grant_p: BTreeSet<String> = desired
        .permissions
        .difference(&current.permissions)
        .cloned()
        .collect();
    grant_p.extend(regrant);
    grant_p.extend(grant_g.iter().cloned());
    let change = |permissions: BTreeSet<String>, grantable: BTreeSet<String>| {
        (!permissions.is_empty() || !grantable.is_empty()).then(|| GrantChange {
            principal: principal.clone(),
            resource: resource.clone(),
            permissions,
            grantable,
        })
    };
    (change(grant_p, grant_g), change(revoke_p, revoke_g))
}

/// The whole difference between the desired and the current state.
pub fn diff(desired: &Desired, current: &LakeState, caller: &str) -> Plan {
    let mut plan = Plan {
        settings: settings_change(&current.settings, desired, caller),
        ..Plan::default()
    };

    plan.register_locations = desired
        .locations
        .iter()
        .filter(|l| l.register && !current.registered_locations.contains(&l.arn))
        .map(|l| l.arn.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();

    for (key, values) in &desired.lf_tags {
        match current.lf_tags.get(key) {
            None => plan.lf_tags.push(LfTagChange {
                key: key.clone(),
                create: true,
                add: values.clone(),
                remove: BTreeSet::new(),
            }),
            Some(existing) => {
                let add: BTreeSet<String> = values.difference(existing).cloned().collect();
                let remove: BTreeSet<String> = existing.difference(values).cloned().collect();
                if !add.is_empty() || !remove.is_empty() {
                    plan.lf_tags.push(LfTagChange {
                        key: key.clone(),
                        create: false,
                        add,
                        remove,
                    });
                }
            }
        }
    }

    let empty = TagAssignment::new();
    for (target, wanted) in &desired.tag_assignments {
        let assigned = current.tag_assignments.get(target).unwrap_or(&empty);
        let differs = wanted
            .iter()
            .any(|(k, v)| assigned.get(k) != Some(&BTreeSet::from([v.clone()])));
        let remove: BTreeMap<String, BTreeSet<String>> = assigned
            .iter()
            .filter(|(k, values)| {
                desired.lf_tags.contains_key(*k) && !wanted.contains_key(*k) && !values.is_empty()
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if differs || !remove.is_empty() {
            plan.tag_assignments.push(TagAssignmentChange {
                target: target.clone(),
                set: if differs {
                    wanted.clone()
                } else {
                    BTreeMap::new()
                },
                remove,
            });
        }
    }

    let nothing = Permissions::default();
    let keys: BTreeSet<&(Principal, Resource)> =
        desired.grants.keys().chain(current.grants.keys()).collect();
    for key in keys {
        let (principal, resource) = key;
        let wanted = desired.grants.get(key).unwrap_or(&nothing);
        let held = current.grants.get(key).unwrap_or(&nothing);
        let managed = desired.managed.contains(principal);
        let running_identity = is_caller(principal, caller);
        let (grant, revoke) = grant_diff(
            principal,
            resource,
            wanted,
            held,
            managed && !running_identity,
        );
        plan.grants.extend(grant);
        plan.revokes.extend(revoke);
        if managed && running_identity {
            let (_, withheld) = grant_diff(principal, resource, wanted, held, true);
            plan.protected.extend(withheld);
        }
    }
    plan
}

/// Split entries into calls of at most [`MAX_BATCH`].
pub fn batches<T>(entries: &[T]) -> impl Iterator<Item = &[T]> {
    entries.chunks(MAX_BATCH)
}

/// What the state is after a plan is applied, following Lake Formation's
/// semantics (the model the property tests check the plan against).
pub fn apply(state: &LakeState, plan: &Plan) -> LakeState {
    let mut next = state.clone();
    if let Some(admins) = &plan.settings.admins {
        next.settings.admins = admins.clone();
    }
    if let Some(read_only) = &plan.settings.read_only_admins {
        next.settings.read_only_admins = read_only.clone();
    }
    if let Some(lf_only) = plan.settings.lake_formation_only {
        for defaults in [
            &mut next.settings.create_database_defaults,
            &mut next.settings.create_table_defaults,
        ] {
            if lf_only {
                defaults.remove(IAM_ALLOWED_PRINCIPALS);
            } else {
                defaults.insert(IAM_ALLOWED_PRINCIPALS.to_string());
            }
        }
    }
    next.registered_locations
        .extend(plan.register_locations.iter().cloned());
    for change in &plan.lf_tags {
        let values = next.lf_tags.entry(change.key.clone()).or_default();
        values.extend(change.add.iter().cloned());
        values.retain(|v| !change.remove.contains(v));
    }
    for change in &plan.tag_assignments {
        let assigned = next
            .tag_assignments
            .entry(change.target.clone())
            .or_default();
        for (key, value) in &change.set {
            assigned.insert(key.clone(), BTreeSet::from([value.clone()]));
        }
        for key in change.remove.keys() {
            assigned.remove(key);
        }
    }
    for revoke in &plan.revokes {
        let key = (revoke.principal.clone(), revoke.resource.clone());
        if let Some(held) = next.grants.get_mut(&key) {
            held.permissions.retain(|p| !revoke.permissions.contains(p));
            held.grantable
                .retain(|p| !revoke.permissions.contains(p) && !revoke.grantable.contains(p));
            if held.is_empty() {
                next.grants.remove(&key);
            }
        }
    }
    for grant in &plan.grants {
        let held = next
            .grants
            .entry((grant.principal.clone(), grant.resource.clone()))
            .or_default();
        held.permissions.extend(grant.permissions.iter().cloned());
        held.grantable.extend(grant.grantable.iter().cloned());
    }
    next
}

/// The permissions one table has, directly or through a wildcard on its
/// database: what a new table gets from the policy the moment it exists.
pub fn effective_on_table(
    grants: &GrantMap,
    database: &str,
    table: &str,
) -> BTreeMap<Principal, Permissions> {
    let mut effective: BTreeMap<Principal, Permissions> = BTreeMap::new();
    for ((principal, resource), permissions) in grants {
        let covers = match resource {
            Resource::Table { database: d, name } => d == database && name == table,
            Resource::AllTables { database: d } => d == database,
            _ => false,
        };
        if covers {
            effective
                .entry(principal.clone())
                .or_default()
                .merge(permissions);
        }
    }
    effective
}
