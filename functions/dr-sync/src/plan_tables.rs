//! The tables and views stages of the plan.

use std::collections::BTreeMap;

use crate::inventory::{Inventory, Table};
use crate::mapping::FullName;
use crate::plan::{copy_of, synced_tables, Action, Copy, Plan, Stage};
use crate::spec::DrSpec;
use crate::sql;
use crate::views;

/// Why a table needs copying, or None when the secondary has the source's version.
fn clone_reason(source: &Table, target: Option<&Table>) -> Option<&'static str> {
    let Some(have) = target else {
        return Some("missing");
    };
    if have.cloned_source_version.is_none() {
        // Written to on the secondary, or not made by a clone: re-clone replaces it.
        return Some("not a clone of the source at its last commit");
    }
    if have.cloned_source_version != source.version {
        return Some("source changed");
    }
    if !same_columns(source, have) {
        return Some("columns differ");
    }
    None
}

pub(crate) fn same_columns(a: &Table, b: &Table) -> bool {
    a.columns.len() == b.columns.len()
        && a.columns.iter().zip(&b.columns).all(|(x, y)| {
            x.name.eq_ignore_ascii_case(&y.name) && x.type_text.eq_ignore_ascii_case(&y.type_text)
        })
}

fn version_text(v: Option<i64>) -> String {
    v.map_or_else(|| "none".to_string(), |v| v.to_string())
}

pub(crate) fn plan_tables(
    spec: &DrSpec,
    primary: &Inventory,
    secondary: &Inventory,
    out: &mut Plan,
) {
    for (t, target) in synced_tables(spec, primary) {
        if t.is_view() {
            continue;
        }
        let object = target.to_string();
        match copy_of(spec, t) {
            Copy::Clone { external } => {
                let location = if external {
                    match t.storage_location.as_deref().map(|l| spec.map_location(l)) {
                        Some(Ok(l)) => Some(l),
                        Some(Err(reason)) => {
                            out.skip("table", &object, reason, true);
                            continue;
                        }
                        None => {
                            out.skip(
                                "table",
                                &object,
                                "external table without a storage location",
                                true,
                            );
                            continue;
                        }
                    }
                } else {
                    None
                };
                let have = secondary.tables.get(&target);
                let Some(reason) = clone_reason(t, have) else {
                    continue;
                };
                let source = spec.shared_name(&t.name);
                let target_version = have.and_then(|h| h.version);
                let stage = if external {
                    Stage::ExternalTables
                } else {
                    Stage::ManagedTables
                };
                out.push(
                    stage,
                    "table",
                    &object,
                    format!(
                        "deep clone {} into {object} ({reason}), source version {}, target version {}",
                        t.name,
                        version_text(t.version),
                        version_text(target_version)
                    ),
                    Action::Clone {
                        target: object.clone(),
                        source: source.to_string(),
                        source_version: t.version,
                        target_version,
                        statement: sql::deep_clone(&target, &source, location.as_deref()),
                    },
                );
            }
            Copy::Metadata => plan_metadata_table(spec, t, &target, secondary, out),
            Copy::No(reason) => out.skip("table", &object, reason, false),
        }
    }
}

/// An external table whose files S3 replication copies: re-created at the mapped
/// location when missing or when its location, format or columns differ.
fn plan_metadata_table(
    spec: &DrSpec,
    t: &Table,
    target: &FullName,
    secondary: &Inventory,
    out: &mut Plan,
) {
    let object = target.to_string();
    let location = match t.storage_location.as_deref().map(|l| spec.map_location(l)) {
        Some(Ok(l)) => l,
        Some(Err(reason)) => return out.skip("table", &object, reason, true),
        None => {
            return out.skip(
                "table",
                &object,
                "external table without a storage location",
                true,
            )
        }
    };
    let format = t.format.clone().unwrap_or_else(|| "DELTA".into());
    let have = secondary.tables.get(target);
    let reason = match have {
        None => "missing",
        Some(h) if h.storage_location.as_deref() != Some(location.as_str()) => "location differs",
        Some(h)
            if !h
                .format
                .as_deref()
                .unwrap_or("DELTA")
                .eq_ignore_ascii_case(&format) =>
        {
            "format differs"
        }
        Some(h) if !t.is_delta() && !same_columns(t, h) => "columns differ",
        Some(_) => return,
    };
    out.statement(
        Stage::ExternalTables,
        "table",
        &object,
        format!("create external table {object} over {location} ({reason})"),
        sql::create_external_table(target, &t.columns, &format, &location, have.is_some()),
    );
}

/// Source catalog -> target catalog, for the mappings that rename.
pub(crate) fn catalog_renames(spec: &DrSpec) -> BTreeMap<String, String> {
    spec.catalogs
        .iter()
        .filter(|m| !m.source.eq_ignore_ascii_case(m.target_name()))
        .map(|m| (m.source.to_lowercase(), m.target_name().to_lowercase()))
        .collect()
}

/// Views, after the views they read, with definitions naming the secondary's catalogs.
pub(crate) fn plan_views(
    spec: &DrSpec,
    primary: &Inventory,
    secondary: &Inventory,
    out: &mut Plan,
) {
    let renames = catalog_renames(spec);
    let synced: BTreeMap<FullName, (&Table, FullName)> = synced_tables(spec, primary)
        .filter(|(t, _)| t.is_view())
        .map(|(t, target)| (t.name.clone(), (t, target)))
        .collect();
    let deps: BTreeMap<FullName, Vec<FullName>> = synced
        .iter()
        .map(|(name, (t, _))| (name.clone(), t.view_dependencies.clone()))
        .collect();
    let (order, cyclic) = views::creation_order(&deps);
    for name in cyclic {
        let target = &synced[&name].1;
        out.skip(
            "view",
            &target.to_string(),
            "the view is in a dependency cycle",
            true,
        );
    }
    for name in order {
        let (t, target) = &synced[&name];
        let Some(definition) = t.view_definition.as_deref() else {
            out.skip(
                "view",
                &target.to_string(),
                "the primary returned no view definition",
                true,
            );
            continue;
        };
        let definition = views::rewrite_catalogs(definition, &renames);
        let have = secondary.tables.get(target);
        let reason = match have {
            None => "missing",
            Some(h) if h.view_definition.as_deref().map(str::trim) != Some(definition.trim()) => {
                "definition differs"
            }
            Some(_) => continue,
        };
        let object = target.to_string();
        out.push(
            Stage::Views,
            "view",
            &object,
            format!("create view {object} ({reason})"),
            Action::Statement {
                statement: sql::create_view(target, &definition),
                schema: Some(format!("{}.{}", target.catalog, target.schema)),
            },
        );
        if let Some(change) = out.changes.last_mut() {
            change.after = t
                .view_dependencies
                .iter()
                .filter_map(|d| synced.get(d).map(|(_, target)| target.to_string()))
                .collect();
        }
    }
}
