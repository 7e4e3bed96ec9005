//! CREATE [OR REPLACE] TABLE [IF NOT EXISTS] target {DEEP|SHALLOW} CLONE source.
//!
//! A DEEP clone copies the source's schema (column comments included), data files
//! (keeping their ids, so a later clone knows which files it already has) and
//! properties, and records a CLONE commit on the target. The table's description is
//! not cloned ("Metadata not cloned are the table description and user-defined commit
//! metadata", Databricks' CLONE page): a new target has none, and a replaced target
//! loses its own unless the statement sets one. Re-cloning into an existing target (OR REPLACE) is
//! incremental, as in Delta: files the target has and the source no longer has are
//! removed, files the source has and the target lacks are copied, so an unchanged
//! source copies nothing. A SHALLOW clone references the source's files: the target
//! reads the same rows, and nothing is reported as copied.
//!
//! The source may be read through a Delta Sharing catalog (`uc_data::resolve_table`).

use std::collections::BTreeSet;

use serde_json::json;

use super::ast::{CreateTable, Name};
use super::ddl::{apply_options, table_info};
use super::dml::commit;
use super::error::{SqlError, SqlResult};
use super::names::{check_creatable, data, data_mut, qualify, read_table};
use super::{ResultSet, Session};
use crate::state::State;
use crate::uc_data::{DataFile, TableRecord};

/// The metrics a clone reports (Delta's result columns).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CloneMetrics {
    pub source_table_size: i64,
    pub source_num_of_files: i64,
    pub num_removed_files: i64,
    pub num_copied_files: i64,
    pub removed_files_size: i64,
    pub copied_files_size: i64,
}

impl CloneMetrics {
    fn result(&self) -> ResultSet {
        ResultSet::metrics(&[
            ("source_table_size", self.source_table_size),
            ("source_num_of_files", self.source_num_of_files),
            ("num_removed_files", self.num_removed_files),
            ("num_copied_files", self.num_copied_files),
            ("removed_files_size", self.removed_files_size),
            ("copied_files_size", self.copied_files_size),
        ])
    }
}

/// What a clone of `source` into a target that has `target_files` changes.
pub fn clone_metrics(source: &[DataFile], target_files: &[DataFile], deep: bool) -> CloneMetrics {
    let have: BTreeSet<&str> = target_files.iter().map(|f| f.id.as_str()).collect();
    let want: BTreeSet<&str> = source.iter().map(|f| f.id.as_str()).collect();
    let removed: Vec<&DataFile> = target_files
        .iter()
        .filter(|f| !want.contains(f.id.as_str()))
        .collect();
    let copied: Vec<&DataFile> = source
        .iter()
        .filter(|f| !have.contains(f.id.as_str()))
        .collect();
    CloneMetrics {
        source_table_size: source.iter().map(|f| f.size_bytes).sum(),
        source_num_of_files: source.len() as i64,
        num_removed_files: removed.len() as i64,
        removed_files_size: removed.iter().map(|f| f.size_bytes).sum(),
        num_copied_files: if deep { copied.len() as i64 } else { 0 },
        copied_files_size: if deep {
            copied.iter().map(|f| f.size_bytes).sum()
        } else {
            0
        },
    }
}

pub fn clone_table(
    state: &mut State,
    session: &Session,
    c: &CreateTable,
    source: &Name,
    deep: bool,
) -> SqlResult<ResultSet> {
    let target = qualify(&c.name, session);
    let source_full = qualify(source, session);
    let src = read_table(state, session, &source_full)?;
    if src.table.is_view() {
        return Err(SqlError::new(
            "DELTA_CLONE_UNSUPPORTED_SOURCE",
            "0AKDC",
            format!("Unsupported clone source 'VIEW' {}, whose format is VIEW. The supported formats are 'delta', 'iceberg' and 'parquet'.", super::error::quoted(&source_full)),
        ));
    }
    let src: TableRecord = src.table.clone();
    check_creatable(state, session, &target, "CLONE")?;
    let old = data(state, session)?.tables.get(&target).cloned();
    match &old {
        Some(_) if c.mode.if_not_exists => return Ok(ResultSet::empty()),
        Some(t) if c.mode.or_replace && t.is_view() => {
            return Err(SqlError::new(
                "EXPECT_TABLE_NOT_VIEW.NO_ALTERNATIVE",
                "42809",
                format!(
                    "'CREATE OR REPLACE TABLE' expects a table but {} is a view.",
                    super::error::quoted(&target)
                ),
            ))
        }
        Some(_) if !c.mode.or_replace => return Err(SqlError::table_exists(&target)),
        _ => {}
    }
    let metrics = clone_metrics(
        &src.files,
        old.as_ref().map(|t| t.files.as_slice()).unwrap_or_default(),
        deep,
    );
    let mut record = match old {
        Some(mut t) => {
            t.columns = src.columns.clone();
            t
        }
        None => TableRecord {
            info: table_info(state, session, &target, "MANAGED"),
            columns: src.columns.clone(),
            files: vec![],
            version: 0,
            history: vec![],
        },
    };
    record.files = src.files.clone();
    if let Some(o) = record.info.as_object_mut() {
        o.remove("comment");
    }
    for field in ["properties"] {
        match src.info.get(field) {
            Some(v) if !v.is_null() => record.info[field] = v.clone(),
            _ => {
                if let Some(o) = record.info.as_object_mut() {
                    o.remove(field);
                }
            }
        }
    }
    if let Some(f) = src.info.get("data_source_format") {
        record.info["data_source_format"] = f.clone();
    }
    apply_options(&mut record.info, &c.options);
    if !deep {
        record.info["properties"]["clone.source"] = json!(source_full);
    }
    commit(
        &mut record,
        session,
        "CLONE",
        &[
            ("source", source_full.clone()),
            ("sourceVersion", src.version.to_string()),
            ("isShallow", (!deep).to_string()),
        ],
    );
    data_mut(state, session).tables.insert(target, record);
    Ok(metrics.result())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(id: &str, size: i64) -> DataFile {
        DataFile {
            id: id.into(),
            rows: vec![],
            size_bytes: size,
        }
    }

    #[test]
    fn a_first_deep_clone_copies_everything() {
        let m = clone_metrics(&[file("a", 10), file("b", 5)], &[], true);
        assert_eq!(
            m,
            CloneMetrics {
                source_table_size: 15,
                source_num_of_files: 2,
                num_removed_files: 0,
                num_copied_files: 2,
                removed_files_size: 0,
                copied_files_size: 15,
            }
        );
    }

    #[test]
    fn a_re_clone_copies_only_new_files_and_removes_gone_ones() {
        let same = clone_metrics(&[file("a", 10)], &[file("a", 10)], true);
        assert_eq!((same.num_copied_files, same.num_removed_files), (0, 0));
        let m = clone_metrics(
            &[file("a", 10), file("c", 3)],
            &[file("a", 10), file("b", 7)],
            true,
        );
        assert_eq!((m.num_copied_files, m.copied_files_size), (1, 3));
        assert_eq!((m.num_removed_files, m.removed_files_size), (1, 7));
    }

    #[test]
    fn a_shallow_clone_copies_nothing() {
        let m = clone_metrics(&[file("a", 10)], &[], false);
        assert_eq!(
            (
                m.num_copied_files,
                m.copied_files_size,
                m.source_num_of_files
            ),
            (0, 0, 1)
        );
    }
}
