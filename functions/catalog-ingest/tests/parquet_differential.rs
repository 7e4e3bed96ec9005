//! Differential test of the Parquet footer reader: on generated files
//! (nested groups, lists in their three layouts, maps, repetition, logical
//! and legacy converted types), written by the `parquet` crate's writer, the
//! schema that `infer_parquet` reports agrees with the schema the `parquet`
//! crate decodes from the same footer, mapped to Glue types by the rules
//! functions/catalog-ingest/README.md documents (its type mapping, point 3).
//!
//! Every generated schema is well-formed with valid names, so the reader
//! must also accept each one: a refusal fails the test too.

use catalog_ingest::parquet_footer::{infer_parquet, metadata_length};
use parquet::basic::{ConvertedType, LogicalType, Repetition, TimeUnit, Type as Physical};
use parquet::file::metadata::ParquetMetaDataReader;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::{Type, TypePtr};
use proptest::prelude::*;
use std::sync::Arc;

/// A leaf: a physical type and its annotation.
#[derive(Debug, Clone)]
enum Leaf {
    Plain(Physical),
    Logical(Physical, LogicalType),
    /// Legacy files carry only the converted type.
    Converted(Physical, ConvertedType),
    Decimal(Physical, i32, i32),
    FixedLen(i32),
}

/// A field of the generated schema, before it gets its name.
#[derive(Debug, Clone)]
enum Field {
    Leaf(Leaf, Repetition),
    Struct(Vec<Field>, Repetition),
    /// `layout`: 0 the standard three levels, 1 a repeated leaf named
    /// `array`, 2 a repeated one-field group named `array` or `<name>_tuple`.
    List(Box<Field>, u8, Repetition),
    Map(Leaf, Box<Field>, Repetition),
}

fn unit() -> impl Strategy<Value = TimeUnit> {
    prop_oneof![
        Just(TimeUnit::MILLIS),
        Just(TimeUnit::MICROS),
        Just(TimeUnit::NANOS)
    ]
}

fn leaf() -> impl Strategy<Value = Leaf> {
    let int = |bit_width: i8, is_signed: bool| LogicalType::Integer {
        bit_width,
        is_signed,
    };
    prop_oneof![
        prop::sample::select(vec![
            Physical::BOOLEAN,
            Physical::INT32,
            Physical::INT64,
            Physical::INT96,
            Physical::FLOAT,
            Physical::DOUBLE,
            Physical::BYTE_ARRAY,
        ])
        .prop_map(Leaf::Plain),
        prop::sample::select(vec![
            (Physical::BYTE_ARRAY, LogicalType::String),
            (Physical::BYTE_ARRAY, LogicalType::Enum),
            (Physical::BYTE_ARRAY, LogicalType::Json),
            (Physical::BYTE_ARRAY, LogicalType::Bson),
            (Physical::INT32, LogicalType::Date),
            (Physical::INT32, int(8, true)),
            (Physical::INT32, int(16, true)),
            (Physical::INT32, int(32, true)),
            (Physical::INT32, int(8, false)),
            (Physical::INT32, int(16, false)),
            (Physical::INT32, int(32, false)),
            (Physical::INT64, int(64, true)),
            (Physical::INT64, int(64, false)),
            (Physical::FIXED_LEN_BYTE_ARRAY, LogicalType::Uuid),
            (Physical::FIXED_LEN_BYTE_ARRAY, LogicalType::Float16),
        ])
        .prop_map(|(p, l)| Leaf::Logical(p, l)),
        (unit(), any::<bool>()).prop_map(|(unit, utc)| Leaf::Logical(
            Physical::INT64,
            LogicalType::Timestamp {
                is_adjusted_to_u_t_c: utc,
                unit
            }
        )),
        prop::sample::select(vec![
            (Physical::BYTE_ARRAY, ConvertedType::UTF8),
            (Physical::BYTE_ARRAY, ConvertedType::ENUM),
            (Physical::BYTE_ARRAY, ConvertedType::JSON),
            (Physical::INT32, ConvertedType::DATE),
            (Physical::INT32, ConvertedType::INT_8),
            (Physical::INT32, ConvertedType::INT_16),
            (Physical::INT32, ConvertedType::UINT_32),
            (Physical::INT64, ConvertedType::TIMESTAMP_MILLIS),
            (Physical::INT64, ConvertedType::TIMESTAMP_MICROS),
            (Physical::INT64, ConvertedType::UINT_64),
        ])
        .prop_map(|(p, c)| Leaf::Converted(p, c)),
        (1..=9i32)
            .prop_flat_map(|p| (Just(Physical::INT32), Just(p), 0..=p))
            .prop_map(decimal_leaf),
        (1..=18i32)
            .prop_flat_map(|p| (Just(Physical::INT64), Just(p), 0..=p))
            .prop_map(decimal_leaf),
        (1..=38i32)
            .prop_flat_map(|p| (Just(Physical::BYTE_ARRAY), Just(p), 0..=p))
            .prop_map(decimal_leaf),
        (1..=38i32)
            .prop_flat_map(|p| (Just(Physical::FIXED_LEN_BYTE_ARRAY), Just(p), 0..=p))
            .prop_map(decimal_leaf),
        (1..=32i32).prop_map(Leaf::FixedLen),
    ]
}

