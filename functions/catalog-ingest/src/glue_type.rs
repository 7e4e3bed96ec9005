//! Glue (Hive) column types: build them, print them as Glue stores them
//! (`struct<a:bigint,b:array<string>>`), parse what Glue returns, and decide
//! whether data of one type can be read as another.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GlueType {
    Boolean,
    TinyInt,
    SmallInt,
    Int,
    BigInt,
    Float,
    Double,
    Decimal(u32, u32),
    String,
    Binary,
    Date,
    Timestamp,
    Array(Box<GlueType>),
    Map(Box<GlueType>, Box<GlueType>),
    Struct(Vec<(String, GlueType)>),
    /// A type we do not model (`varchar(10)`, `uniontype<...>`), kept as text.
    Other(String),
}

impl fmt::Display for GlueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GlueType::Boolean => f.write_str("boolean"),
            GlueType::TinyInt => f.write_str("tinyint"),
            GlueType::SmallInt => f.write_str("smallint"),
            GlueType::Int => f.write_str("int"),
            GlueType::BigInt => f.write_str("bigint"),
            GlueType::Float => f.write_str("float"),
            GlueType::Double => f.write_str("double"),
            GlueType::Decimal(p, s) => write!(f, "decimal({p},{s})"),
            GlueType::String => f.write_str("string"),
            GlueType::Binary => f.write_str("binary"),
            GlueType::Date => f.write_str("date"),
            GlueType::Timestamp => f.write_str("timestamp"),
            GlueType::Array(item) => write!(f, "array<{item}>"),
            GlueType::Map(k, v) => write!(f, "map<{k},{v}>"),
            GlueType::Struct(fields) => {
                f.write_str("struct<")?;
                for (i, (name, ty)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{name}:{ty}")?;
                }
                f.write_str(">")
            }
            GlueType::Other(text) => f.write_str(text),
        }
    }
}

impl GlueType {
    /// Parse a Glue type string. Never fails: what is not understood is
    /// `Other`, compared as text.
    pub fn parse(text: &str) -> GlueType {
        let text = text.trim();
        let mut parser = Parser {
            s: text.as_bytes(),
            i: 0,
            depth: 0,
        };
        match parser.ty() {
            Some(ty) if parser.i == parser.s.len() => ty,
            _ => GlueType::Other(text.to_ascii_lowercase()),
        }
    }

    fn integer_rank(&self) -> Option<u8> {
        match self {
            GlueType::TinyInt => Some(1),
            GlueType::SmallInt => Some(2),
            GlueType::Int => Some(3),
            GlueType::BigInt => Some(4),
            _ => None,
        }
    }

    /// Whether values of type `self` (what a new file holds) can be read
    /// through a column declared `declared` without loss or error.
    pub fn fits_in(&self, declared: &GlueType) -> bool {
        if self == declared {
            return true;
        }
        match (self, declared) {
            (a, b) if a.integer_rank().is_some() && b.integer_rank().is_some() => {
                a.integer_rank() <= b.integer_rank()
            }
            (a, GlueType::Double) if a.integer_rank().is_some() => true,
            (GlueType::Float, GlueType::Double) => true,
            // Text formats: anything reads as a string.
            (_, GlueType::String) => !matches!(
                self,
                GlueType::Array(_) | GlueType::Map(..) | GlueType::Struct(_)
            ),
            (GlueType::Date, GlueType::Timestamp) => true,
            (GlueType::Array(a), GlueType::Array(b)) => a.fits_in(b),
            (GlueType::Map(ka, va), GlueType::Map(kb, vb)) => ka.fits_in(kb) && va.fits_in(vb),
            // A struct with fewer fields reads as nulls for the missing ones.
            (GlueType::Struct(have), GlueType::Struct(declared)) => {
                // By name, through a map: linear in the fields, not quadratic.
                let declared = by_name(declared);
                have.iter()
                    .all(|(name, ty)| declared.get(name.as_str()).is_some_and(|d| ty.fits_in(d)))
            }
            (GlueType::Decimal(p1, s1), GlueType::Decimal(p2, s2)) => {
                s1 <= s2 && p1.saturating_sub(*s1) <= p2.saturating_sub(*s2)
            }
            _ => false,
        }
    }

