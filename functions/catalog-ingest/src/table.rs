//! Glue table definitions from inferred schemas, and schema evolution: which
//! columns a new file adds, and which differences are drift. Pure.

use crate::format::{Column, Compression, InferredSchema};
use crate::glue_type::GlueType;
use crate::layout::Placement;
use crate::names::Reason;
use lakeops_shared::spec::lake::DataFormat;
use std::collections::{BTreeMap, HashMap, HashSet};

pub const LAZY_SIMPLE_SERDE: &str = "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe";
pub const OPEN_CSV_SERDE: &str = "org.apache.hadoop.hive.serde2.OpenCSVSerde";
pub const JSON_SERDE: &str = "org.openx.data.jsonserde.JsonSerDe";
pub const PARQUET_SERDE: &str = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe";
pub const TEXT_INPUT: &str = "org.apache.hadoop.mapred.TextInputFormat";
pub const TEXT_OUTPUT: &str = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat";
pub const PARQUET_INPUT: &str = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat";
pub const PARQUET_OUTPUT: &str = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat";

/// Marks tables catalog-ingest made, so operators can tell them from crawled ones.
pub const MANAGED_BY: (&str, &str) = ("lakeops:managed-by", "catalog-ingest");

/// A table as Glue stores it, reduced to what the catalog compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDefinition {
    pub database: String,
    pub name: String,
    pub location: String,
    pub columns: Vec<Column>,
    pub partition_keys: Vec<String>,
    pub input_format: String,
    pub output_format: String,
    pub serde_library: String,
    pub serde_parameters: BTreeMap<String, String>,
    pub parameters: BTreeMap<String, String>,
    /// The Glue version this definition was read at (for optimistic updates).
    pub version_id: Option<String>,
}

/// The format family of a table: files of another family cannot share it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Delimited(char),
    Json,
    Parquet,
    Other,
}

impl Family {
    pub fn of_format(format: DataFormat) -> Self {
        match format {
            DataFormat::Csv => Family::Delimited(','),
            DataFormat::Tsv => Family::Delimited('\t'),
            DataFormat::Jsonl => Family::Json,
            DataFormat::Parquet => Family::Parquet,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Family::Delimited(',') => "CSV",
            Family::Delimited('\t') => "TSV",
            Family::Delimited(_) => "delimited text",
            Family::Json => "JSON",
            Family::Parquet => "Parquet",
            Family::Other => "another format",
        }
    }
}

impl TableDefinition {
    pub fn family(&self) -> Family {
        match self.serde_library.as_str() {
            PARQUET_SERDE => Family::Parquet,
            JSON_SERDE | "org.apache.hive.hcatalog.data.JsonSerDe" => Family::Json,
            LAZY_SIMPLE_SERDE => {
                let delim = self
                    .serde_parameters
                    .get("field.delim")
                    .or_else(|| self.serde_parameters.get("serialization.format"))
                    .and_then(|d| d.chars().next())
                    .unwrap_or('\u{1}');
                Family::Delimited(delim)
            }
            OPEN_CSV_SERDE => {
                let delim = self
                    .serde_parameters
                    .get("separatorChar")
                    .and_then(|d| d.chars().next())
                    .unwrap_or(',');
                Family::Delimited(delim)
            }
            _ => Family::Other,
        }
    }

    /// Whether columns are matched by position (delimited text) or by name.
    pub fn positional(&self) -> bool {
        matches!(self.family(), Family::Delimited(_))
    }
}

