//! Parquet: the schema and row count from the footer, read with ranged GETs.
//!
//! A file ends with `<metadata><u32 LE metadata length>PAR1`. The length is
//! checked against the object size and a hard cap before any byte of the
//! metadata is fetched, so a hostile footer cannot make us read or allocate
//! more than `MAX_FOOTER_BYTES`.
//!
//! The metadata is Thrift compact protocol. It is decoded here by a small
//! reader that takes only what the catalog needs (the schema and the row
//! count) and checks every length against the bytes that remain: the
//! `parquet` crate's decoder panics with a capacity overflow on some corrupt
//! footers (found by the property test below), and a panic would abort the
//! whole batch.

use crate::format::{Column, Compression, InferredSchema};
use crate::glue_type::{GlueType, MAX_DEPTH};
use crate::limits::{self, Work, MAX_NESTED_FIELDS};
use crate::names::{self, only_case_differs, printable, Reason};
use lakeops_shared::spec::lake::DataFormat;
use std::collections::HashSet;

/// The 8-byte tail: metadata length and magic.
pub const FOOTER_TAIL_BYTES: u64 = 8;
/// The smallest valid file: magic, (empty) metadata length, magic.
pub const MIN_FILE_BYTES: u64 = 12;
/// Footers larger than this are refused (real ones are KBs to a few MBs).
pub const MAX_FOOTER_BYTES: u64 = 16 * 1024 * 1024;
/// How much of the end of the file the first read fetches; most footers fit.
pub const FIRST_TAIL_READ: u64 = 64 * 1024;
/// Schemas with more elements than this are refused.
pub const MAX_SCHEMA_ELEMENTS: usize = 100_000;

/// From the last bytes of the file, the metadata length, checked.
pub fn metadata_length(tail: &[u8], object_size: u64) -> Result<u64, Reason> {
    if object_size < MIN_FILE_BYTES {
        return Err(format!(
            "{object_size} bytes is too small for a Parquet file"
        ));
    }
    if tail.len() < FOOTER_TAIL_BYTES as usize {
        return Err("truncated Parquet footer".into());
    }
    let end = &tail[tail.len() - 8..];
    match &end[4..] {
        b"PAR1" => {}
        b"PARE" => return Err("encrypted Parquet footers are not supported".into()),
        _ => return Err("not a Parquet file: the last 4 bytes are not `PAR1`".into()),
    }
    let length = u32::from_le_bytes([end[0], end[1], end[2], end[3]]) as u64;
    if length == 0 {
        return Err("the Parquet footer is empty".into());
    }
    if length > MAX_FOOTER_BYTES {
        return Err(format!(
            "the Parquet footer claims {length} bytes, more than the {MAX_FOOTER_BYTES} allowed"
        ));
    }
    if length + FOOTER_TAIL_BYTES + 4 > object_size {
        return Err(format!(
            "the Parquet footer claims {length} bytes but the object has only {object_size}"
        ));
    }
    Ok(length)
}

/// Parquet physical types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Physical {
    Boolean,
    Int32,
    Int64,
    Int96,
    Float,
    Double,
    ByteArray,
    FixedLenByteArray,
}

/// The logical annotations the catalog distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Logical {
    String,
    Map,
    List,
    Enum,
    Decimal { precision: i32, scale: i32 },
    Date,
    Timestamp,
    Integer { bits: i8, signed: bool },
    Json,
    Other,
}

/// One element of the flattened schema (Thrift `SchemaElement`).
#[derive(Debug, Clone, Default)]
struct Element {
    physical: Option<Physical>,
    repetition: Option<i32>,
    name: String,
    num_children: i32,
    converted: Option<i32>,
    scale: i32,
    precision: i32,
    logical: Option<Logical>,
}

