//! Table and column names as Glue and Athena accept them: lowercase ASCII
//! letters, digits and `_`, at most 255 characters.
//!
//! Printable ASCII punctuation (space, `-`, `.`, ...) becomes `_`, so
//! `Order Items` and `order-items` both become `order_items`. Anything that
//! cannot be mapped without guessing (non-ASCII, control characters) is
//! rejected with a reason rather than transliterated: two different keys must
//! never silently become one table. Collisions that the mapping itself can
//! cause (`a-b` vs `a_b`) are caught where they matter: a table's identity is
//! its location, and a column list must stay unique.

use lakeops_shared::spec::lake::GLUE_NAME_MAX;

/// Why a name cannot be used.
pub type Reason = String;

/// Normalise one identifier, or say why it cannot be one.
pub fn normalize(raw: &str) -> Result<String, Reason> {
    if let Some(c) = raw.chars().find(|c| c.is_control()) {
        return Err(format!(
            "`{}` contains the control character U+{:04X}",
            printable(raw),
            c as u32
        ));
    }
    if let Some(c) = raw.chars().find(|c| !c.is_ascii()) {
        return Err(format!(
            "`{}` contains the non-ASCII character `{c}`; Glue and Athena names are ASCII",
            printable(raw)
        ));
    }
    let name: String = raw
        .chars()
        .map(|c| match c {
            'A'..='Z' => c.to_ascii_lowercase(),
            'a'..='z' | '0'..='9' | '_' => c,
            _ => '_',
        })
        .collect();
    if name.is_empty() {
        return Err("the name is empty".to_string());
    }
    if name.chars().all(|c| c == '_') {
        return Err(format!("`{}` has no letter or digit", printable(raw)));
    }
    if name.len() > GLUE_NAME_MAX {
        return Err(format!(
            "`{}…` is longer than {GLUE_NAME_MAX} characters",
            &name[..32]
        ));
    }
    Ok(name)
}

/// The table name of the key segments that root a table, joined with `_`.
pub fn table_name(segments: &[&str]) -> Result<String, Reason> {
    let parts = segments
        .iter()
        .map(|s| normalize(s))
        .collect::<Result<Vec<_>, _>>()?;
    let name = parts.join("_");
    if name.len() > GLUE_NAME_MAX {
        return Err(format!(
            "the table name `{}…` is longer than {GLUE_NAME_MAX} characters",
            &name[..32]
        ));
    }
    Ok(name)
}

/// Normalise a list of column names. Blank names (a trailing comma in a CSV
/// header) become `col_<position>`, counted from 1. Two columns that end up
/// with the same name are an error, not a silent merge.
pub fn column_names(raw: &[String]) -> Result<Vec<String>, Reason> {
    let mut names = Vec::with_capacity(raw.len());
    let mut seen = std::collections::HashMap::new();
    for (i, column) in raw.iter().enumerate() {
        let name = if column.trim().is_empty() {
            format!("col_{}", i + 1)
        } else {
            normalize(column.trim()).map_err(|e| format!("column {}: {e}", i + 1))?
        };
        if let Some(first) = seen.insert(name.clone(), i) {
            return Err(format!(
                "columns {} (`{}`) and {} (`{}`) both become `{name}`",
                first + 1,
                printable(&raw[first]),
                i + 1,
                printable(column)
            ));
        }
        names.push(name);
    }
    Ok(names)
}

/// Whether normalising only lowercased the name. Parquet readers look
/// columns up by name (case-insensitively in Athena), so a Parquet column
/// whose name needs more than lowercasing cannot be renamed in the catalog.
pub fn only_case_differs(raw: &str, normalized: &str) -> bool {
    raw.to_ascii_lowercase() == normalized
}

/// A name as it may appear in a reason: control characters escaped, bounded.
pub fn printable(raw: &str) -> String {
    let escaped: String = raw.chars().flat_map(char::escape_debug).collect();
    if escaped.chars().count() > 80 {
        let cut: String = escaped.chars().take(80).collect();
        format!("{cut}…")
    } else {
        escaped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn normalizes_to_glue_rules() {
        assert_eq!(normalize("Order Items").unwrap(), "order_items");
        assert_eq!(normalize("order-items.v2").unwrap(), "order_items_v2");
        assert_eq!(normalize("amount ($)").unwrap(), "amount____");
        assert_eq!(normalize("_x").unwrap(), "_x");
        assert_eq!(normalize("2024").unwrap(), "2024");
    }

    #[test]
    fn rejects_what_cannot_map_safely() {
        assert!(normalize("café").unwrap_err().contains("non-ASCII"));
        assert!(normalize("a\u{0007}b").unwrap_err().contains("U+0007"));
        assert!(normalize("").is_err());
        assert!(normalize("--").unwrap_err().contains("no letter or digit"));
        assert!(normalize(&"a".repeat(256))
            .unwrap_err()
            .contains("longer than 255"));
        assert!(normalize(&"a".repeat(255)).is_ok());
    }

    #[test]
    fn table_names_join_segments() {
        assert_eq!(table_name(&["CRM", "customers"]).unwrap(), "crm_customers");
        assert!(table_name(&["crm", "kunden-ü"]).is_err());
    }

    #[test]
    fn column_lists_stay_unique() {
        let cols = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            column_names(&cols(&["Id", "First Name", ""])).unwrap(),
            vec!["id", "first_name", "col_3"]
        );
        let error = column_names(&cols(&["Amount", "amount"])).unwrap_err();
        assert!(error.contains("both become `amount`"), "{error}");
        let error = column_names(&cols(&["a b", "a_b"])).unwrap_err();
        assert!(error.contains("both become `a_b`"), "{error}");
    }

    #[test]
    fn parquet_names_may_only_change_case() {
        assert!(only_case_differs("CustomerId", "customerid"));
        assert!(!only_case_differs("Customer Id", "customer_id"));
    }

    proptest! {
        #[test]
        fn output_is_always_a_valid_glue_name(raw in "\\PC{0,300}") {
            if let Ok(name) = normalize(&raw) {
                prop_assert!(lakeops_shared::spec::lake::is_glue_name(&name), "{name}");
                prop_assert!(name.chars().any(|c| c.is_ascii_alphanumeric()));
                // Idempotent: a normalised name is its own normal form.
                prop_assert_eq!(normalize(&name).unwrap(), name);
            }
        }

        #[test]
        fn printable_ascii_with_a_letter_is_accepted(raw in "[ -~]{0,40}[a-zA-Z][ -~]{0,40}") {
            prop_assert!(normalize(&raw).is_ok());
        }

        #[test]
        fn non_ascii_is_always_rejected(prefix in "[a-z]{0,5}", c in any::<char>().prop_filter("non-ascii", |c| !c.is_ascii()), suffix in "[a-z]{0,5}") {
            let raw = format!("{prefix}{c}{suffix}");
            prop_assert!(normalize(&raw).is_err());
        }

        #[test]
        fn column_lists_never_hold_duplicates(raw in proptest::collection::vec("[ -~]{0,6}", 0..12)) {
            if let Ok(names) = column_names(&raw) {
                let unique: std::collections::HashSet<_> = names.iter().collect();
                prop_assert_eq!(unique.len(), names.len());
                prop_assert_eq!(names.len(), raw.len());
            }
        }
    }
}