/// The table a file at `placement` with `schema` asks for.
pub fn table_definition(placement: &Placement, schema: &InferredSchema) -> TableDefinition {
    // A data column named like a partition key would make the table invalid;
    // readers take the value from the path, so the file's copy is dropped.
    let columns: Vec<Column> = schema
        .columns
        .iter()
        .filter(|c| !placement.partition_keys.contains(&c.name))
        .cloned()
        .collect();
    let mut parameters = BTreeMap::new();
    parameters.insert("EXTERNAL".to_string(), "TRUE".to_string());
    parameters.insert(MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string());
    let classification = match schema.format {
        DataFormat::Csv => "csv",
        DataFormat::Tsv => "tsv",
        DataFormat::Jsonl => "json",
        DataFormat::Parquet => "parquet",
    };
    parameters.insert("classification".to_string(), classification.to_string());
    if schema.compression == Compression::Gzip {
        parameters.insert("compressionType".to_string(), "gzip".to_string());
    }
    let mut serde_parameters = BTreeMap::new();
    let (input, output, serde) = match schema.format {
        DataFormat::Csv | DataFormat::Tsv => {
            let delim = if schema.format == DataFormat::Tsv {
                "\t"
            } else {
                ","
            };
            parameters.insert("skip.header.line.count".to_string(), "1".to_string());
            if schema.quoted {
                serde_parameters.insert("separatorChar".to_string(), delim.to_string());
                serde_parameters.insert("quoteChar".to_string(), "\"".to_string());
                serde_parameters.insert("escapeChar".to_string(), "\\".to_string());
                (TEXT_INPUT, TEXT_OUTPUT, OPEN_CSV_SERDE)
            } else {
                serde_parameters.insert("field.delim".to_string(), delim.to_string());
                serde_parameters.insert("serialization.format".to_string(), delim.to_string());
                (TEXT_INPUT, TEXT_OUTPUT, LAZY_SIMPLE_SERDE)
            }
        }
        DataFormat::Jsonl => {
            serde_parameters.insert("case.insensitive".to_string(), "TRUE".to_string());
            for (column, key) in &schema.json_mapping {
                serde_parameters.insert(format!("mapping.{column}"), key.clone());
            }
            (TEXT_INPUT, TEXT_OUTPUT, JSON_SERDE)
        }
        DataFormat::Parquet => (PARQUET_INPUT, PARQUET_OUTPUT, PARQUET_SERDE),
    };
    TableDefinition {
        database: placement.database.clone(),
        name: placement.table.clone(),
        location: placement.table_location.clone(),
        columns,
        partition_keys: placement.partition_keys.clone(),
        input_format: input.to_string(),
        output_format: output.to_string(),
        serde_library: serde.to_string(),
        serde_parameters,
        parameters,
        version_id: None,
    }
}

/// A difference between a file and its table that is not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    /// The file's values do not fit the column's declared type.
    TypeChanged {
        column: String,
        table: String,
        file: String,
    },
    /// A column appears under another name.
    Renamed {
        position: usize,
        table: String,
        file: String,
    },
    /// A delimited file has a table column at another position.
    Moved {
        column: String,
        table_position: usize,
        file_position: usize,
    },
}

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Drift::TypeChanged {
                column,
                table,
                file,
            } => {
                write!(
                    f,
                    "column `{column}` is {table} in the table but {file} in the file"
                )
            }
            Drift::Renamed {
                position,
                table,
                file,
            } => {
                write!(
                    f,
                    "column {} is `{table}` in the table but `{file}` in the file",
                    position + 1
                )
            }
            Drift::Moved {
                column,
                table_position,
                file_position,
            } => write!(
                f,
                "column `{column}` is column {} in the table but column {} in the file",
                table_position + 1,
                file_position + 1
            ),
        }
    }
}

/// What a file changes in its table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evolution {
    pub add: Vec<Column>,
    pub drift: Vec<Drift>,
}

