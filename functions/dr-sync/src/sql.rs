//! Statement text for the secondary's SQL warehouse. Every name is quoted and every
//! literal escaped here, so no object name or comment from the primary can change a
//! statement's meaning.

use std::collections::BTreeMap;

use crate::inventory::{Column, Securable};
use crate::mapping::FullName;

/// A backquoted identifier; a backquote inside is doubled (Databricks SQL's rule).
pub fn ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

pub fn full(name: &FullName) -> String {
    format!(
        "{}.{}.{}",
        ident(&name.catalog),
        ident(&name.schema),
        ident(&name.name)
    )
}

/// A dotted name of any length (`catalog`, `catalog.schema`), each part quoted.
pub fn dotted(name: &str) -> String {
    name.split('.').map(ident).collect::<Vec<_>>().join(".")
}

/// A string literal. Databricks SQL reads backslash escapes inside literals, so both
/// the quote and the backslash are escaped.
pub fn literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// `CREATE OR REPLACE TABLE target DEEP CLONE source [LOCATION ...]`. On a target that
/// is already a clone of the source, Delta copies only the files it lacks.
pub fn deep_clone(target: &FullName, source: &FullName, location: Option<&str>) -> String {
    let mut s = format!(
        "CREATE OR REPLACE TABLE {} DEEP CLONE {}",
        full(target),
        full(source)
    );
    if let Some(l) = location {
        s.push_str(&format!(" LOCATION {}", literal(l)));
    }
    s
}