const REPEATED: i32 = 2;
// ConvertedType values.
const UTF8: i32 = 0;
const MAP: i32 = 1;
const MAP_KEY_VALUE: i32 = 2;
const LIST: i32 = 3;
const ENUM: i32 = 4;
const DECIMAL: i32 = 5;
const DATE: i32 = 6;
const TIMESTAMP_MILLIS: i32 = 9;
const TIMESTAMP_MICROS: i32 = 10;
const UINT_32: i32 = 13;
const UINT_64: i32 = 14;
const INT_8: i32 = 15;
const INT_16: i32 = 16;
const JSON: i32 = 19;

/// A bounds-checked reader of Thrift compact protocol.
struct Thrift<'a> {
    buf: &'a [u8],
    pos: usize,
    depth: usize,
}

// Compact protocol type codes.
const T_STOP: u8 = 0;
const T_TRUE: u8 = 1;
const T_FALSE: u8 = 2;
const T_BYTE: u8 = 3;
const T_I16: u8 = 4;
const T_I32: u8 = 5;
const T_I64: u8 = 6;
const T_DOUBLE: u8 = 7;
const T_BINARY: u8 = 8;
const T_LIST: u8 = 9;
const T_SET: u8 = 10;
const T_MAP: u8 = 11;
const T_STRUCT: u8 = 12;
const T_UUID: u8 = 13;

type Parse<T> = Result<T, String>;