/// Compare a file's table definition with the existing table. An error means
/// the file cannot belong to that table at all (another location, format or
/// partitioning): the record is rejected with that reason.
pub fn evolve(existing: &TableDefinition, file: &TableDefinition) -> Result<Evolution, Reason> {
    if existing.location.trim_end_matches('/') != file.location.trim_end_matches('/') {
        return Err(format!(
            "table `{}.{}` already exists at {}; this object's folder {} maps to the same name",
            existing.database, existing.name, existing.location, file.location
        ));
    }
    if existing.family() != file.family() {
        return Err(format!(
            "table `{}` holds {}, this object is {}",
            existing.name,
            existing.family().describe(),
            file.family().describe()
        ));
    }
    if existing.partition_keys != file.partition_keys {
        return Err(format!(
            "table `{}` is partitioned by [{}], this object's key has [{}]",
            existing.name,
            existing.partition_keys.join(", "),
            file.partition_keys.join(", ")
        ));
    }
    let mut evolution = Evolution::default();
    // Columns are looked up by name through maps: both lists can hold
    // thousands of columns, and a nested loop over them was quadratic.
    let existing_at: HashMap<&str, usize> = column_positions(&existing.columns);
    let file_names: HashSet<&str> = file.columns.iter().map(|c| c.name.as_str()).collect();
    if existing.positional() {
        for (i, column) in file.columns.iter().enumerate() {
            match existing.columns.get(i) {
                Some(declared) if declared.name != column.name => {
                    evolution.drift.push(Drift::Renamed {
                        position: i,
                        table: declared.name.clone(),
                        file: column.name.clone(),
                    })
                }
                Some(declared) => type_check(&mut evolution, declared, column),
                None => match existing_at.get(column.name.as_str()) {
                    Some(&at) => evolution.drift.push(Drift::Moved {
                        column: column.name.clone(),
                        table_position: at,
                        file_position: i,
                    }),
                    None => evolution.add.push(column.clone()),
                },
            }
        }
        // A file whose columns do not line up with the table's cannot say
        // where new columns go: nothing is added until the layout is fixed.
        if evolution
            .drift
            .iter()
            .any(|d| matches!(d, Drift::Renamed { .. } | Drift::Moved { .. }))
        {
            evolution.add.clear();
        }
        return Ok(evolution);
    }
    for (i, column) in file.columns.iter().enumerate() {
        if let Some(&at) = existing_at.get(column.name.as_str()) {
            type_check(&mut evolution, &existing.columns[at], column);
            continue;
        }
        // A new name where the table has, at the same position, a column of
        // the same type that this file lacks: most likely a rename.
        let renamed = existing.columns.get(i).filter(|declared| {
            declared.ty == column.ty && !file_names.contains(declared.name.as_str())
        });
        match renamed {
            Some(declared) => evolution.drift.push(Drift::Renamed {
                position: i,
                table: declared.name.clone(),
                file: column.name.clone(),
            }),
            None => evolution.add.push(column.clone()),
        }
    }
    Ok(evolution)
}

fn type_check(evolution: &mut Evolution, declared: &Column, column: &Column) {
    let fits = column.ty.fits_in(&declared.ty)
        // Undeclared-type columns (a crawler's `varchar(10)`) are left alone.
        || matches!(declared.ty, GlueType::Other(_));
    if !fits {
        evolution.drift.push(Drift::TypeChanged {
            column: declared.name.clone(),
            table: declared.ty.to_string(),
            file: column.ty.to_string(),
        });
    }
}

/// Append the columns the table does not have yet (in arrival order), so the
/// files of one batch fold into one table version. Returns how many.
pub fn apply_additions(table: &mut TableDefinition, additions: &[Column]) -> usize {
    let mut names: HashSet<String> = table.columns.iter().map(|c| c.name.clone()).collect();
    let mut added = 0;
    for column in additions {
        if names.insert(column.name.clone()) {
            table.columns.push(column.clone());
            added += 1;
        }
    }
    added
}