fn decimal_leaf((physical, precision, scale): (Physical, i32, i32)) -> Leaf {
    Leaf::Decimal(physical, precision, scale)
}

fn repetition() -> impl Strategy<Value = Repetition> {
    prop_oneof![
        3 => Just(Repetition::OPTIONAL),
        2 => Just(Repetition::REQUIRED),
        1 => Just(Repetition::REPEATED),
    ]
}

fn field() -> impl Strategy<Value = Field> {
    let base = (leaf(), repetition()).prop_map(|(l, r)| Field::Leaf(l, r));
    base.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            (prop::collection::vec(inner.clone(), 1..4), repetition())
                .prop_map(|(f, r)| Field::Struct(f, r)),
            (inner.clone(), 0..3u8, repetition()).prop_map(|(f, l, r)| Field::List(
                Box::new(f),
                l,
                r
            )),
            (leaf(), inner, repetition()).prop_map(|(k, v, r)| Field::Map(k, Box::new(v), r)),
        ]
    })
}

fn build_leaf(name: &str, leaf: &Leaf, repetition: Repetition) -> Type {
    let builder = match leaf {
        Leaf::Plain(p) => Type::primitive_type_builder(name, *p),
        Leaf::Logical(p, l) => {
            let length = match l {
                LogicalType::Uuid => 16,
                LogicalType::Float16 => 2,
                _ => -1,
            };
            Type::primitive_type_builder(name, *p)
                .with_logical_type(Some(l.clone()))
                .with_length(length)
        }
        Leaf::Converted(p, c) => Type::primitive_type_builder(name, *p).with_converted_type(*c),
        Leaf::Decimal(p, precision, scale) => {
            // The smallest fixed length that holds the precision.
            let length = (1..=16)
                .find(|n: &i32| {
                    let max_digits = ((2f64.powi(8 * n - 1)) - 1.0).log10().floor() as i32;
                    max_digits >= *precision
                })
                .unwrap_or(16);
            Type::primitive_type_builder(name, *p)
                .with_logical_type(Some(LogicalType::Decimal {
                    scale: *scale,
                    precision: *precision,
                }))
                .with_precision(*precision)
                .with_scale(*scale)
                .with_length(length)
        }
        Leaf::FixedLen(n) => {
            Type::primitive_type_builder(name, Physical::FIXED_LEN_BYTE_ARRAY).with_length(*n)
        }
    };
    builder
        .with_repetition(repetition)
        .build()
        .unwrap_or_else(|e| panic!("{leaf:?}: {e}"))
}

fn group(name: &str, fields: Vec<TypePtr>, repetition: Repetition) -> GroupBuilder {
    GroupBuilder {
        name: name.to_string(),
        fields,
        repetition,
        logical: None,
    }
}

struct GroupBuilder {
    name: String,
    fields: Vec<TypePtr>,
    repetition: Repetition,
    logical: Option<LogicalType>,
}

impl GroupBuilder {
    fn logical(mut self, logical: LogicalType) -> Self {
        self.logical = Some(logical);
        self
    }
    fn build(self) -> TypePtr {
        Arc::new(
            Type::group_type_builder(&self.name)
                .with_repetition(self.repetition)
                .with_logical_type(self.logical)
                .with_fields(self.fields)
                .build()
                .unwrap(),
        )
    }
}