impl<'a> Thrift<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            depth: 0,
        }
    }

    fn byte(&mut self) -> Parse<u8> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or("unexpected end of the footer")?;
        self.pos += 1;
        Ok(b)
    }

    fn bytes(&mut self, n: usize) -> Parse<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or("a length runs past the footer")?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn varint(&mut self) -> Parse<u64> {
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let b = self.byte()?;
            if shift == 63 && b > 1 {
                return Err("varint overflow".into());
            }
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("varint too long".into())
    }

    fn zigzag(&mut self) -> Parse<i64> {
        let v = self.varint()?;
        Ok((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    fn i32(&mut self) -> Parse<i32> {
        i32::try_from(self.zigzag()?).map_err(|_| "i32 out of range".into())
    }

    fn binary(&mut self) -> Parse<&'a [u8]> {
        let n = usize::try_from(self.varint()?).map_err(|_| "length out of range")?;
        self.bytes(n)
    }

    /// A field header: (type, id), or `None` at the end of a struct.
    fn field(&mut self, last_id: &mut i16) -> Parse<Option<(u8, i16)>> {
        let header = self.byte()?;
        let ty = header & 0x0f;
        if ty == T_STOP {
            return Ok(None);
        }
        let delta = (header >> 4) as i16;
        let id = if delta == 0 {
            i16::try_from(self.zigzag()?).map_err(|_| "field id out of range")?
        } else {
            last_id.checked_add(delta).ok_or("field id out of range")?
        };
        *last_id = id;
        Ok(Some((ty, id)))
    }

    /// A list header: (element type, size), with the size checked against
    /// the bytes left (every element takes at least one byte).
    fn list(&mut self) -> Parse<(u8, usize)> {
        let header = self.byte()?;
        let size = match header >> 4 {
            15 => usize::try_from(self.varint()?).map_err(|_| "list size out of range")?,
            n => n as usize,
        };
        if size > self.buf.len() - self.pos {
            return Err("a list claims more elements than the footer has bytes".into());
        }
        Ok((header & 0x0f, size))
    }

    fn enter(&mut self) -> Parse<()> {
        self.depth += 1;
        if self.depth > 64 {
            return Err("the footer nests too deeply".into());
        }
        Ok(())
    }

    fn skip(&mut self, ty: u8) -> Parse<()> {
        match ty {
            T_TRUE | T_FALSE => Ok(()),
            T_BYTE => self.byte().map(drop),
            T_I16 | T_I32 | T_I64 => self.varint().map(drop),
            T_DOUBLE => self.bytes(8).map(drop),
            T_BINARY => self.binary().map(drop),
            T_UUID => self.bytes(16).map(drop),
            T_LIST | T_SET => {
                let (elem, size) = self.list()?;
                self.enter()?;
                for _ in 0..size {
                    // Booleans inside lists take a byte each.
                    if elem == T_TRUE || elem == T_FALSE {
                        self.byte()?;
                    } else {
                        self.skip(elem)?;
                    }
                }
                self.depth -= 1;
                Ok(())
            }
            T_MAP => {
                let size = usize::try_from(self.varint()?).map_err(|_| "map size out of range")?;
                if size == 0 {
                    return Ok(());
                }
                if size > self.buf.len() - self.pos {
                    return Err("a map claims more entries than the footer has bytes".into());
                }
                let kinds = self.byte()?;
                self.enter()?;
                for _ in 0..size {
                    self.skip(kinds >> 4)?;
                    self.skip(kinds & 0x0f)?;
                }
                self.depth -= 1;
                Ok(())
            }
            T_STRUCT => {
                self.enter()?;
                let mut last = 0;
                while let Some((ty, _)) = self.field(&mut last)? {
                    self.skip(ty)?;
                }
                self.depth -= 1;
                Ok(())
            }
            other => Err(format!("unknown Thrift type {other}")),
        }
    }

    fn expect(&self, ty: u8, want: u8, what: &str) -> Parse<()> {
        if ty == want {
            Ok(())
        } else {
            Err(format!("{what} has Thrift type {ty}, expected {want}"))
        }
    }

    /// `FileMetaData`: field 2 is the schema, field 3 the row count.
    fn file_metadata(&mut self) -> Parse<(Vec<Element>, i64)> {
        let mut schema = None;
        let mut rows = None;
        let mut last = 0;
        while let Some((ty, id)) = self.field(&mut last)? {
            match id {
                2 => {
                    self.expect(ty, T_LIST, "schema")?;
                    let (elem, size) = self.list()?;
                    self.expect(elem, T_STRUCT, "schema element")?;
                    if size > MAX_SCHEMA_ELEMENTS {
                        return Err(format!(
                            "the schema has {size} elements, more than {MAX_SCHEMA_ELEMENTS}"
                        ));
                    }
                    let mut elements = Vec::new();
                    for _ in 0..size {
                        elements.push(self.element()?);
                    }
                    schema = Some(elements);
                }
                3 => {
                    self.expect(ty, T_I64, "num_rows")?;
                    rows = Some(self.zigzag()?);
                }
                _ => self.skip(ty)?,
            }
            // Everything after the schema and row count (row groups, key/value
            // metadata) is not needed.
            if let (Some(_), Some(_)) = (&schema, &rows) {
                break;
            }
        }
        Ok((
            schema.ok_or("the footer has no schema")?,
            rows.ok_or("the footer has no row count")?,
        ))
    }

    fn element(&mut self) -> Parse<Element> {
        self.enter()?;
        let mut element = Element::default();
        let mut last = 0;
        while let Some((ty, id)) = self.field(&mut last)? {
            match (id, ty) {
                (1, T_I32) => {
                    element.physical = Some(match self.i32()? {
                        0 => Physical::Boolean,
                        1 => Physical::Int32,
                        2 => Physical::Int64,
                        3 => Physical::Int96,
                        4 => Physical::Float,
                        5 => Physical::Double,
                        6 => Physical::ByteArray,
                        7 => Physical::FixedLenByteArray,
                        other => return Err(format!("unknown physical type {other}")),
                    })
                }
                (3, T_I32) => element.repetition = Some(self.i32()?),
                (4, T_BINARY) => {
                    element.name = std::str::from_utf8(self.binary()?)
                        .map_err(|_| "a column name is not UTF-8")?
                        .to_string()
                }
                (5, T_I32) => element.num_children = self.i32()?,
                (6, T_I32) => element.converted = Some(self.i32()?),
                (7, T_I32) => element.scale = self.i32()?,
                (8, T_I32) => element.precision = self.i32()?,
                (10, T_STRUCT) => element.logical = Some(self.logical()?),
                (_, ty) => self.skip(ty)?,
            }
        }
        self.depth -= 1;
        Ok(element)
    }

    /// The `LogicalType` union: one field, whose id says the kind.
    fn logical(&mut self) -> Parse<Logical> {
        self.enter()?;
        let mut logical = Logical::Other;
        let mut last = 0;
        while let Some((ty, id)) = self.field(&mut last)? {
            logical = match (id, ty) {
                (1, T_STRUCT) => self.skip(ty).map(|_| Logical::String)?,
                (2, T_STRUCT) => self.skip(ty).map(|_| Logical::Map)?,
                (3, T_STRUCT) => self.skip(ty).map(|_| Logical::List)?,
                (4, T_STRUCT) => self.skip(ty).map(|_| Logical::Enum)?,
                (5, T_STRUCT) => {
                    let (mut scale, mut precision) = (0, 0);
                    let mut inner_last = 0;
                    while let Some((ty, id)) = self.field(&mut inner_last)? {
                        match (id, ty) {
                            (1, T_I32) => scale = self.i32()?,
                            (2, T_I32) => precision = self.i32()?,
                            (_, ty) => self.skip(ty)?,
                        }
                    }
                    Logical::Decimal { precision, scale }
                }
                (6, T_STRUCT) => self.skip(ty).map(|_| Logical::Date)?,
                (8, T_STRUCT) => self.skip(ty).map(|_| Logical::Timestamp)?,
                (10, T_STRUCT) => {
                    let (mut bits, mut signed) = (0i8, true);
                    let mut inner_last = 0;
                    while let Some((ty, id)) = self.field(&mut inner_last)? {
                        match (id, ty) {
                            (1, T_BYTE) => bits = self.byte()? as i8,
                            (2, T_TRUE) => signed = true,
                            (2, T_FALSE) => signed = false,
                            (_, ty) => self.skip(ty)?,
                        }
                    }
                    Logical::Integer { bits, signed }
                }
                (12, T_STRUCT) => self.skip(ty).map(|_| Logical::Json)?,
                (_, ty) => self.skip(ty).map(|_| Logical::Other)?,
            };
        }
        self.depth -= 1;
        Ok(logical)
    }
}

/// Decode the metadata bytes (without the 8-byte tail) into a schema. Work
/// is counted against the default budget; see [`infer_parquet_within`].
pub fn infer_parquet(metadata: &[u8]) -> Result<InferredSchema, Reason> {
    infer_parquet_within(metadata, &mut Work::default())
}

/// [`infer_parquet`], counting the schema elements and fields checked
/// against `work`.
pub fn infer_parquet_within(metadata: &[u8], work: &mut Work) -> Result<InferredSchema, Reason> {
    let (elements, rows) = Thrift::new(metadata)
        .file_metadata()
        .map_err(|e| format!("corrupt Parquet footer: {e}"))?;
    work.spend(elements.len() as u64)?;
    let (root, rest) = elements
        .split_first()
        .ok_or("corrupt Parquet footer: empty schema")?;
    let mut cursor = Cursor {
        elements: rest,
        pos: 0,
    };
    let count = usize::try_from(root.num_children)
        .map_err(|_| "corrupt Parquet footer: negative child count")?;
    if count == 0 {
        return Err("the Parquet schema has no columns".into());
    }
    let mut raw_names = Vec::new();
    let mut types = Vec::new();
    let mut typing = Typing { work, nested: 0 };
    for _ in 0..count {
        let node = cursor.node(1)?;
        raw_names.push(node.element.name.clone());
        types.push(field_type(&node, 1, &mut typing)?);
    }
    if cursor.pos != rest.len() {
        return Err("corrupt Parquet footer: schema elements left over".into());
    }
    let normalized = names::column_names(&raw_names)?;
    for (raw, name) in raw_names.iter().zip(&normalized) {
        if !only_case_differs(raw, name) {
            return Err(format!(
                "column `{}` is not a valid Athena name, and Parquet columns are read by name so it cannot be renamed",
                printable(raw)
            ));
        }
    }
    let columns: Vec<Column> = normalized
        .into_iter()
        .zip(types)
        .map(|(n, t)| Column::new(n, t))
        .collect();
    limits::check_columns(&columns, typing.work)?;
    Ok(InferredSchema {
        format: DataFormat::Parquet,
        compression: Compression::None,
        columns,
        quoted: false,
        json_mapping: Vec::new(),
        row_count: u64::try_from(rows).ok(),
    })
}

/// The schema as a tree.
struct Node<'a> {
    element: &'a Element,
    children: Vec<Node<'a>>,
}

