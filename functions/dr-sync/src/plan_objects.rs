//! The volumes, functions, tags and comments, grants and deletes stages of the plan.

use std::collections::{BTreeMap, BTreeSet};

use crate::inventory::{Grants, Inventory, Securable};
use crate::mapping::FullName;
use crate::plan::{copy_of, synced_tables, Action, Copy, GrantChange, Plan, Stage};
use crate::plan_tables::catalog_renames;
use crate::spec::{DrSpec, ObjectKind};
use crate::sql;
use crate::views;

impl DrSpec {
    /// The secondary's securable for a primary one, when it is synced.
    pub fn map_securable(&self, s: &Securable) -> Option<Securable> {
        let parts: Vec<&str> = s.name.split('.').collect();
        let m = self.mapping_of(parts.first()?)?;
        let in_scope = match (s.kind.as_str(), parts.len()) {
            ("CATALOG", 1) => true,
            ("SCHEMA", 2) => m.includes_schema(parts[1]),
            ("COLUMN", 4) => m.includes_object(parts[1], parts[2]),
            (_, 3) => m.includes_object(parts[1], parts[2]),
            _ => false,
        };
        in_scope.then(|| s.with_catalog(m.target_name()))
    }

    /// The primary's securable for a secondary one, when the secondary's is in a
    /// synced catalog and within the spec's filters.
    pub fn source_securable(&self, s: &Securable) -> Option<Securable> {
        let m = self.mapping_into(s.catalog())?;
        let source = s.with_catalog(&m.source);
        self.map_securable(&source).map(|_| source)
    }
}

/// Whether a primary securable belongs to a table that is not copied (a streaming
/// table or materialized view): its tags, comments and grants have nothing to land on.
pub(crate) fn on_uncopied_table(spec: &DrSpec, primary: &Inventory, source: &Securable) -> bool {
    if !matches!(source.kind.as_str(), "TABLE" | "COLUMN") {
        return false;
    }
    let table: Vec<&str> = source.name.split('.').take(3).collect();
    FullName::parse(&table.join("."))
        .and_then(|name| primary.tables.get(&name))
        .is_some_and(|t| !t.is_view() && matches!(copy_of(spec, t), Copy::No(_)))
}

pub(crate) fn plan_volumes_and_functions(
    spec: &DrSpec,
    primary: &Inventory,
    secondary: &Inventory,
    out: &mut Plan,
) {
    if spec.objects.contains(&ObjectKind::Volumes) {
        for v in primary.volumes.values() {
            let Some(target) = spec.target_of(&v.name) else {
                continue;
            };
            let object = target.to_string();
            if !v.volume_type.eq_ignore_ascii_case("EXTERNAL") {
                out.skip(
                    "volume",
                    &object,
                    "managed volume files are not replicated; create it on the secondary if needed",
                    false,
                );
                continue;
            }
            let location = match v.storage_location.as_deref().map(|l| spec.map_location(l)) {
                Some(Ok(l)) => l,
                Some(Err(reason)) => {
                    out.skip("volume", &object, reason, true);
                    continue;
                }
                None => {
                    out.skip(
                        "volume",
                        &object,
                        "external volume without a storage location",
                        true,
                    );
                    continue;
                }
            };
            match secondary.volumes.get(&target) {
                None => out.statement(
                    Stage::Volumes,
                    "volume",
                    &object,
                    format!("create external volume {object} at {location}"),
                    sql::create_external_volume(&target, &location, v.comment.as_deref()),
                ),
                Some(have) if have.storage_location.as_deref() != Some(location.as_str()) => out.skip(
                    "volume",
                    &object,
                    format!(
                        "exists at {} instead of {location}; a volume's location cannot be changed in place",
                        have.storage_location.as_deref().unwrap_or("no location")
                    ),
                    true,
                ),
                Some(_) => {}
            }
        }
    }
    if spec.objects.contains(&ObjectKind::Functions) {
        let renames = catalog_renames(spec);
        for f in primary.functions.values() {
            let Some(target) = spec.target_of(&f.name) else {
                continue;
            };
            if let Some(reason) = &f.unsupported {
                out.skip("function", &target.to_string(), reason.clone(), false);
                continue;
            }
            let body = views::rewrite_catalogs(&f.body, &renames);
            let same = secondary.functions.get(&target).is_some_and(|h| {
                h.parameters == f.parameters
                    && h.returns == f.returns
                    && h.body.trim() == body.trim()
            });
            if same {
                continue;
            }
            let object = target.to_string();
            let verb = if secondary.functions.contains_key(&target) {
                "replace"
            } else {
                "create"
            };
            out.statement(
                Stage::Functions,
                "function",
                &object,
                format!("{verb} function {object}"),
                sql::create_function(
                    &target,
                    &f.parameters,
                    &f.returns,
                    &body,
                    f.comment.as_deref(),
                ),
            );
        }
    }
}