/// The generated field as a Parquet type. Names: `c<i>`, upper case on odd
/// depths (a Parquet name that only differs by case is valid).
fn build(name: &str, field: &Field) -> TypePtr {
    match field {
        Field::Leaf(leaf, r) => Arc::new(build_leaf(name, leaf, *r)),
        Field::Struct(fields, r) => {
            let children = fields
                .iter()
                .enumerate()
                .map(|(i, f)| build(&child_name(name, i), f))
                .collect();
            group(name, children, *r).build()
        }
        Field::List(element, layout, r) => {
            let repeated = match (layout, element.as_ref()) {
                (1, Field::Leaf(leaf, _)) => {
                    Arc::new(build_leaf("array", leaf, Repetition::REPEATED))
                }
                (2, _) => {
                    let wrapper = if name.len().is_multiple_of(2) {
                        "array".to_string()
                    } else {
                        format!("{name}_tuple")
                    };
                    let inner = build(&child_name(name, 0), &required(element));
                    group(&wrapper, vec![inner], Repetition::REPEATED).build()
                }
                _ => {
                    let inner = build("element", &optional(element));
                    group("list", vec![inner], Repetition::REPEATED).build()
                }
            };
            group(name, vec![repeated], *r)
                .logical(LogicalType::List)
                .build()
        }
        Field::Map(key, value, r) => {
            let key = Arc::new(build_leaf("key", key, Repetition::REQUIRED));
            let value = build("value", &optional(value));
            let key_value = group("key_value", vec![key, value], Repetition::REPEATED).build();
            group(name, vec![key_value], *r)
                .logical(LogicalType::Map)
                .build()
        }
    }
}

fn child_name(parent: &str, i: usize) -> String {
    if parent.len().is_multiple_of(2) {
        format!("C{i}")
    } else {
        format!("c{i}x")
    }
}

fn with_repetition(field: &Field, to: Repetition) -> Field {
    match field.clone() {
        Field::Leaf(l, _) => Field::Leaf(l, to),
        Field::Struct(f, _) => Field::Struct(f, to),
        Field::List(e, l, _) => Field::List(e, l, to),
        Field::Map(k, v, _) => Field::Map(k, v, to),
    }
}

fn optional(field: &Field) -> Field {
    with_repetition(field, Repetition::OPTIONAL)
}

fn required(field: &Field) -> Field {
    with_repetition(field, Repetition::REQUIRED)
}

fn file_of(columns: &[Field]) -> Vec<u8> {
    let fields = columns
        .iter()
        .enumerate()
        .map(|(i, f)| build(&format!("col{i}"), f))
        .collect();
    let schema = Arc::new(
        Type::group_type_builder("schema")
            .with_fields(fields)
            .build()
            .unwrap(),
    );
    let mut buffer = Vec::new();
    let writer = SerializedFileWriter::new(
        &mut buffer,
        schema,
        Arc::new(WriterProperties::builder().build()),
    )
    .unwrap();
    writer.close().unwrap();
    buffer
}

// ---------------------------------------------------------------------------
// The catalog's Glue mapping, applied to the parquet crate's schema.
// ---------------------------------------------------------------------------

fn decimal(precision: i32, scale: i32) -> String {
    let p = precision.clamp(1, 38);
    format!("decimal({p},{})", scale.clamp(0, p))
}

fn primitive(t: &Type) -> String {
    let info = t.get_basic_info();
    let logical = info.logical_type_ref().cloned();
    let converted = info.converted_type();
    if let Some(LogicalType::Decimal { precision, scale }) = logical {
        return decimal(precision, scale);
    }
    if converted == ConvertedType::DECIMAL {
        return decimal(t.get_precision(), t.get_scale());
    }
    let int = |bits: i8, signed: bool| {
        Some(LogicalType::Integer {
            bit_width: bits,
            is_signed: signed,
        })
    };
    let name = match t.get_physical_type() {
        Physical::BOOLEAN => "boolean",
        Physical::INT32
            if logical == Some(LogicalType::Date) || converted == ConvertedType::DATE =>
        {
            "date"
        }
        Physical::INT32 if logical == int(8, true) || converted == ConvertedType::INT_8 => {
            "tinyint"
        }
        Physical::INT32 if logical == int(16, true) || converted == ConvertedType::INT_16 => {
            "smallint"
        }
        Physical::INT32 if logical == int(32, false) || converted == ConvertedType::UINT_32 => {
            "bigint"
        }
        Physical::INT32 => "int",
        Physical::INT64
            if matches!(logical, Some(LogicalType::Timestamp { .. }))
                || matches!(
                    converted,
                    ConvertedType::TIMESTAMP_MILLIS | ConvertedType::TIMESTAMP_MICROS
                ) =>
        {
            "timestamp"
        }
        Physical::INT64 if logical == int(64, false) || converted == ConvertedType::UINT_64 => {
            "decimal(20,0)"
        }
        Physical::INT64 => "bigint",
        Physical::INT96 => "timestamp",
        Physical::FLOAT => "float",
        Physical::DOUBLE => "double",
        Physical::BYTE_ARRAY
            if matches!(
                logical,
                Some(LogicalType::String | LogicalType::Enum | LogicalType::Json)
            ) || matches!(
                converted,
                ConvertedType::UTF8 | ConvertedType::ENUM | ConvertedType::JSON
            ) =>
        {
            "string"
        }
        Physical::BYTE_ARRAY | Physical::FIXED_LEN_BYTE_ARRAY => "binary",
    };
    name.to_string()
}