/// An external table over replicated storage: its columns, format and location.
/// Delta tables read their schema from the log, so they get no column list.
pub fn create_external_table(
    target: &FullName,
    columns: &[Column],
    format: &str,
    location: &str,
    replace: bool,
) -> String {
    let verb = if replace {
        "CREATE OR REPLACE TABLE"
    } else {
        "CREATE TABLE IF NOT EXISTS"
    };
    let delta = format.eq_ignore_ascii_case("delta");
    let cols = if delta || columns.is_empty() {
        String::new()
    } else {
        format!(
            " ({})",
            columns
                .iter()
                .map(|c| format!("{} {}", ident(&c.name), c.type_text))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    format!(
        "{verb} {}{cols} USING {} LOCATION {}",
        full(target),
        format.to_ascii_uppercase(),
        literal(location)
    )
}

pub fn create_view(target: &FullName, definition: &str) -> String {
    format!("CREATE OR REPLACE VIEW {} AS {definition}", full(target))
}

pub fn create_external_volume(target: &FullName, location: &str, comment: Option<&str>) -> String {
    let mut s = format!("CREATE EXTERNAL VOLUME IF NOT EXISTS {}", full(target));
    s.push_str(&format!(" LOCATION {}", literal(location)));
    if let Some(c) = comment {
        s.push_str(&format!(" COMMENT {}", literal(c)));
    }
    s
}

/// The keyword of a securable in ALTER / COMMENT ON / DROP statements.
pub fn keyword(kind: &str) -> &'static str {
    match kind {
        "CATALOG" => "CATALOG",
        "SCHEMA" => "SCHEMA",
        "VIEW" => "VIEW",
        "VOLUME" => "VOLUME",
        "FUNCTION" => "FUNCTION",
        _ => "TABLE",
    }
}

/// `ALTER ... SET TAGS` and/or `UNSET TAGS` (two statements when both are needed).
/// A column's securable name is `catalog.schema.table.column`.
pub fn tag_statements(
    securable: &Securable,
    set: &BTreeMap<String, String>,
    unset: &[String],
) -> Vec<String> {
    let target = if securable.kind == "COLUMN" {
        let (table, column) = securable
            .name
            .rsplit_once('.')
            .unwrap_or((&securable.name, ""));
        format!("TABLE {} ALTER COLUMN {}", dotted(table), ident(column))
    } else {
        format!("{} {}", keyword(&securable.kind), dotted(&securable.name))
    };
    let mut out = Vec::new();
    if !set.is_empty() {
        let pairs: Vec<String> = set
            .iter()
            .map(|(k, v)| format!("{} = {}", literal(k), literal(v)))
            .collect();
        out.push(format!("ALTER {target} SET TAGS ({})", pairs.join(", ")));
    }
    if !unset.is_empty() {
        let keys: Vec<String> = unset.iter().map(|k| literal(k)).collect();
        out.push(format!("ALTER {target} UNSET TAGS ({})", keys.join(", ")));
    }
    out
}

/// `COMMENT ON TABLE t IS ...` or `ALTER TABLE t ALTER COLUMN c COMMENT ...`.
pub fn comment(securable: &Securable, comment: Option<&str>) -> String {
    let text = comment.map(literal).unwrap_or_else(|| "NULL".to_string());
    if securable.kind == "COLUMN" {
        let (table, column) = securable
            .name
            .rsplit_once('.')
            .unwrap_or((&securable.name, ""));
        let text = comment.map(literal).unwrap_or_else(|| "''".to_string());
        format!(
            "ALTER TABLE {} ALTER COLUMN {} COMMENT {text}",
            dotted(table),
            ident(column)
        )
    } else {
        format!(
            "COMMENT ON {} {} IS {text}",
            keyword(&securable.kind),
            dotted(&securable.name)
        )
    }
}

pub fn create_function(
    target: &FullName,
    parameters: &str,
    returns: &str,
    body: &str,
    comment: Option<&str>,
) -> String {
    let mut s = format!(
        "CREATE OR REPLACE FUNCTION {}({parameters}) RETURNS {returns}",
        full(target)
    );
    if let Some(c) = comment {
        s.push_str(&format!(" COMMENT {}", literal(c)));
    }
    s.push_str(&format!(" RETURN {body}"));
    s
}

pub fn drop(kind: &str, name: &str) -> String {
    match kind {
        // Never CASCADE: a schema that still holds objects the sync does not own
        // (excluded by the spec) must fail to drop, not take them with it.
        "SCHEMA" => format!("DROP SCHEMA IF EXISTS {}", dotted(name)),
        k => format!("DROP {} IF EXISTS {}", keyword(k), dotted(name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn name(s: &str) -> FullName {
        FullName::parse(s).unwrap()
    }

    #[test]
    fn clones_name_source_target_and_location() {
        assert_eq!(
            deep_clone(&name("main.s.t"), &name("share_main.s.t"), None),
            "CREATE OR REPLACE TABLE `main`.`s`.`t` DEEP CLONE `share_main`.`s`.`t`"
        );
        assert_eq!(
            deep_clone(&name("m.s.t"), &name("x.s.t"), Some("s3://b/it's")),
            "CREATE OR REPLACE TABLE `m`.`s`.`t` DEEP CLONE `x`.`s`.`t` LOCATION 's3://b/it\\'s'"
        );
    }

    #[test]
    fn external_tables_carry_columns_unless_delta() {
        let cols = vec![Column {
            name: "a b".into(),
            type_text: "bigint".into(),
            comment: None,
        }];
        assert_eq!(
            create_external_table(&name("m.s.t"), &cols, "parquet", "s3://b/t", false),
            "CREATE TABLE IF NOT EXISTS `m`.`s`.`t` (`a b` bigint) USING PARQUET LOCATION 's3://b/t'"
        );
        assert_eq!(
            create_external_table(&name("m.s.t"), &cols, "delta", "s3://b/t", true),
            "CREATE OR REPLACE TABLE `m`.`s`.`t` USING DELTA LOCATION 's3://b/t'"
        );
    }

    #[test]
    fn tags_and_comments_on_columns() {
        let col = Securable::new("COLUMN", "m.s.t.email");
        let set = BTreeMap::from([("pii".to_string(), "true".to_string())]);
        assert_eq!(
            tag_statements(&col, &set, &["old".into()]),
            [
                "ALTER TABLE `m`.`s`.`t` ALTER COLUMN `email` SET TAGS ('pii' = 'true')",
                "ALTER TABLE `m`.`s`.`t` ALTER COLUMN `email` UNSET TAGS ('old')"
            ]
        );
        assert_eq!(
            comment(&Securable::new("TABLE", "m.s.t"), Some("o'k")),
            "COMMENT ON TABLE `m`.`s`.`t` IS 'o\\'k'"
        );
        assert_eq!(
            comment(&Securable::new("TABLE", "m.s.t"), None),
            "COMMENT ON TABLE `m`.`s`.`t` IS NULL"
        );
    }

    /// Reads a literal back the way Databricks SQL does (backslash escapes).
    fn unliteral(s: &str) -> Option<String> {
        let inner = s.strip_prefix('\'')?.strip_suffix('\'')?;
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => out.push(match chars.next()? {
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    other => other,
                }),
                '\'' => return None,
                c => out.push(c),
            }
        }
        Some(out)
    }

    proptest! {
        #[test]
        fn literals_round_trip_and_never_close_early(value in any::<String>()) {
            let lit = literal(&value);
            prop_assert_eq!(unliteral(&lit), Some(value));
        }

        #[test]
        fn identifiers_have_only_doubled_backquotes_inside(value in any::<String>()) {
            let quoted = ident(&value);
            let inner = &quoted[1..quoted.len() - 1];
            prop_assert_eq!(inner.replace("``", ""), value.replace('`', ""));
            prop_assert_eq!(inner.replace("``", "`"), value);
        }
    }
}
