//! Views are created after what they read, and their definitions name the secondary's
//! catalogs. Both are decided here.

use std::collections::{BTreeMap, BTreeSet};

use crate::mapping::FullName;

/// Orders views so that each comes after the views it reads (Kahn's algorithm, ties
/// by name, so the order is stable run to run). Views in a dependency cycle cannot be
/// created in any order; they are returned apart.
pub fn creation_order(views: &BTreeMap<FullName, Vec<FullName>>) -> (Vec<FullName>, Vec<FullName>) {
    let mut waiting: BTreeMap<&FullName, BTreeSet<&FullName>> = views
        .iter()
        .map(|(v, deps)| {
            (
                v,
                deps.iter()
                    .filter(|d| views.contains_key(*d) && *d != v)
                    .collect(),
            )
        })
        .collect();
    let mut order = Vec::new();
    loop {
        let ready: Vec<&FullName> = waiting
            .iter()
            .filter(|(_, deps)| deps.is_empty())
            .map(|(v, _)| *v)
            .collect();
        if ready.is_empty() {
            break;
        }
        for v in ready {
            waiting.remove(v);
            for deps in waiting.values_mut() {
                deps.remove(v);
            }
            order.push(v.clone());
        }
    }
    let cyclic = waiting.keys().map(|v| (*v).clone()).collect();
    (order, cyclic)
}

