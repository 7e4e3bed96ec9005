//! The reconciliation report: one line per synced object with its status and what
//! differs, and the replication lag. `reconcile` mode writes it; `apply` writes it after
//! converging; a planned failover refuses unless it is clean.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::inventory::{Grants, Inventory, Securable, Table};
use crate::mapping::FullName;
use crate::plan::{copy_of, synced_tables, Copy};
use crate::plan_tables::catalog_renames;
use crate::spec::DrSpec;
use crate::views;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Missing,
    Drifted,
    Extra,
    Failed,
    /// Not copied by design (a streaming table, a managed volume).
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    pub kind: String,
    pub source: Option<String>,
    pub target: String,
    pub status: Status,
    pub source_version: Option<i64>,
    pub target_version: Option<i64>,
    pub source_rows: Option<u64>,
    pub target_rows: Option<u64>,
    pub schema_diff: Vec<String>,
    pub grant_diff: Vec<String>,
    pub tag_diff: Vec<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub ok: usize,
    pub missing: usize,
    pub drifted: usize,
    pub extra: usize,
    pub failed: usize,
    pub skipped: usize,
    /// Age of the oldest source change not yet on the secondary; 0 when in sync.
    pub replication_lag_seconds: u64,
    /// Tables behind the primary whose commit times were not read (lag unknown).
    pub lag_unknown: usize,
    /// Nothing missing, drifted or failed (extras kept by design do not count).
    pub clean: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub summary: Summary,
    pub lines: Vec<Line>,
}

fn line(kind: &str, source: Option<String>, target: String) -> Line {
    Line {
        kind: kind.into(),
        source,
        target,
        status: Status::Ok,
        source_version: None,
        target_version: None,
        source_rows: None,
        target_rows: None,
        schema_diff: vec![],
        grant_diff: vec![],
        tag_diff: vec![],
        error: None,
    }
}

/// Compares the two sides. `failures` are the objects whose last apply failed, with
/// their error (they are `failed` whatever they look like now).
pub fn reconcile(
    spec: &DrSpec,
    primary: &Inventory,
    secondary: &Inventory,
    failures: &BTreeMap<String, String>,
    now_ms: i64,
) -> Report {
    let mut lines = Vec::new();
    let mut oldest_unreplicated: Option<i64> = None;
    let mut lag_unknown = 0;
    let renames = catalog_renames(spec);
    for (t, target) in synced_tables(spec, primary) {
        let have = secondary.tables.get(&target);
        let mut l = table_line(spec, t, &target, have, &renames);
        l.grant_diff = grant_diff(
            spec,
            primary,
            secondary,
            &Securable::new("TABLE", t.name.to_string()),
        );
        l.tag_diff = tag_diff(spec, primary, secondary, t);
        if l.status == Status::Ok && !(l.grant_diff.is_empty() && l.tag_diff.is_empty()) {
            l.status = Status::Drifted;
        }
        if matches!(copy_of(spec, t), Copy::Clone { .. })
            && matches!(l.status, Status::Missing | Status::Drifted)
        {
            let cloned = have.and_then(|h| h.cloned_source_version);
            let pending = t
                .commit_times
                .iter()
                .filter(|(v, _)| cloned.is_none_or(|c| **v > c));
            match pending.map(|(_, ts)| *ts).min() {
                Some(ts) => {
                    oldest_unreplicated = Some(oldest_unreplicated.map_or(ts, |o: i64| o.min(ts)))
                }
                None if t.version != cloned => lag_unknown += 1,
                None => {}
            }
        }
        lines.push(l);
    }
    object_lines(spec, primary, secondary, &mut lines);
    for (object, error) in failures {
        match lines.iter_mut().find(|l| &l.target == object) {
            Some(l) => {
                l.status = Status::Failed;
                l.error = Some(error.clone());
            }
            None => {
                let mut l = line("object", None, object.clone());
                l.status = Status::Failed;
                l.error = Some(error.clone());
                lines.push(l);
            }
        }
    }
    lines.sort_by(|a, b| (&a.target, &a.kind).cmp(&(&b.target, &b.kind)));
    let count = |s: Status| lines.iter().filter(|l| l.status == s).count();
    let mut summary = Summary {
        ok: count(Status::Ok),
        missing: count(Status::Missing),
        drifted: count(Status::Drifted),
        extra: count(Status::Extra),
        failed: count(Status::Failed),
        skipped: count(Status::Skipped),
        replication_lag_seconds: oldest_unreplicated
            .map_or(0, |ts| ((now_ms - ts).max(0) / 1000) as u64),
        lag_unknown,
        clean: false,
    };
    summary.clean = summary.missing + summary.drifted + summary.failed == 0;
    Report { summary, lines }
}

fn table_line(
    spec: &DrSpec,
    t: &Table,
    target: &FullName,
    have: Option<&Table>,
    renames: &BTreeMap<String, String>,
) -> Line {
    let kind = if t.is_view() { "view" } else { "table" };
    let mut l = line(kind, Some(t.name.to_string()), target.to_string());
    l.source_version = t.version;
    l.source_rows = t.row_count;
    let Some(h) = have else {
        l.status = match copy_of(spec, t) {
            Copy::No(reason) if !t.is_view() => {
                l.error = Some(reason.into());
                Status::Skipped
            }
            _ => Status::Missing,
        };
        return l;
    };
    l.target_version = h.version;
    l.target_rows = h.row_count;
    l.schema_diff = schema_diff(t, h);
    let behind =
        matches!(copy_of(spec, t), Copy::Clone { .. }) && h.cloned_source_version != t.version;
    let definition_differs = t.is_view()
        && t.view_definition
            .as_deref()
            .map(|d| views::rewrite_catalogs(d, renames).trim().to_string())
            != h.view_definition.as_deref().map(|d| d.trim().to_string());
    if definition_differs {
        l.schema_diff.push("view definition differs".into());
    }
    let rows_differ = !behind
        && !t.is_view()
        && t.row_count.is_some()
        && h.row_count.is_some()
        && t.row_count != h.row_count;
    if rows_differ {
        l.schema_diff
            .push("row counts differ at the same version".into());
    }
    if behind || !l.schema_diff.is_empty() || h.comment != t.comment {
        l.status = Status::Drifted;
    }
    l
}