fn field_type(t: &Type) -> String {
    let ty = value_type(t);
    let info = t.get_basic_info();
    if info.has_repetition() && info.repetition() == Repetition::REPEATED {
        format!("array<{ty}>")
    } else {
        ty
    }
}

fn value_type(t: &Type) -> String {
    if t.is_primitive() {
        return primitive(t);
    }
    let info = t.get_basic_info();
    let (logical, converted) = (info.logical_type_ref().cloned(), info.converted_type());
    let fields = t.get_fields();
    if logical == Some(LogicalType::List) || converted == ConvertedType::LIST {
        let repeated = &fields[0];
        let wraps = repeated.is_group()
            && repeated.get_fields().len() == 1
            && repeated.name() != "array"
            && !repeated.name().ends_with("_tuple");
        let element = if wraps {
            value_type(&repeated.get_fields()[0])
        } else {
            value_type(repeated)
        };
        return format!("array<{element}>");
    }
    if logical == Some(LogicalType::Map)
        || matches!(converted, ConvertedType::MAP | ConvertedType::MAP_KEY_VALUE)
    {
        let kv = fields[0].get_fields();
        return format!("map<{},{}>", value_type(&kv[0]), value_type(&kv[1]));
    }
    let inner: Vec<String> = fields
        .iter()
        .map(|f| format!("{}:{}", f.name().to_ascii_lowercase(), field_type(f)))
        .collect();
    format!("struct<{}>", inner.join(","))
}

fn metadata_of(file: &[u8]) -> &[u8] {
    let length = metadata_length(file, file.len() as u64).unwrap() as usize;
    &file[file.len() - 8 - length..file.len() - 8]
}

fn compare(columns: &[Field]) -> Result<(), TestCaseError> {
    let file = file_of(columns);
    let metadata = metadata_of(&file);
    let theirs = ParquetMetaDataReader::decode_metadata(metadata)
        .expect("the parquet crate reads its own file");
    let root = theirs.file_metadata().schema_descr().root_schema();
    let expected: Vec<(String, String)> = root
        .get_fields()
        .iter()
        .map(|f| (f.name().to_ascii_lowercase(), field_type(f)))
        .collect();
    let ours = infer_parquet(metadata).map_err(|e| TestCaseError::fail(format!("refused: {e}")))?;
    let got: Vec<(String, String)> = ours
        .columns
        .iter()
        .map(|c| (c.name.clone(), c.ty.to_string()))
        .collect();
    prop_assert_eq!(got, expected);
    prop_assert_eq!(
        ours.row_count,
        u64::try_from(theirs.file_metadata().num_rows()).ok()
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_footer_reader_agrees_with_the_parquet_crate(
        columns in prop::collection::vec(field(), 1..6)
    ) {
        compare(&columns)?;
    }
}

/// Writes the seed corpus of the `parquet_footer` fuzz target: the metadata
/// of a few files with every kind of field. Run it by hand when the reader
/// learns something new:
/// `LAKEOPS_WRITE_FUZZ_SEEDS=1 cargo test -p catalog-ingest --test parquet_differential -- --ignored`
#[test]
#[ignore]
fn write_fuzz_seeds() {
    use proptest::strategy::ValueTree;
    if std::env::var_os("LAKEOPS_WRITE_FUZZ_SEEDS").is_none() {
        return;
    }
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/parquet_footer");
    std::fs::create_dir_all(&dir).unwrap();
    let runner_config = ProptestConfig {
        rng_algorithm: proptest::test_runner::RngAlgorithm::ChaCha,
        ..ProptestConfig::default()
    };
    let mut runner = proptest::test_runner::TestRunner::new_with_rng(
        runner_config,
        proptest::test_runner::TestRng::from_seed(
            proptest::test_runner::RngAlgorithm::ChaCha,
            &[7; 32],
        ),
    );
    let strategy = prop::collection::vec(field(), 1..4);
    for i in 0..24 {
        let columns = strategy.new_tree(&mut runner).unwrap().current();
        let file = file_of(&columns);
        std::fs::write(dir.join(format!("generated-{i:02}")), metadata_of(&file)).unwrap();
    }
}
