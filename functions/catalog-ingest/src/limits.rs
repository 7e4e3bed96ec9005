//! Bounds on what one object may cost, so that a hostile file fails alone,
//! with a reason, instead of taking the CPU time of the whole SQS batch.
//!
//! - Bytes: a text sample is at most `TEXT_SAMPLE_BYTES`, and gunzip stops at
//!   `max_decompressed_bytes` (1 MiB); a Parquet footer at `MAX_FOOTER_BYTES`.
//! - Work: what can grow faster than bytes (values typed, nested types
//!   merged, schema elements and fields checked) is counted against a
//!   per-object [`Work`] budget. The count is deterministic, unlike a clock:
//!   the same file is refused on every delivery, and tests can count it.
//! - Shape: at most [`MAX_NESTED_FIELDS`] nested fields per object, nesting
//!   at most `glue_type::MAX_DEPTH` levels, and a column type of at most
//!   [`MAX_TYPE_CHARS`] characters, Glue's limit for `Column.Type`.
//!
//! Every check inside the budget is linear (names are checked with sets and
//! maps), so the budget is a backstop, not the thing that keeps good files
//! fast.

use crate::format::Column;
use crate::glue_type::GlueType;
use crate::names::Reason;
use std::fmt::Write;

/// Glue's maximum length of a column type string (API `Column.Type`:
/// "Length Constraints: Minimum length of 0. Maximum length of 131072",
/// <https://docs.aws.amazon.com/glue/latest/webapi/API_Column.html>).
pub const MAX_TYPE_CHARS: usize = 131_072;

/// Nested fields (struct fields, array items, map keys and values, at any
/// depth below the columns) one object's schema may have, over all columns.
pub const MAX_NESTED_FIELDS: usize = 10_000;

/// Units of work one object may cost. One unit is one value typed, one node
/// of a type merged or sized, or one schema element or field checked: about
/// 1 MiB of dense JSON costs 0.4 M units, a 1000-row sample of a 2000-column
/// CSV 2 M.
pub const DEFAULT_WORK_BUDGET: u64 = 4_000_000;

/// A per-object work counter: [`Work::spend`] fails once the budget is used up.
#[derive(Debug, Clone)]
pub struct Work {
    limit: u64,
    spent: u64,
}

impl Work {
    pub fn new(limit: u64) -> Self {
        Self { limit, spent: 0 }
    }

    /// Count `units` of work, or say that the object needs more than its budget.
    pub fn spend(&mut self, units: u64) -> Result<(), Reason> {
        self.spent = self.spent.saturating_add(units);
        if self.spent > self.limit {
            return Err(format!(
                "inferring the schema needs more than the per-object work budget of {} units (values typed, nested types merged, schema fields checked)",
                self.limit
            ));
        }
        Ok(())
    }

    /// The units counted so far.
    pub fn spent(&self) -> u64 {
        self.spent
    }
}

impl Default for Work {
    fn default() -> Self {
        Self::new(DEFAULT_WORK_BUDGET)
    }
}

/// The reason for more than [`MAX_NESTED_FIELDS`] nested fields.
pub fn too_many_nested_fields(what: &str) -> Reason {
    format!("{what} has more than {MAX_NESTED_FIELDS} nested fields (the per-object limit)")
}

/// The nested fields of a type: every node below its root.
pub fn nested_fields(ty: &GlueType, work: &mut Work) -> Result<usize, Reason> {
    work.spend(1)?;
    Ok(match ty {
        GlueType::Array(item) => 1 + nested_fields(item, work)?,
        GlueType::Map(key, value) => 2 + nested_fields(key, work)? + nested_fields(value, work)?,
        GlueType::Struct(fields) => {
            let mut n = fields.len();
            for (_, field) in fields {
                n += nested_fields(field, work)?;
            }
            n
        }
        _ => 0,
    })
}

/// Counts the characters written, and stops the writing past the limit.
struct Counter {
    written: usize,
}

impl Write for Counter {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.written += s.len();
        if self.written > MAX_TYPE_CHARS {
            return Err(std::fmt::Error);
        }
        Ok(())
    }
}

/// Whether the type prints in at most [`MAX_TYPE_CHARS`] characters. Stops
/// printing at the limit, so it costs at most that much.
pub fn type_fits_glue(ty: &GlueType) -> bool {
    let mut counter = Counter { written: 0 };
    write!(counter, "{ty}").is_ok()
}

/// The shape checks of a schema: nested fields over all columns, and the
/// length of each column's type.
pub fn check_columns(columns: &[Column], work: &mut Work) -> Result<(), Reason> {
    let mut nested = 0;
    for column in columns {
        nested += nested_fields(&column.ty, work)?;
        if nested > MAX_NESTED_FIELDS {
            return Err(too_many_nested_fields("the schema"));
        }
        if !type_fits_glue(&column.ty) {
            return Err(format!(
                "the type of column `{}` is longer than {MAX_TYPE_CHARS} characters, Glue's limit for a column type",
                column.name
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wide_struct(fields: usize, name_len: usize) -> GlueType {
        GlueType::Struct(
            (0..fields)
                .map(|i| (format!("{i:0>name_len$}"), GlueType::BigInt))
                .collect(),
        )
    }

    #[test]
    fn the_budget_counts_and_refuses_past_its_limit() {
        let mut work = Work::new(10);
        assert!(work.spend(4).is_ok());
        assert!(work.spend(6).is_ok());
        assert_eq!(work.spent(), 10);
        let error = work.spend(1).unwrap_err();
        assert!(error.contains("work budget of 10 units"), "{error}");
    }

    #[test]
    fn nested_fields_count_every_node_below_the_column() {
        let mut work = Work::default();
        let ty = GlueType::parse("struct<a:array<struct<b:int,c:map<string,int>>>,d:int>");
        // a, a's item, b, c, c's key, c's value, d
        assert_eq!(nested_fields(&ty, &mut work).unwrap(), 7);
        assert_eq!(nested_fields(&GlueType::BigInt, &mut work).unwrap(), 0);
    }

    #[test]
    fn columns_are_checked_against_glue_limits() {
        let mut work = Work::default();
        let ok = [Column::new("a", wide_struct(100, 8))];
        assert!(check_columns(&ok, &mut work).is_ok());
        let many = [
            Column::new("a", wide_struct(6_000, 4)),
            Column::new("b", wide_struct(6_000, 4)),
        ];
        let error = check_columns(&many, &mut work).unwrap_err();
        assert!(error.contains("more than 10000 nested fields"), "{error}");
        // 600 fields of 250-character names: under the field cap, over
        // Glue's 131072 characters.
        let long = [Column::new("wide", wide_struct(600, 250))];
        let error = check_columns(&long, &mut work).unwrap_err();
        assert!(
            error.contains("column `wide` is longer than 131072 characters"),
            "{error}"
        );
        assert!(type_fits_glue(&wide_struct(500, 250)));
    }
}
