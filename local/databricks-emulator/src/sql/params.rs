//! Named parameter markers (`:name`) bound from the request's `parameters[]`
//! (name, value, type). Substitution happens on tokens, never on text: each marker
//! token is replaced by a literal token (a quoted string, a number, TRUE/FALSE or
//! NULL), spliced into the text at the marker's span; string values are escaped for
//! the dialect (quotes doubled, backslashes escaped), so a value can never change the
//! statement's structure.

use sqlparser::dialect::DatabricksDialect;
use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{Token, Tokenizer, Word};

use super::error::{SqlError, SqlResult};

/// One `StatementParameterListItem`; `value` None is SQL NULL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    pub value: Option<String>,
    /// The SQL type name; STRING when not given.
    pub type_name: Option<String>,
}

/// A token as SQL text; string literals escaped so they read back as the same value.
fn token_text(t: &Token) -> String {
    match t {
        Token::SingleQuotedString(s) => {
            format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
        }
        other => other.to_string(),
    }
}

fn keyword(word: &str, kw: Keyword) -> Token {
    Token::Word(Word {
        value: word.to_string(),
        quote_style: None,
        keyword: kw,
    })
}

fn literal_token(p: &Param) -> SqlResult<Vec<Token>> {
    let Some(value) = &p.value else {
        return Ok(vec![keyword("NULL", Keyword::NULL)]);
    };
    let t = p
        .type_name
        .as_deref()
        .unwrap_or("STRING")
        .trim()
        .to_ascii_uppercase();
    let head = t.split('(').next().unwrap_or_default();
    let bad = || SqlError::invalid_cast(value, head);
    Ok(match head {
        "INT" | "INTEGER" | "BIGINT" | "LONG" | "SMALLINT" | "SHORT" | "TINYINT" | "BYTE" => {
            value.trim().parse::<i64>().map_err(|_| bad())?;
            vec![Token::Number(value.trim().to_string(), false)]
        }
        "DOUBLE" | "FLOAT" | "DECIMAL" | "NUMERIC" => {
            let f: f64 = value.trim().parse().map_err(|_| bad())?;
            if !f.is_finite() {
                return Err(bad());
            }
            vec![Token::Number(value.trim().to_string(), false)]
        }
        "BOOLEAN" => match value.trim().to_ascii_lowercase().as_str() {
            "true" => vec![keyword("TRUE", Keyword::TRUE)],
            "false" => vec![keyword("FALSE", Keyword::FALSE)],
            _ => return Err(bad()),
        },
        "STRING" | "VARCHAR" | "CHAR" | "DATE" | "TIMESTAMP" | "TIMESTAMP_NTZ" => {
            vec![Token::SingleQuotedString(value.clone())]
        }

        other => return Err(SqlError::unsupported(format!("parameters of type {other}"))),
    })
}

/// The statement text with every `:name` marker bound. A marker with no parameter
/// is left as it is, so executing it fails with UNBOUND_SQL_PARAMETER.
pub fn bind(sql: &str, params: &[Param]) -> SqlResult<String> {
    let dialect = DatabricksDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| SqlError::parse(format!("Syntax error: {e}.")))?;
    let mut out = String::with_capacity(sql.len());
    let mut copied_to = 0;
    // The tokenizer reads `:name` as a colon and a word right after it.
    for pair in tokens.windows(2) {
        let (colon, word) = (&pair[0], &pair[1]);
        let (Token::Colon, Token::Word(w)) = (&colon.token, &word.token) else {
            continue;
        };
        if colon.span.end != word.span.start || w.quote_style.is_some() {
            continue;
        }
        let Some(p) = params.iter().find(|p| p.name == w.value) else {
            continue;
        };
        let start = super::parse::offset_of(sql, colon.span.start);
        let end = super::parse::offset_of(sql, word.span.end);
        out.push_str(&sql[copied_to..start]);
        for lit in literal_token(p)? {
            out.push_str(&token_text(&lit));
        }
        copied_to = end;
    }
    out.push_str(&sql[copied_to..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(name: &str, value: Option<&str>, t: Option<&str>) -> Param {
        Param {
            name: name.into(),
            value: value.map(str::to_string),
            type_name: t.map(str::to_string),
        }
    }

    #[test]
    fn markers_become_typed_literals() {
        let sql = bind(
            "SELECT * FROM t WHERE a = :a AND b = :b AND c = :c AND d IS :d",
            &[
                p("a", Some("it's"), None),
                p("b", Some("42"), Some("INT")),
                p("c", Some("true"), Some("BOOLEAN")),
                p("d", None, None),
            ],
        )
        .unwrap();
        assert_eq!(
            sql,
            "SELECT * FROM t WHERE a = 'it''s' AND b = 42 AND c = TRUE AND d IS NULL"
        );
    }

    #[test]
    fn a_bad_typed_value_fails_and_unknown_markers_stay() {
        assert_eq!(
            bind("SELECT :n", &[p("n", Some("1; DROP TABLE x"), Some("INT"))])
                .unwrap_err()
                .error_class,
            "CAST_INVALID_INPUT"
        );
        assert_eq!(
            bind("SELECT :other", &[p("n", Some("1"), None)]).unwrap(),
            "SELECT :other"
        );
    }

    proptest! {
        /// Whatever a string parameter holds, the bound statement parses to one
        /// SELECT whose literal is exactly that string.
        #[test]
        fn string_values_cannot_escape_their_literal(v in ".{0,30}") {
            let sql = bind("SELECT :v", &[p("v", Some(&v), None)]).unwrap();
            let stmt = super::super::parse::parse(&sql).unwrap();
            let super::super::Stmt::Query(q) = stmt else { panic!("not a query") };
            let sqlparser::ast::SetExpr::Select(s) = q.body.as_ref() else { panic!() };
            let sqlparser::ast::SelectItem::UnnamedExpr(e) = &s.projection[0] else { panic!() };
            prop_assert_eq!(super::super::expr::literal(e).unwrap(), serde_json::json!(v));
        }
    }
}