struct Cursor<'a> {
    elements: &'a [Element],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn node(&mut self, depth: usize) -> Result<Node<'a>, Reason> {
        if depth > MAX_DEPTH {
            return Err(format!(
                "the Parquet schema nests deeper than {MAX_DEPTH} levels"
            ));
        }
        let element = self
            .elements
            .get(self.pos)
            .ok_or("corrupt Parquet footer: the schema ends early")?;
        self.pos += 1;
        let count = usize::try_from(element.num_children)
            .map_err(|_| "corrupt Parquet footer: negative child count")?;
        if count > self.elements.len() - self.pos {
            return Err("corrupt Parquet footer: more children than schema elements".into());
        }
        let mut children = Vec::with_capacity(count);
        for _ in 0..count {
            children.push(self.node(depth + 1)?);
        }
        Ok(Node { element, children })
    }
}

/// The work counter of one schema, and the nested elements typed so far.
struct Typing<'w> {
    work: &'w mut Work,
    nested: usize,
}

impl Typing<'_> {
    /// Count the children of a group below the columns. List and map
    /// wrappers are elements too, so the early bound is twice the cap on
    /// nested fields; `check_columns` applies the cap itself to the types.
    fn children(&mut self, node: &Node) -> Result<(), Reason> {
        self.work.spend(node.children.len() as u64)?;
        self.nested += node.children.len();
        if self.nested > 2 * MAX_NESTED_FIELDS {
            return Err(limits::too_many_nested_fields("the Parquet schema"));
        }
        Ok(())
    }
}