/// Each column's position, by name (the first, should a name repeat).
fn column_positions(columns: &[Column]) -> HashMap<&str, usize> {
    let mut at = HashMap::with_capacity(columns.len());
    for (i, column) in columns.iter().enumerate() {
        at.entry(column.name.as_str()).or_insert(i);
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{place_in_layer, Place};
    use lakeops_shared::spec::lake::LayerSpec;
    use proptest::prelude::*;

    fn placement(key: &str) -> Placement {
        let layer: LayerSpec = serde_json::from_value(serde_json::json!({
            "name": "raw", "bucket": "lake-raw", "database": "lake_raw"
        }))
        .unwrap();
        match place_in_layer(&layer, "lake-raw", key).unwrap() {
            Place::Object(p) => p,
            other => panic!("{other:?}"),
        }
    }

    fn schema(format: DataFormat, cols: &[(&str, GlueType)]) -> InferredSchema {
        InferredSchema {
            format,
            compression: Compression::None,
            columns: cols
                .iter()
                .map(|(n, t)| Column::new(*n, t.clone()))
                .collect(),
            quoted: false,
            json_mapping: Vec::new(),
            row_count: None,
        }
    }

    #[test]
    fn definitions_carry_the_right_serde() {
        let p = placement("orders/dt=2024-01-01/a.csv.gz");
        let mut s = schema(
            DataFormat::Csv,
            &[("id", GlueType::BigInt), ("dt", GlueType::Date)],
        );
        s.compression = Compression::Gzip;
        let t = table_definition(&p, &s);
        assert_eq!(t.serde_library, LAZY_SIMPLE_SERDE);
        assert_eq!(t.input_format, TEXT_INPUT);
        assert_eq!(t.serde_parameters["field.delim"], ",");
        assert_eq!(t.parameters["skip.header.line.count"], "1");
        assert_eq!(t.parameters["compressionType"], "gzip");
        assert_eq!(t.partition_keys, vec!["dt"]);
        // The file's own `dt` column is dropped in favour of the partition key.
        assert_eq!(t.columns, vec![Column::new("id", GlueType::BigInt)]);
        assert_eq!(t.location, "s3://lake-raw/orders/");
        assert_eq!(t.family(), Family::Delimited(','));

        s.quoted = true;
        assert_eq!(table_definition(&p, &s).serde_library, OPEN_CSV_SERDE);
        assert_eq!(table_definition(&p, &s).family(), Family::Delimited(','));

        let tsv = table_definition(&p, &schema(DataFormat::Tsv, &[("a", GlueType::String)]));
        assert_eq!(tsv.family(), Family::Delimited('\t'));

        let mut json = schema(DataFormat::Jsonl, &[("user_name", GlueType::String)]);
        json.json_mapping = vec![("user_name".into(), "User Name".into())];
        let t = table_definition(&p, &json);
        assert_eq!(t.serde_library, JSON_SERDE);
        assert_eq!(t.serde_parameters["mapping.user_name"], "User Name");

        let t = table_definition(&p, &schema(DataFormat::Parquet, &[("a", GlueType::Int)]));
        assert_eq!(
            (t.input_format.as_str(), t.output_format.as_str()),
            (PARQUET_INPUT, PARQUET_OUTPUT)
        );
        assert_eq!(t.family(), Family::Parquet);
    }

    #[test]
    fn new_columns_are_added_and_narrower_types_accepted() {
        let p = placement("t/a.json");
        let existing = table_definition(
            &p,
            &schema(
                DataFormat::Jsonl,
                &[("a", GlueType::BigInt), ("b", GlueType::String)],
            ),
        );
        let file = table_definition(
            &p,
            &schema(
                DataFormat::Jsonl,
                &[
                    ("b", GlueType::BigInt),
                    ("a", GlueType::Int),
                    ("c", GlueType::Boolean),
                ],
            ),
        );
        let evolution = evolve(&existing, &file).unwrap();
        assert_eq!(evolution.add, vec![Column::new("c", GlueType::Boolean)]);
        assert!(evolution.drift.is_empty());
    }

    #[test]
    fn widened_types_and_renames_are_drift_not_changes() {
        let p = placement("t/a.parquet");
        let existing = table_definition(
            &p,
            &schema(
                DataFormat::Parquet,
                &[
                    ("id", GlueType::Int),
                    ("name", GlueType::String),
                    ("x", GlueType::Double),
                ],
            ),
        );
        let file = table_definition(
            &p,
            &schema(
                DataFormat::Parquet,
                &[
                    ("id", GlueType::BigInt),
                    ("full_name", GlueType::String),
                    ("x", GlueType::Double),
                ],
            ),
        );
        let evolution = evolve(&existing, &file).unwrap();
        assert!(evolution.add.is_empty(), "{evolution:?}");
        assert_eq!(
            evolution.drift,
            vec![
                Drift::TypeChanged {
                    column: "id".into(),
                    table: "int".into(),
                    file: "bigint".into()
                },
                Drift::Renamed {
                    position: 1,
                    table: "name".into(),
                    file: "full_name".into()
                },
            ]
        );
        assert_eq!(
            evolution.drift[1].to_string(),
            "column 2 is `name` in the table but `full_name` in the file"
        );
    }

    #[test]
    fn csv_columns_are_positional() {
        let p = placement("t/a.csv");
        let existing = table_definition(
            &p,
            &schema(
                DataFormat::Csv,
                &[("a", GlueType::BigInt), ("b", GlueType::String)],
            ),
        );
        let renamed = table_definition(
            &p,
            &schema(
                DataFormat::Csv,
                &[
                    ("a", GlueType::BigInt),
                    ("c", GlueType::String),
                    ("d", GlueType::Double),
                ],
            ),
        );
        let evolution = evolve(&existing, &renamed).unwrap();
        assert_eq!(
            evolution.drift,
            vec![Drift::Renamed {
                position: 1,
                table: "b".into(),
                file: "c".into()
            }]
        );
        assert!(evolution.add.is_empty(), "a misaligned file adds nothing");
        let extended = table_definition(
            &p,
            &schema(
                DataFormat::Csv,
                &[
                    ("a", GlueType::BigInt),
                    ("b", GlueType::String),
                    ("d", GlueType::Double),
                ],
            ),
        );
        let evolution = evolve(&existing, &extended).unwrap();
        assert_eq!(evolution.add, vec![Column::new("d", GlueType::Double)]);
        assert!(evolution.drift.is_empty());
    }

    #[test]
    fn foreign_objects_are_rejected() {
        let existing = table_definition(
            &placement("t/a.csv"),
            &schema(DataFormat::Csv, &[("a", GlueType::BigInt)]),
        );
        let parquet = table_definition(
            &placement("t/a.parquet"),
            &schema(DataFormat::Parquet, &[("a", GlueType::BigInt)]),
        );
        assert!(evolve(&existing, &parquet)
            .unwrap_err()
            .contains("holds CSV, this object is Parquet"));
        let partitioned = table_definition(
            &placement("t/dt=1/a.csv"),
            &schema(DataFormat::Csv, &[("a", GlueType::BigInt)]),
        );
        assert!(evolve(&existing, &partitioned)
            .unwrap_err()
            .contains("partitioned by []"));
        let collision = table_definition(
            &placement("T/a.csv"),
            &schema(DataFormat::Csv, &[("a", GlueType::BigInt)]),
        );
        assert!(evolve(&existing, &collision)
            .unwrap_err()
            .contains("maps to the same name"));
    }

    proptest! {
        /// A table always accepts its own files, and adding what evolution
        /// asks for makes the next comparison add nothing.
        #[test]
        fn evolution_converges(
            first in proptest::collection::btree_map("[a-z]{1,4}", crate::glue_type::tests::arb_type(), 1..6),
            second in proptest::collection::btree_map("[a-z]{1,4}", crate::glue_type::tests::arb_type(), 1..6),
            format in prop_oneof![Just(DataFormat::Jsonl), Just(DataFormat::Parquet), Just(DataFormat::Csv)],
        ) {
            let p = placement("t/a.x");
            let to_schema = |m: &std::collections::BTreeMap<String, GlueType>| InferredSchema {
                format, compression: Compression::None,
                columns: m.iter().map(|(n, t)| Column::new(n.clone(), t.clone())).collect(),
                quoted: false, json_mapping: Vec::new(), row_count: None,
            };
            let mut table = table_definition(&p, &to_schema(&first));
            prop_assert_eq!(evolve(&table, &table).unwrap(), Evolution::default());
            let file = table_definition(&p, &to_schema(&second));
            let evolution = evolve(&table, &file).unwrap();
            apply_additions(&mut table, &evolution.add);
            let again = evolve(&table, &file).unwrap();
            prop_assert!(again.add.is_empty(), "{:?}", again);
            prop_assert_eq!(again.drift, evolution.drift);
        }
    }
}