    /// The narrowest type both `a` and `b` fit in, for merging the rows of a
    /// sample: ints widen to bigint and double, structs merge field-wise,
    /// anything else falls back to string.
    pub fn unify(a: &GlueType, b: &GlueType) -> GlueType {
        if a.fits_in(b) && !matches!(b, GlueType::String) {
            return b.clone();
        }
        if b.fits_in(a) && !matches!(a, GlueType::String) {
            return a.clone();
        }
        match (a, b) {
            (GlueType::Array(x), GlueType::Array(y)) => {
                GlueType::Array(Box::new(GlueType::unify(x, y)))
            }
            (GlueType::Struct(x), GlueType::Struct(y)) => {
                let mut fields = x.clone();
                let mut at: std::collections::HashMap<String, usize> = x
                    .iter()
                    .enumerate()
                    .map(|(i, (name, _))| (name.clone(), i))
                    .collect();
                for (name, ty) in y {
                    match at.get(name) {
                        Some(&i) => fields[i].1 = GlueType::unify(&fields[i].1, ty),
                        None => {
                            at.insert(name.clone(), fields.len());
                            fields.push((name.clone(), ty.clone()));
                        }
                    }
                }
                GlueType::Struct(fields)
            }
            (GlueType::Timestamp, GlueType::Date) | (GlueType::Date, GlueType::Timestamp) => {
                GlueType::Timestamp
            }
            _ => GlueType::String,
        }
    }
}

/// The fields of a struct by name (the first, should a name repeat).
fn by_name(fields: &[(String, GlueType)]) -> std::collections::HashMap<&str, &GlueType> {
    let mut map = std::collections::HashMap::with_capacity(fields.len());
    for (name, ty) in fields {
        map.entry(name.as_str()).or_insert(ty);
    }
    map
}