/// Tags on every synced securable (set what differs, unset what the primary lacks),
/// and comments on tables, views and table columns.
pub(crate) fn plan_tags_and_comments(
    spec: &DrSpec,
    primary: &Inventory,
    secondary: &Inventory,
    out: &mut Plan,
) {
    if spec.objects.contains(&ObjectKind::Tags) {
        let mut desired: BTreeMap<Securable, BTreeMap<String, String>> = BTreeMap::new();
        for (s, tags) in &primary.tags {
            if on_uncopied_table(spec, primary, s) {
                continue;
            }
            if let Some(target) = spec.map_securable(s) {
                desired.insert(target, tags.clone());
            }
        }
        for s in secondary.tags.keys() {
            if spec.source_securable(s).is_some() {
                desired.entry(s.clone()).or_default();
            }
        }
        let empty = BTreeMap::new();
        for (target, want) in desired {
            let have = secondary.tags.get(&target).unwrap_or(&empty);
            let set: BTreeMap<String, String> = want
                .iter()
                .filter(|(k, v)| have.get(*k) != Some(v))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let unset: Vec<String> = have
                .keys()
                .filter(|k| !want.contains_key(*k))
                .cloned()
                .collect();
            if set.is_empty() && unset.is_empty() {
                continue;
            }
            let description = format!(
                "tags of {} {}: set {:?}, unset {:?}",
                target.kind.to_lowercase(),
                target.name,
                set.keys().collect::<Vec<_>>(),
                unset
            );
            for statement in sql::tag_statements(&target, &set, &unset) {
                out.statement(
                    Stage::TagsComments,
                    "tags",
                    &target.name,
                    description.clone(),
                    statement,
                );
            }
        }
    }
    if spec.objects.contains(&ObjectKind::Comments) {
        for (t, target) in synced_tables(spec, primary) {
            if !t.is_view() && matches!(copy_of(spec, t), Copy::No(_)) {
                continue;
            }
            let have = secondary.tables.get(&target);
            let object = target.to_string();
            // DEEP CLONE does not copy a table's description: a replica this plan
            // clones (again) has none afterwards, whatever it has now.
            let recloned = out.changes.iter().any(
                |c| matches!(&c.action, crate::plan::Action::Clone { target, .. } if *target == object),
            );
            let have_comment = if recloned {
                None
            } else {
                have.and_then(|h| h.comment.as_ref())
            };
            if have_comment != t.comment.as_ref() && (have.is_some() || t.comment.is_some()) {
                out.statement(
                    Stage::TagsComments,
                    "comment",
                    &object,
                    format!("comment of {object}"),
                    sql::comment(&Securable::new("TABLE", &object), t.comment.as_deref()),
                );
            }
            if t.is_view() {
                continue; // a view's column comments come from its definition
            }
            for c in &t.columns {
                let have_comment = have
                    .and_then(|h| {
                        h.columns
                            .iter()
                            .find(|x| x.name.eq_ignore_ascii_case(&c.name))
                    })
                    .and_then(|x| x.comment.clone());
                if have_comment != c.comment && (have.is_some() || c.comment.is_some()) {
                    let column = format!("{object}.{}", c.name.to_lowercase());
                    out.statement(
                        Stage::TagsComments,
                        "comment",
                        &column,
                        format!("comment of column {column}"),
                        sql::comment(&Securable::new("COLUMN", &column), c.comment.as_deref()),
                    );
                }
            }
        }
    }
}