/// Rewrites the catalog of every three-part name in a SQL text by `rename` (lower-case
/// source catalog -> target catalog). It reads the text as Databricks SQL's lexer does:
/// string literals, comments and backquoted identifiers are kept as they are, and only
/// a name of exactly three parts (`a.b.c`, any part backquoted) is a catalog reference;
/// one- and two-part names resolve against the statement's catalog and stay.
pub fn rewrite_catalogs(sql: &str, rename: &BTreeMap<String, String>) -> String {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = String::with_capacity(sql.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\'' | '"' => {
                let end = skip_string(&chars, i);
                out.extend(&chars[i..end]);
                i = end;
            }
            '-' if chars.get(i + 1) == Some(&'-') => {
                let end = chars[i..]
                    .iter()
                    .position(|&c| c == '\n')
                    .map_or(chars.len(), |p| i + p);
                out.extend(&chars[i..end]);
                i = end;
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                let end = find_from(&chars, i + 2, &['*', '/']).map_or(chars.len(), |p| p + 2);
                out.extend(&chars[i..end]);
                i = end;
            }
            c if c == '`' || is_ident_start(c) => {
                // Only at the start of a name: not right after a dot or another word.
                let (parts, end) = read_name(&chars, i);
                let text: String = chars[i..end].iter().collect();
                let after_word = i > 0 && (is_ident_char(chars[i - 1]) || chars[i - 1] == '.');
                match (parts.len(), after_word) {
                    (3, false) => match rename.get(&parts[0].to_lowercase()) {
                        Some(target) => {
                            out.push_str(&crate::sql::ident(target));
                            let first_len = part_len(&chars, i);
                            out.extend(&chars[i + first_len..end]);
                        }
                        None => out.push_str(&text),
                    },
                    _ => out.push_str(&text),
                }
                i = end;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The end (exclusive) of a quoted string starting at `start`, honouring backslash
/// escapes; an unterminated string runs to the end.
fn skip_string(chars: &[char], start: usize) -> usize {
    let quote = chars[start];
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            c if c == quote => return i + 1,
            _ => i += 1,
        }
    }
    chars.len()
}

fn find_from(chars: &[char], from: usize, pat: &[char; 2]) -> Option<usize> {
    (from..chars.len().saturating_sub(1)).find(|&i| chars[i] == pat[0] && chars[i + 1] == pat[1])
}

/// Length in chars of the name part at `at` (a word, or a backquoted identifier with
/// doubled backquotes inside).
fn part_len(chars: &[char], at: usize) -> usize {
    if chars[at] == '`' {
        let mut i = at + 1;
        while i < chars.len() {
            if chars[i] == '`' {
                if chars.get(i + 1) == Some(&'`') {
                    i += 2;
                    continue;
                }
                return i + 1 - at;
            }
            i += 1;
        }
        chars.len() - at
    } else {
        chars[at..]
            .iter()
            .take_while(|&&c| is_ident_char(c))
            .count()
    }
}

/// Reads `part(.part)*` at `at`: the parts' values (unquoted) and the end.
fn read_name(chars: &[char], at: usize) -> (Vec<String>, usize) {
    let mut parts = Vec::new();
    let mut i = at;
    loop {
        let len = part_len(chars, i);
        let raw: String = chars[i..i + len].iter().collect();
        parts.push(match raw.strip_prefix('`') {
            // An unterminated quote runs to the end of the text and has no closing one.
            Some(inner) => inner.strip_suffix('`').unwrap_or(inner).replace("``", "`"),
            None => raw,
        });
        i += len;
        let next_is_part = chars.get(i) == Some(&'.')
            && chars
                .get(i + 1)
                .is_some_and(|&c| c == '`' || is_ident_start(c));
        if !next_is_part {
            return (parts, i);
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn n(s: &str) -> FullName {
        FullName::parse(s).unwrap()
    }

    fn renames() -> BTreeMap<String, String> {
        BTreeMap::from([("sales".to_string(), "sales_dr".to_string())])
    }

    #[test]
    fn views_follow_the_views_they_read() {
        let views = BTreeMap::from([
            (n("m.s.top"), vec![n("m.s.mid"), n("m.s.table")]),
            (n("m.s.mid"), vec![n("m.s.base")]),
            (n("m.s.base"), vec![n("m.s.table")]),
            (n("m.s.alone"), vec![]),
            (n("m.s.c1"), vec![n("m.s.c2")]),
            (n("m.s.c2"), vec![n("m.s.c1")]),
        ]);
        let (order, cyclic) = creation_order(&views);
        let names: Vec<String> = order.iter().map(|v| v.name.clone()).collect();
        assert_eq!(names, ["alone", "base", "mid", "top"]);
        assert_eq!(cyclic, [n("m.s.c1"), n("m.s.c2")]);
    }

    #[test]
    fn three_part_names_get_the_target_catalog() {
        let sql =
            "SELECT o.id FROM sales.core.orders o JOIN `Sales`.`core`.`items` i ON o.id = i.id \
                   JOIN core.local l USING (id) WHERE o.note <> 'sales.core.orders' -- sales.a.b\n\
                   AND x = \"sales.x.y\" /* sales.q.r */ AND other.a.b = 1";
        assert_eq!(
            rewrite_catalogs(sql, &renames()),
            "SELECT o.id FROM `sales_dr`.core.orders o JOIN `sales_dr`.`core`.`items` i ON o.id = i.id \
             JOIN core.local l USING (id) WHERE o.note <> 'sales.core.orders' -- sales.a.b\n\
             AND x = \"sales.x.y\" /* sales.q.r */ AND other.a.b = 1"
        );
    }

    #[test]
    fn four_part_and_column_references_are_left_alone() {
        // `t.col` after a three-part table alias is two parts; a.b.c.d is a column path.
        let sql = "SELECT sales.core.orders.id FROM sales.core.orders";
        assert_eq!(
            rewrite_catalogs(sql, &renames()),
            "SELECT sales.core.orders.id FROM `sales_dr`.core.orders"
        );
        assert_eq!(
            rewrite_catalogs("SELECT x.sales.a.b", &renames()),
            "SELECT x.sales.a.b"
        );
    }

    proptest! {
        #[test]
        fn text_without_a_mapped_catalog_is_unchanged(sql in any::<String>()) {
            let none = BTreeMap::new();
            prop_assert_eq!(rewrite_catalogs(&sql, &none), sql);
        }

        #[test]
        fn rewriting_is_total_and_idempotent(sql in "[a-z`'\"./*\\- \n_]{0,60}") {
            let once = rewrite_catalogs(&sql, &renames());
            let twice = rewrite_catalogs(&once, &renames());
            prop_assert_eq!(once, twice);
        }
    }
}