/// Nested types deeper than this are kept as text (and JSON deeper than this
/// is typed as a string) to bound recursion on hostile input.
pub const MAX_DEPTH: usize = 32;

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    depth: usize,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.skip_ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn word(&mut self) -> String {
        self.skip_ws();
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_')
        {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).to_ascii_lowercase()
    }

    fn number(&mut self) -> Option<u32> {
        let w = self.word();
        w.parse().ok()
    }

    fn ty(&mut self) -> Option<GlueType> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return None;
        }
        let word = self.word();
        let ty = match word.as_str() {
            "boolean" => GlueType::Boolean,
            "tinyint" => GlueType::TinyInt,
            "smallint" => GlueType::SmallInt,
            "int" | "integer" => GlueType::Int,
            "bigint" => GlueType::BigInt,
            "float" => GlueType::Float,
            "double" => GlueType::Double,
            "string" => GlueType::String,
            "binary" => GlueType::Binary,
            "date" => GlueType::Date,
            "timestamp" => GlueType::Timestamp,
            "decimal" => {
                if self.eat(b'(') {
                    let p = self.number()?;
                    let s = if self.eat(b',') { self.number()? } else { 0 };
                    if !self.eat(b')') {
                        return None;
                    }
                    GlueType::Decimal(p, s)
                } else {
                    GlueType::Decimal(10, 0)
                }
            }
            "array" => {
                if !self.eat(b'<') {
                    return None;
                }
                let item = self.ty()?;
                if !self.eat(b'>') {
                    return None;
                }
                GlueType::Array(Box::new(item))
            }
            "map" => {
                if !self.eat(b'<') {
                    return None;
                }
                let k = self.ty()?;
                if !self.eat(b',') {
                    return None;
                }
                let v = self.ty()?;
                if !self.eat(b'>') {
                    return None;
                }
                GlueType::Map(Box::new(k), Box::new(v))
            }
            "struct" => {
                if !self.eat(b'<') {
                    return None;
                }
                let mut fields = Vec::new();
                if !self.eat(b'>') {
                    loop {
                        let name = self.word();
                        if name.is_empty() || !self.eat(b':') {
                            return None;
                        }
                        fields.push((name, self.ty()?));
                        if self.eat(b'>') {
                            break;
                        }
                        if !self.eat(b',') {
                            return None;
                        }
                    }
                }
                GlueType::Struct(fields)
            }
            _ => return None,
        };
        self.depth -= 1;
        self.skip_ws();
        Some(ty)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub fn arb_type() -> impl Strategy<Value = GlueType> {
        let leaf = prop_oneof![
            Just(GlueType::Boolean),
            Just(GlueType::TinyInt),
            Just(GlueType::SmallInt),
            Just(GlueType::Int),
            Just(GlueType::BigInt),
            Just(GlueType::Float),
            Just(GlueType::Double),
            (1u32..38, 0u32..10).prop_map(|(p, s)| GlueType::Decimal(p.max(s), s)),
            Just(GlueType::String),
            Just(GlueType::Binary),
            Just(GlueType::Date),
            Just(GlueType::Timestamp),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                inner.clone().prop_map(|t| GlueType::Array(Box::new(t))),
                (inner.clone(), inner.clone())
                    .prop_map(|(k, v)| GlueType::Map(Box::new(k), Box::new(v))),
                proptest::collection::btree_map("[a-z][a-z0-9_]{0,6}", inner, 1..4)
                    .prop_map(|m| GlueType::Struct(m.into_iter().collect())),
            ]
        })
    }

    #[test]
    fn prints_and_parses_glue_strings() {
        let ty = GlueType::Struct(vec![
            ("id".into(), GlueType::BigInt),
            ("tags".into(), GlueType::Array(Box::new(GlueType::String))),
            ("price".into(), GlueType::Decimal(10, 2)),
        ]);
        let text = ty.to_string();
        assert_eq!(
            text,
            "struct<id:bigint,tags:array<string>,price:decimal(10,2)>"
        );
        assert_eq!(GlueType::parse(&text), ty);
        assert_eq!(
            GlueType::parse("STRUCT< a : INT >"),
            GlueType::Struct(vec![("a".into(), GlueType::Int)])
        );
        assert_eq!(
            GlueType::parse("varchar(10)"),
            GlueType::Other("varchar(10)".into())
        );
        assert_eq!(
            GlueType::parse("array<int"),
            GlueType::Other("array<int".into())
        );
        let deep = format!("{}int{}", "array<".repeat(100), ">".repeat(100));
        assert!(matches!(GlueType::parse(&deep), GlueType::Other(_)));
    }

    #[test]
    fn fitting_follows_safe_reads() {
        assert!(GlueType::Int.fits_in(&GlueType::BigInt));
        assert!(!GlueType::BigInt.fits_in(&GlueType::Int));
        assert!(GlueType::BigInt.fits_in(&GlueType::Double));
        assert!(!GlueType::Double.fits_in(&GlueType::BigInt));
        assert!(GlueType::Date.fits_in(&GlueType::String));
        assert!(!GlueType::String.fits_in(&GlueType::Date));
        assert!(GlueType::Decimal(5, 2).fits_in(&GlueType::Decimal(10, 2)));
        assert!(!GlueType::Decimal(10, 4).fits_in(&GlueType::Decimal(10, 2)));
    }

    #[test]
    fn unify_widens() {
        assert_eq!(
            GlueType::unify(&GlueType::BigInt, &GlueType::Double),
            GlueType::Double
        );
        assert_eq!(
            GlueType::unify(&GlueType::Boolean, &GlueType::BigInt),
            GlueType::String
        );
        assert_eq!(
            GlueType::unify(&GlueType::Date, &GlueType::Timestamp),
            GlueType::Timestamp
        );
        let a = GlueType::Struct(vec![("x".into(), GlueType::BigInt)]);
        let b = GlueType::Struct(vec![
            ("y".into(), GlueType::String),
            ("x".into(), GlueType::Double),
        ]);
        assert_eq!(
            GlueType::unify(&a, &b),
            GlueType::Struct(vec![
                ("y".into(), GlueType::String),
                ("x".into(), GlueType::Double)
            ])
        );
        let c = GlueType::Struct(vec![("z".into(), GlueType::Boolean)]);
        assert_eq!(
            GlueType::unify(&a, &c),
            GlueType::Struct(vec![
                ("x".into(), GlueType::BigInt),
                ("z".into(), GlueType::Boolean)
            ])
        );
    }

    proptest! {
        #[test]
        fn display_then_parse_round_trips(ty in arb_type()) {
            prop_assert_eq!(GlueType::parse(&ty.to_string()), ty);
        }

        #[test]
        fn both_sides_fit_their_unification(a in arb_type(), b in arb_type()) {
            let u = GlueType::unify(&a, &b);
            // Where the two conflict, unification falls back to a string.
            let fallback = u.to_string().contains("string");
            prop_assert!(a.fits_in(&u) || fallback, "{} !<= {}", a, u);
            prop_assert!(b.fits_in(&u) || fallback, "{} !<= {}", b, u);
        }

        #[test]
        fn parsing_garbage_never_panics(text in "\\PC{0,64}") {
            let _ = GlueType::parse(&text);
        }
    }
}