/// Grants on every synced securable, principals mapped. What the secondary has beyond
/// the primary is revoked, but never from the sync's own principal.
pub(crate) fn plan_grants(
    spec: &DrSpec,
    primary: &Inventory,
    secondary: &Inventory,
    out: &mut Plan,
) {
    let mut desired: BTreeMap<Securable, Grants> = BTreeMap::new();
    for (s, grants) in &primary.grants {
        if on_uncopied_table(spec, primary, s) {
            continue;
        }
        let Some(target) = spec.map_securable(s) else {
            continue;
        };
        let mapped = desired.entry(target).or_default();
        for (principal, privileges) in grants {
            mapped
                .entry(spec.map_principal(principal).to_string())
                .or_default()
                .extend(privileges.iter().cloned());
        }
    }
    for s in secondary.grants.keys() {
        if spec.source_securable(s).is_some() {
            desired.entry(s.clone()).or_default();
        }
    }
    let empty = Grants::new();
    for (target, want) in desired {
        let have = secondary.grants.get(&target).unwrap_or(&empty);
        let principals: BTreeSet<&String> = want.keys().chain(have.keys()).collect();
        let none = BTreeSet::new();
        let changes: Vec<GrantChange> = principals
            .into_iter()
            .filter_map(|p| {
                let w = want.get(p).unwrap_or(&none);
                let h = have.get(p).unwrap_or(&none);
                let add: BTreeSet<String> = w.difference(h).cloned().collect();
                let remove: BTreeSet<String> = if p.eq_ignore_ascii_case(&spec.sync_principal) {
                    BTreeSet::new()
                } else {
                    h.difference(w).cloned().collect()
                };
                (!add.is_empty() || !remove.is_empty()).then(|| GrantChange {
                    principal: p.clone(),
                    add,
                    remove,
                })
            })
            .collect();
        if changes.is_empty() {
            continue;
        }
        let description = format!(
            "grants on {} {}: {}",
            target.kind.to_lowercase(),
            target.name,
            changes
                .iter()
                .map(|c| format!("{} +{:?} -{:?}", c.principal, c.add, c.remove))
                .collect::<Vec<_>>()
                .join("; ")
        );
        out.push(
            Stage::Grants,
            "grants",
            &target.name.clone(),
            description,
            Action::UpdateGrants {
                securable: target,
                changes,
            },
        );
    }
}

/// Objects of the secondary's synced catalogs that the primary no longer has: dropped
/// when `propagate_deletes`, else reported as extra. Catalogs are never dropped.
pub(crate) fn plan_deletes(
    spec: &DrSpec,
    primary: &Inventory,
    secondary: &Inventory,
    out: &mut Plan,
) {
    // A source catalog that is not there (deleted, renamed, or unreadable to the sync)
    // would make its whole replica "extra": nothing of such a catalog is deleted.
    let source_present = |catalog: &str| primary.catalogs.contains_key(&catalog.to_lowercase());
    let source_of = |name: &FullName| -> Option<FullName> {
        let m = spec.mapping_into(&name.catalog)?;
        if !source_present(&m.source) {
            return None;
        }
        let source = name.with_catalog(&m.source);
        spec.target_of(&source).map(|_| source)
    };
    let mut extras: Vec<(u8, &str, String)> = Vec::new();
    for (name, t) in &secondary.tables {
        if source_of(name).is_some_and(|s| !primary.tables.contains_key(&s)) {
            let kind = if t.is_view() { "VIEW" } else { "TABLE" };
            extras.push((if t.is_view() { 0 } else { 1 }, kind, name.to_string()));
        }
    }
    for name in secondary.functions.keys() {
        if source_of(name).is_some_and(|s| !primary.functions.contains_key(&s)) {
            extras.push((2, "FUNCTION", name.to_string()));
        }
    }
    for name in secondary.volumes.keys() {
        if source_of(name).is_some_and(|s| !primary.volumes.contains_key(&s)) {
            extras.push((3, "VOLUME", name.to_string()));
        }
    }
    for full in secondary.schemas.keys() {
        let Some((catalog, schema)) = full.split_once('.') else {
            continue;
        };
        let Some(m) = spec.mapping_into(catalog) else {
            continue;
        };
        if !source_present(&m.source) {
            continue;
        }
        if m.includes_schema(schema)
            && !primary
                .schemas
                .contains_key(&format!("{}.{schema}", m.source.to_lowercase()))
        {
            extras.push((4, "SCHEMA", full.clone()));
        }
    }
    extras.sort();
    let objects: Vec<String> = extras
        .iter()
        .filter(|(_, k, _)| *k != "SCHEMA")
        .map(|(_, _, n)| n.clone())
        .collect();
    for (_, kind, name) in extras {
        let label = kind.to_lowercase();
        if spec.propagate_deletes {
            out.statement(
                Stage::Deletes,
                &label,
                &name,
                format!("drop {label} {name}: gone from the primary"),
                sql::drop(kind, &name),
            );
            // A schema goes after what is dropped from it (DROP SCHEMA of a schema
            // that still holds objects fails).
            if kind == "SCHEMA" {
                let prefix = format!("{name}.");
                if let Some(change) = out.changes.last_mut() {
                    change.after = objects
                        .iter()
                        .filter(|o| o.starts_with(&prefix))
                        .cloned()
                        .collect();
                }
            }
        } else {
            out.skip(
                &label,
                &name,
                "extra: it exists only on the secondary, and propagate_deletes is false",
                false,
            );
        }
    }
}