fn is_group(node: &Node) -> bool {
    node.element.physical.is_none()
}

/// The Glue type of a field, including its repetition (a bare repeated field
/// is a list in Parquet's legacy layout).
fn field_type(node: &Node, depth: usize, typing: &mut Typing) -> Result<GlueType, Reason> {
    let ty = value_type(node, depth, typing)?;
    Ok(if node.element.repetition == Some(REPEATED) {
        GlueType::Array(Box::new(ty))
    } else {
        ty
    })
}

fn value_type(node: &Node, depth: usize, typing: &mut Typing) -> Result<GlueType, Reason> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "the Parquet schema nests deeper than {MAX_DEPTH} levels"
        ));
    }
    let e = node.element;
    if !is_group(node) {
        return Ok(primitive(e));
    }
    typing.children(node)?;
    let is_list = e.logical == Some(Logical::List) || e.converted == Some(LIST);
    let is_map =
        e.logical == Some(Logical::Map) || matches!(e.converted, Some(MAP | MAP_KEY_VALUE));
    if is_list {
        let [repeated] = node.children.as_slice() else {
            return Err(format!(
                "list `{}` must have exactly one repeated field",
                printable(&e.name)
            ));
        };
        // Three-level lists wrap the element in a one-field repeated group;
        // the legacy two-level forms repeat the element itself.
        let element_type = if is_group(repeated)
            && repeated.children.len() == 1
            && repeated.element.name != "array"
            && !repeated.element.name.ends_with("_tuple")
        {
            value_type(&repeated.children[0], depth + 1, typing)?
        } else {
            value_type(repeated, depth + 1, typing)?
        };
        return Ok(GlueType::Array(Box::new(element_type)));
    }
    if is_map {
        let bad = || {
            format!(
                "map `{}` must hold one repeated key/value group",
                printable(&e.name)
            )
        };
        let [key_value] = node.children.as_slice() else {
            return Err(bad());
        };
        let (key, value) = match key_value.children.as_slice() {
            [key, value] => (
                value_type(key, depth + 1, typing)?,
                value_type(value, depth + 1, typing)?,
            ),
            [key] => (value_type(key, depth + 1, typing)?, GlueType::Boolean),
            _ => return Err(bad()),
        };
        return Ok(GlueType::Map(Box::new(key), Box::new(value)));
    }
    if node.children.is_empty() {
        return Ok(GlueType::String);
    }
    let mut fields: Vec<(String, GlueType)> = Vec::with_capacity(node.children.len());
    let mut seen: HashSet<String> = HashSet::with_capacity(node.children.len());
    for child in &node.children {
        let raw = &child.element.name;
        let name = names::normalize(raw).map_err(|e| format!("nested field: {e}"))?;
        if !only_case_differs(raw, &name) {
            return Err(format!(
                "nested field `{}` is not a valid Athena name and cannot be renamed",
                printable(raw)
            ));
        }
        if !seen.insert(name.clone()) {
            return Err(format!("nested fields collide on `{name}`"));
        }
        fields.push((name, field_type(child, depth + 1, typing)?));
    }
    Ok(GlueType::Struct(fields))
}