/// Column differences, target against source: `+col type`, `-col`, `col: a -> b`.
pub fn schema_diff(source: &Table, target: &Table) -> Vec<String> {
    let mut out = Vec::new();
    for c in &source.columns {
        match target
            .columns
            .iter()
            .find(|x| x.name.eq_ignore_ascii_case(&c.name))
        {
            None => out.push(format!("-{} (missing on the secondary)", c.name)),
            Some(x) if !x.type_text.eq_ignore_ascii_case(&c.type_text) => {
                out.push(format!("{}: {} -> {}", c.name, c.type_text, x.type_text))
            }
            Some(x) if x.comment != c.comment => out.push(format!("{}: comment differs", c.name)),
            Some(_) => {}
        }
    }
    for x in &target.columns {
        if !source
            .columns
            .iter()
            .any(|c| c.name.eq_ignore_ascii_case(&x.name))
        {
            out.push(format!(
                "+{} {} (only on the secondary)",
                x.name, x.type_text
            ));
        }
    }
    out
}

fn grant_diff(
    spec: &DrSpec,
    primary: &Inventory,
    secondary: &Inventory,
    source: &Securable,
) -> Vec<String> {
    let Some(target) = spec.map_securable(source) else {
        return vec![];
    };
    let empty = Grants::new();
    let mut want = Grants::new();
    for (p, privs) in primary.grants.get(source).unwrap_or(&empty) {
        want.entry(spec.map_principal(p).to_string())
            .or_default()
            .extend(privs.iter().cloned());
    }
    let have = secondary.grants.get(&target).unwrap_or(&empty);
    let none = BTreeSet::new();
    let principals: BTreeSet<&String> = want.keys().chain(have.keys()).collect();
    let mut out = Vec::new();
    for p in principals {
        let (w, h) = (want.get(p).unwrap_or(&none), have.get(p).unwrap_or(&none));
        for missing in w.difference(h) {
            out.push(format!("{p}: {missing} missing"));
        }
        if !p.eq_ignore_ascii_case(&spec.sync_principal) {
            for extra in h.difference(w) {
                out.push(format!("{p}: {extra} only on the secondary"));
            }
        }
    }
    out
}

fn tag_diff(spec: &DrSpec, primary: &Inventory, secondary: &Inventory, t: &Table) -> Vec<String> {
    let table = Securable::new("TABLE", t.name.to_string());
    let columns = t
        .columns
        .iter()
        .map(|c| Securable::new("COLUMN", format!("{}.{}", t.name, c.name)));
    let empty = BTreeMap::new();
    let mut out = Vec::new();
    for source in std::iter::once(table).chain(columns) {
        let Some(target) = spec.map_securable(&source) else {
            continue;
        };
        let want = primary.tags.get(&source).unwrap_or(&empty);
        let have = secondary.tags.get(&target).unwrap_or(&empty);
        for (k, v) in want {
            if have.get(k) != Some(v) {
                out.push(format!("{}: {k}={v} missing", target.name));
            }
        }
        for k in have.keys().filter(|k| !want.contains_key(*k)) {
            out.push(format!("{}: {k} only on the secondary", target.name));
        }
    }
    out
}

/// Volumes, functions, and the extras of the secondary.
fn object_lines(spec: &DrSpec, primary: &Inventory, secondary: &Inventory, lines: &mut Vec<Line>) {
    for v in primary.volumes.values() {
        let Some(target) = spec.target_of(&v.name) else {
            continue;
        };
        let mut l = line("volume", Some(v.name.to_string()), target.to_string());
        l.status = match secondary.volumes.get(&target) {
            _ if !v.volume_type.eq_ignore_ascii_case("EXTERNAL") => Status::Skipped,
            None => Status::Missing,
            Some(h) => match v
                .storage_location
                .as_deref()
                .map(|loc| spec.map_location(loc))
            {
                Some(Ok(want)) if h.storage_location.as_deref() == Some(want.as_str()) => {
                    Status::Ok
                }
                _ => Status::Drifted,
            },
        };
        lines.push(l);
    }
    let renames = catalog_renames(spec);
    for f in primary.functions.values() {
        let Some(target) = spec.target_of(&f.name) else {
            continue;
        };
        let mut l = line("function", Some(f.name.to_string()), target.to_string());
        l.status = match secondary.functions.get(&target) {
            _ if f.unsupported.is_some() => {
                l.error = f.unsupported.clone();
                Status::Skipped
            }
            None => Status::Missing,
            Some(h)
                if h.parameters == f.parameters
                    && h.returns == f.returns
                    && h.body.trim() == views::rewrite_catalogs(&f.body, &renames).trim() =>
            {
                Status::Ok
            }
            Some(_) => Status::Drifted,
        };
        lines.push(l);
    }
    let mut plan = crate::plan::Plan::default();
    let mut keep = spec.clone();
    keep.propagate_deletes = false;
    crate::plan_objects::plan_deletes(&keep, primary, secondary, &mut plan);
    for s in plan.skipped {
        let mut l = line(&s.kind, None, s.object);
        l.status = Status::Extra;
        lines.push(l);
    }
}