fn decimal(precision: i32, scale: i32) -> GlueType {
    let p = precision.clamp(1, 38) as u32;
    let s = scale.clamp(0, p as i32) as u32;
    GlueType::Decimal(p, s)
}

fn primitive(e: &Element) -> GlueType {
    if let Some(Logical::Decimal { precision, scale }) = e.logical {
        return decimal(precision, scale);
    }
    if e.converted == Some(DECIMAL) {
        return decimal(e.precision, e.scale);
    }
    let logical = e.logical;
    let converted = e.converted;
    match e.physical.expect("primitive") {
        Physical::Boolean => GlueType::Boolean,
        Physical::Int32 => match (logical, converted) {
            (Some(Logical::Date), _) | (_, Some(DATE)) => GlueType::Date,
            (
                Some(Logical::Integer {
                    bits: 8,
                    signed: true,
                }),
                _,
            )
            | (_, Some(INT_8)) => GlueType::TinyInt,
            (
                Some(Logical::Integer {
                    bits: 16,
                    signed: true,
                }),
                _,
            )
            | (_, Some(INT_16)) => GlueType::SmallInt,
            // Unsigned 8 and 16 bit fit a signed int; unsigned 32 needs bigint.
            (
                Some(Logical::Integer {
                    bits: 32,
                    signed: false,
                }),
                _,
            )
            | (_, Some(UINT_32)) => GlueType::BigInt,
            _ => GlueType::Int,
        },
        Physical::Int64 => match (logical, converted) {
            (Some(Logical::Timestamp), _) | (_, Some(TIMESTAMP_MILLIS | TIMESTAMP_MICROS)) => {
                GlueType::Timestamp
            }
            (
                Some(Logical::Integer {
                    bits: 64,
                    signed: false,
                }),
                _,
            )
            | (_, Some(UINT_64)) => GlueType::Decimal(20, 0),
            _ => GlueType::BigInt,
        },
        Physical::Int96 => GlueType::Timestamp,
        Physical::Float => GlueType::Float,
        Physical::Double => GlueType::Double,
        Physical::ByteArray => match (logical, converted) {
            (Some(Logical::String | Logical::Enum | Logical::Json), _)
            | (_, Some(UTF8 | ENUM | JSON)) => GlueType::String,
            _ => GlueType::Binary,
        },
        Physical::FixedLenByteArray => GlueType::Binary,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use parquet::data_type::Int64Type;
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;
    use proptest::prelude::*;
    use std::sync::Arc;

    /// A Parquet file with `schema` and, when every column is a required
    /// INT64, `rows` rows.
    pub fn parquet_file(schema: &str, rows: &[i64]) -> Vec<u8> {
        let schema = Arc::new(parse_message_type(schema).unwrap());
        let mut buffer = Vec::new();
        let mut writer = SerializedFileWriter::new(
            &mut buffer,
            schema,
            Arc::new(WriterProperties::builder().build()),
        )
        .unwrap();
        if !rows.is_empty() {
            let mut group = writer.next_row_group().unwrap();
            while let Some(mut column) = group.next_column().unwrap() {
                column
                    .typed::<Int64Type>()
                    .write_batch(rows, None, None)
                    .unwrap();
                column.close().unwrap();
            }
            group.close().unwrap();
        }
        writer.close().unwrap();
        buffer
    }

    /// The metadata bytes of a whole file, as the handler would fetch them.
    pub fn metadata_of(file: &[u8]) -> &[u8] {
        let length = metadata_length(file, file.len() as u64).unwrap() as usize;
        &file[file.len() - 8 - length..file.len() - 8]
    }

    fn columns(schema: &InferredSchema) -> Vec<(String, String)> {
        schema
            .columns
            .iter()
            .map(|c| (c.name.clone(), c.ty.to_string()))
            .collect()
    }

    #[test]
    fn maps_parquet_types_to_glue() {
        let file = parquet_file(
            "message m {
                required int64 Id;
                optional binary name (UTF8);
                optional int32 day (DATE);
                optional int64 ts (TIMESTAMP(MICROS,true));
                optional int32 small (INTEGER(16,true));
                optional fixed_len_byte_array(16) price (DECIMAL(30,4));
                optional double score;
                optional boolean ok;
                optional binary blob;
                optional int96 legacy_ts;
                optional group tags (LIST) { repeated group list { optional binary element (UTF8); } }
                optional group attrs (MAP) { repeated group key_value { required binary key (UTF8); optional int64 value; } }
                optional group address { optional binary city (UTF8); optional int32 zip; }
                repeated int32 legacy_list;
            }",
            &[],
        );
        let schema = infer_parquet(metadata_of(&file)).unwrap();
        assert_eq!(
            columns(&schema),
            [
                ("id", "bigint"),
                ("name", "string"),
                ("day", "date"),
                ("ts", "timestamp"),
                ("small", "smallint"),
                ("price", "decimal(30,4)"),
                ("score", "double"),
                ("ok", "boolean"),
                ("blob", "binary"),
                ("legacy_ts", "timestamp"),
                ("tags", "array<string>"),
                ("attrs", "map<string,bigint>"),
                ("address", "struct<city:string,zip:int>"),
                ("legacy_list", "array<int>"),
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .to_vec()
        );
        assert_eq!(schema.row_count, Some(0));
    }

    #[test]
    fn counts_rows_from_the_footer() {
        let file = parquet_file(
            "message m { required int64 a; required int64 b; }",
            &[1, 2, 3],
        );
        assert_eq!(
            infer_parquet(metadata_of(&file)).unwrap().row_count,
            Some(3)
        );
    }

    #[test]
    fn names_that_need_more_than_lowercasing_are_refused() {
        let file = parquet_file("message m { required int64 order-id; }", &[]);
        let error = infer_parquet(metadata_of(&file)).unwrap_err();
        assert!(error.contains("cannot be renamed"), "{error}");
    }

    #[test]
    fn footer_lengths_are_checked_before_reading() {
        let file = parquet_file("message m { required int64 a; }", &[1]);
        let size = file.len() as u64;
        assert!(metadata_length(&file, size).is_ok());
        assert!(metadata_length(b"PAR1", 4)
            .unwrap_err()
            .contains("too small"));
        let mut huge = file.clone();
        let n = huge.len();
        huge[n - 8..n - 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(metadata_length(&huge, size)
            .unwrap_err()
            .contains("more than"));
        huge[n - 8..n - 4].copy_from_slice(&(size as u32).to_le_bytes());
        assert!(metadata_length(&huge, size).unwrap_err().contains("only"));
        let mut not_parquet = file.clone();
        not_parquet[n - 1] = b'X';
        assert!(metadata_length(&not_parquet, size)
            .unwrap_err()
            .contains("not a Parquet file"));
        not_parquet[n - 4..].copy_from_slice(b"PARE");
        assert!(metadata_length(&not_parquet, size)
            .unwrap_err()
            .contains("encrypted"));
        // The footer says its size; a 5 GB object needs only the tail.
        assert!(metadata_length(&file[n - 8..], 5 << 30).is_ok());
    }

    #[test]
    fn truncated_metadata_is_an_error_or_already_enough() {
        let file = parquet_file("message m { required int64 a; required int64 b; }", &[1, 2]);
        let metadata = metadata_of(&file);
        let full = infer_parquet(metadata).unwrap();
        assert!(infer_parquet(&metadata[..0]).is_err());
        assert!(infer_parquet(&metadata[..1]).is_err());
        // Schema and row count come first; what follows (row groups) is not
        // needed, so a cut there still gives the same answer.
        for cut in 0..metadata.len() {
            if let Ok(partial) = infer_parquet(&metadata[..cut]) {
                assert_eq!(partial, full, "cut at {cut}");
            }
        }
    }

    /// A file whose only column is a struct of `fields` int32 fields.
    fn wide_struct_file(fields: usize) -> Vec<u8> {
        let body: String = (0..fields)
            .map(|i| format!("optional int32 f{i}; "))
            .collect();
        parquet_file(
            &format!("message m {{ optional group s {{ {body} }} }}"),
            &[],
        )
    }

    #[test]
    fn a_huge_struct_is_refused_after_bounded_work() {
        let file = wide_struct_file(30_000);
        let mut work = Work::default();
        let error = infer_parquet_within(metadata_of(&file), &mut work).unwrap_err();
        assert!(error.contains("more than 10000 nested fields"), "{error}");
        // The elements once, and the children of the one group once.
        assert!(work.spent() <= 2 * 30_001 + 10, "{}", work.spent());
        // Under the cap, the name checks stay linear: four times the fields,
        // about four times the work (it was sixteen).
        let spent = |fields: usize| {
            let mut work = Work::default();
            infer_parquet_within(metadata_of(&wide_struct_file(fields)), &mut work).unwrap();
            work.spent()
        };
        let (small, large) = (spent(2000), spent(8000));
        assert!(large <= 4 * small + 100, "{small} then {large}");
    }

    #[test]
    fn a_footer_over_the_work_budget_is_refused() {
        let file = wide_struct_file(2000);
        let error = infer_parquet_within(metadata_of(&file), &mut Work::new(1000)).unwrap_err();
        assert!(error.contains("work budget of 1000 units"), "{error}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// Corrupting footer bytes gives an error or a schema, never a panic.
        #[test]
        fn corrupt_footers_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
            let file = parquet_file(
                "message m { required int64 a; optional group g (LIST) { repeated group list { optional binary e (UTF8); } } }",
                &[],
            );
            let mut metadata = metadata_of(&file).to_vec();
            for (at, byte) in flips {
                let i = at.index(metadata.len());
                metadata[i] = byte;
            }
            let _ = infer_parquet(&metadata);
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = infer_parquet(&bytes);
            let _ = metadata_length(&bytes, bytes.len() as u64);
        }
    }
}
