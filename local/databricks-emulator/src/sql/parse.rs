//! SQL text to `Stmt`, on sqlparser's tokenizer and sub-parsers (names, types,
//! expressions, queries). Statements sqlparser parses whole (SELECT, INSERT, DELETE)
//! go through `parse_statement`; the Databricks ones it has no grammar for (CLONE,
//! SET TAGS, DESCRIBE HISTORY, COMMENT ON, GRANT ON SHARE, SQL functions) are parsed
//! here keyword by keyword with its parser primitives.

use sqlparser::ast::{
    FromTable, ObjectName, ObjectNamePart, SetExpr, Statement, TableFactor, TableObject,
};
use sqlparser::dialect::DatabricksDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Location, Token};

use super::ast::*;
use super::error::{SqlError, SqlResult};
use super::parse_governance::{parse_alter, parse_comment_on, parse_grant};

pub(super) fn perr(e: ParserError) -> SqlError {
    let text = e.to_string();
    let detail = text.strip_prefix("sql parser error: ").unwrap_or(&text);
    SqlError::parse(format!("Syntax error: {detail}."))
}

/// Parses exactly one statement (a trailing `;` is allowed).
pub fn parse(sql: &str) -> SqlResult<Stmt> {
    let dialect = DatabricksDialect {};
    let mut p = Parser::new(&dialect).try_with_sql(sql).map_err(perr)?;
    let first = p.peek_token();
    let stmt = match &first.token {
        Token::Word(w) => match w.keyword {
            Keyword::CREATE => parse_create(&mut p, sql)?,
            Keyword::DROP => parse_drop(&mut p)?,
            Keyword::ALTER => parse_alter(&mut p)?,
            Keyword::COMMENT => parse_comment_on(&mut p)?,
            Keyword::GRANT | Keyword::REVOKE => parse_grant(&mut p)?,
            Keyword::DESCRIBE | Keyword::DESC => parse_describe(&mut p)?,
            Keyword::SHOW => parse_show(&mut p)?,
            _ => from_sqlparser(p.parse_statement().map_err(perr)?)?,
        },
        Token::EOF => return Err(SqlError::parse("Syntax error at or near end of input.")),
        _ => from_sqlparser(p.parse_statement().map_err(perr)?)?,
    };
    while p.consume_token(&Token::SemiColon) {}
    let rest = p.peek_token();
    if rest.token != Token::EOF {
        return Err(SqlError::parse(format!(
            "Syntax error at or near '{}'. Only one statement can be executed at a time.",
            rest.token
        )));
    }
    Ok(stmt)
}

/// The byte offset of a token location (1-based line and column, in characters).
pub(super) fn offset_of(sql: &str, at: Location) -> usize {
    let mut line = 1u64;
    let mut col = 1u64;
    for (i, ch) in sql.char_indices() {
        if line == at.line && col == at.column {
            return i;
        }
        if ch == '\n' {
            line += 1;
            col = 1;
        } else {
            col += 1;
        }
    }
    sql.len()
}

/// The text from the next token to the end of the statement, without the `;`.
fn rest_of_statement(p: &Parser, sql: &str) -> String {
    let start = offset_of(sql, p.peek_token().span.start);
    sql[start..]
        .trim()
        .trim_end_matches(';')
        .trim_end()
        .to_string()
}

pub(super) fn name_of(object: &ObjectName) -> SqlResult<Name> {
    let parts: Vec<String> = object
        .0
        .iter()
        .map(|part| match part {
            ObjectNamePart::Identifier(i) => Ok(i.value.to_lowercase()),
            other => Err(SqlError::parse(format!("Invalid name part {other}."))),
        })
        .collect::<SqlResult<_>>()?;
    if parts.is_empty() || parts.len() > 3 {
        return Err(SqlError::parse(format!(
            "Syntax error: {object} is not a valid name (at most catalog.schema.name)."
        )));
    }
    Ok(Name(parts))
}

pub(super) fn parse_name(p: &mut Parser) -> SqlResult<Name> {
    name_of(&p.parse_object_name(false).map_err(perr)?)
}

/// Whether the next token is the (non-reserved) word `word`, consuming it if so.
pub(super) fn parse_word(p: &mut Parser, word: &str) -> bool {
    if let Token::Word(w) = &p.peek_token().token {
        if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word) {
            p.next_token();
            return true;
        }
    }
    false
}

pub(super) fn expect_word(p: &mut Parser, word: &str) -> SqlResult<()> {
    if parse_word(p, word) {
        Ok(())
    } else {
        Err(SqlError::parse(format!(
            "Syntax error at or near '{}': expected {word}.",
            p.peek_token().token
        )))
    }
}

/// A type as Databricks writes it in `type_text`: lower case, aliases resolved.
pub(super) fn parse_type(p: &mut Parser) -> SqlResult<String> {
    let t = p.parse_data_type().map_err(perr)?;
    Ok(super::value::normalize_type(&t.to_string()))
}

fn parse_if_not_exists(p: &mut Parser) -> bool {
    p.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS])
}

fn parse_create(p: &mut Parser, sql: &str) -> SqlResult<Stmt> {
    p.expect_keyword(Keyword::CREATE).map_err(perr)?;
    let or_replace = p.parse_keywords(&[Keyword::OR, Keyword::REPLACE]);
    if p.parse_keyword(Keyword::TABLE) {
        let mode = CreateMode {
            or_replace,
            if_not_exists: parse_if_not_exists(p),
        };
        return parse_create_table(p, mode).map(Stmt::CreateTable);
    }
    if p.parse_keyword(Keyword::VIEW) {
        let mode = CreateMode {
            or_replace,
            if_not_exists: parse_if_not_exists(p),
        };
        return parse_create_view(p, sql, mode);
    }
    if p.parse_keyword(Keyword::FUNCTION) {
        let mode = CreateMode {
            or_replace,
            if_not_exists: parse_if_not_exists(p),
        };
        return super::parse_function::parse_create_function(p, sql, mode)
            .map(Stmt::CreateFunction);
    }
    let external = parse_word(p, "EXTERNAL");
    if parse_word(p, "VOLUME") {
        return parse_create_volume(p, external).map(Stmt::CreateVolume);
    }
    Err(SqlError::unsupported(format!(
        "CREATE {}{} (the emulator executes CREATE TABLE, VIEW, FUNCTION and VOLUME; create catalogs and schemas with the REST API)",
        if external { "EXTERNAL " } else { "" },
        p.peek_token().token
    )))
}

fn parse_create_volume(p: &mut Parser, external: bool) -> SqlResult<CreateVolume> {
    let if_not_exists = parse_if_not_exists(p);
    let name = parse_name(p)?;
    let (mut location, mut comment) = (None, None);
    loop {
        if p.parse_keyword(Keyword::LOCATION) {
            location = Some(p.parse_literal_string().map_err(perr)?);
        } else if p.parse_keyword(Keyword::COMMENT) {
            comment = Some(p.parse_literal_string().map_err(perr)?);
        } else {
            break;
        }
    }
    match (external, &location) {
        (true, None) => Err(SqlError::parse(
            "Syntax error: CREATE EXTERNAL VOLUME needs LOCATION 'url'.",
        )),
        (false, Some(_)) => Err(SqlError::parse(
            "Syntax error: LOCATION is only for CREATE EXTERNAL VOLUME.",
        )),
        _ => Ok(CreateVolume {
            name,
            external,
            if_not_exists,
            location,
            comment,
        }),
    }
}

fn parse_create_table(p: &mut Parser, mode: CreateMode) -> SqlResult<CreateTable> {
    let name = parse_name(p)?;
    let clone_kind = if parse_word(p, "DEEP") {
        Some(true)
    } else if parse_word(p, "SHALLOW") {
        Some(false)
    } else {
        None
    };
    if clone_kind.is_some() || p.peek_keyword(Keyword::CLONE) {
        p.expect_keyword(Keyword::CLONE).map_err(perr)?;
        let source = parse_name(p)?;
        let options = parse_table_options(p)?;
        return Ok(CreateTable {
            name,
            mode,
            // CLONE without DEEP or SHALLOW is a deep clone.
            source: TableSource::Clone {
                source,
                deep: clone_kind.unwrap_or(true),
            },
            options,
        });
    }
    let columns = if p.consume_token(&Token::LParen) {
        let mut cols = vec![parse_column_spec(p)?];
        while p.consume_token(&Token::Comma) {
            cols.push(parse_column_spec(p)?);
        }
        p.expect_token(&Token::RParen).map_err(perr)?;
        Some(cols)
    } else {
        None
    };
    let options = parse_table_options(p)?;
    let source = if p.parse_keyword(Keyword::AS) {
        if columns.is_some() {
            return Err(SqlError::unsupported(
                "CREATE TABLE with both a column list and AS SELECT",
            ));
        }
        TableSource::Query(p.parse_query().map_err(perr)?)
    } else {
        match columns {
            Some(c) if !c.is_empty() => TableSource::Columns(c),
            _ => {
                return Err(SqlError::parse(
                    "Syntax error: CREATE TABLE needs a column list, AS SELECT or CLONE.",
                ))
            }
        }
    };
    Ok(CreateTable {
        name,
        mode,
        source,
        options,
    })
}

fn parse_column_spec(p: &mut Parser) -> SqlResult<ColumnSpec> {
    let name = p.parse_identifier().map_err(perr)?.value;
    let type_text = parse_type(p)?;
    let mut spec = ColumnSpec {
        name,
        type_text,
        nullable: true,
        comment: None,
    };
    loop {
        if p.parse_keywords(&[Keyword::NOT, Keyword::NULL]) {
            spec.nullable = false;
        } else if p.parse_keyword(Keyword::NULL) {
            spec.nullable = true;
        } else if p.parse_keyword(Keyword::COMMENT) {
            spec.comment = Some(p.parse_literal_string().map_err(perr)?);
        } else {
            return Ok(spec);
        }
    }
}

/// `'key' = 'value'` pairs in parentheses; keys may be written unquoted and dotted
/// (`delta.appendOnly = 'true'`).
pub(super) fn parse_key_values(
    p: &mut Parser,
    values_required: bool,
) -> SqlResult<Vec<(String, String)>> {
    p.expect_token(&Token::LParen).map_err(perr)?;
    let mut out = Vec::new();
    loop {
        let key = parse_key(p)?;
        let value = if p.consume_token(&Token::Eq) {
            p.parse_literal_string().map_err(perr)?
        } else if values_required {
            return Err(SqlError::parse(format!(
                "Syntax error: expected = after '{key}'."
            )));
        } else {
            String::new()
        };
        out.push((key, value));
        if !p.consume_token(&Token::Comma) {
            break;
        }
    }
    p.expect_token(&Token::RParen).map_err(perr)?;
    Ok(out)
}

fn parse_key(p: &mut Parser) -> SqlResult<String> {
    let t = p.next_token();
    match t.token {
        Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => Ok(s),
        Token::Word(w) => {
            let mut key = w.value;
            while p.consume_token(&Token::Period) {
                key.push('.');
                key.push_str(&p.parse_identifier().map_err(perr)?.value);
            }
            Ok(key)
        }
        other => Err(SqlError::parse(format!(
            "Syntax error at or near '{other}': expected a key."
        ))),
    }
}

fn parse_table_options(p: &mut Parser) -> SqlResult<TableOptions> {
    let mut o = TableOptions::default();
    loop {
        if p.parse_keyword(Keyword::USING) {
            o.using = Some(p.parse_identifier().map_err(perr)?.value.to_uppercase());
        } else if p.parse_keyword(Keyword::LOCATION) {
            o.location = Some(p.parse_literal_string().map_err(perr)?);
        } else if p.parse_keyword(Keyword::COMMENT) {
            o.comment = Some(p.parse_literal_string().map_err(perr)?);
        } else if p.parse_keyword(Keyword::TBLPROPERTIES) {
            o.properties.extend(parse_key_values(p, true)?);
        } else if p.parse_keywords(&[Keyword::CLUSTER, Keyword::BY]) {
            o.cluster_by = if parse_word(p, "AUTO") {
                vec!["AUTO".to_string()]
            } else if parse_word(p, "NONE") {
                vec![]
            } else {
                p.parse_parenthesized_column_list(sqlparser::parser::IsOptional::Mandatory, false)
                    .map_err(perr)?
                    .into_iter()
                    .map(|i| i.value.to_lowercase())
                    .collect()
            };
        } else if p.parse_keywords(&[Keyword::PARTITIONED, Keyword::BY]) {
            o.partitioned_by = p
                .parse_parenthesized_column_list(sqlparser::parser::IsOptional::Mandatory, false)
                .map_err(perr)?
                .into_iter()
                .map(|i| i.value.to_lowercase())
                .collect();
        } else {
            return Ok(o);
        }
    }
}

fn parse_create_view(p: &mut Parser, sql: &str, mode: CreateMode) -> SqlResult<Stmt> {
    let name = parse_name(p)?;
    let mut comment = None;
    let mut properties = Vec::new();
    loop {
        if p.parse_keyword(Keyword::COMMENT) {
            comment = Some(p.parse_literal_string().map_err(perr)?);
        } else if p.parse_keyword(Keyword::TBLPROPERTIES) {
            properties.extend(parse_key_values(p, true)?);
        } else {
            break;
        }
    }
    p.expect_keyword(Keyword::AS).map_err(perr)?;
    let definition = rest_of_statement(p, sql);
    let query = p.parse_query().map_err(perr)?;
    Ok(Stmt::CreateView(CreateView {
        name,
        mode,
        comment,
        properties,
        query,
        definition,
    }))
}

fn parse_drop(p: &mut Parser) -> SqlResult<Stmt> {
    p.expect_keyword(Keyword::DROP).map_err(perr)?;
    let kind = match p.parse_one_of_keywords(&[Keyword::TABLE, Keyword::VIEW, Keyword::FUNCTION]) {
        Some(Keyword::TABLE) => DropKind::Table,
        Some(Keyword::VIEW) => DropKind::View,
        Some(_) => DropKind::Function,
        None if parse_word(p, "VOLUME") => DropKind::Volume,
        None => {
            return Err(SqlError::unsupported(format!(
                "DROP {} (the emulator executes DROP TABLE, VIEW, FUNCTION and VOLUME)",
                p.peek_token().token
            )))
        }
    };
    let if_exists = p.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
    let name = parse_name(p)?;
    Ok(Stmt::Drop {
        kind,
        name,
        if_exists,
    })
}

fn parse_describe(p: &mut Parser) -> SqlResult<Stmt> {
    p.next_token();
    if p.parse_keyword(Keyword::HISTORY) {
        return Ok(Stmt::DescribeHistory(parse_name(p)?));
    }
    if p.parse_keyword(Keyword::DETAIL) {
        return Ok(Stmt::DescribeDetail(parse_name(p)?));
    }
    if p.parse_keyword(Keyword::FUNCTION) || p.parse_keyword(Keyword::SCHEMA) {
        return Err(SqlError::unsupported(
            "DESCRIBE FUNCTION/SCHEMA (the emulator executes DESCRIBE [TABLE] and DESCRIBE HISTORY)",
        ));
    }
    let _ = p.parse_keyword(Keyword::TABLE);
    let _ = p.parse_keyword(Keyword::EXTENDED);
    Ok(Stmt::DescribeTable(parse_name(p)?))
}

fn parse_show(p: &mut Parser) -> SqlResult<Stmt> {
    p.expect_keyword(Keyword::SHOW).map_err(perr)?;
    if p.parse_keywords(&[Keyword::CREATE, Keyword::TABLE]) {
        return Ok(Stmt::ShowCreateTable(parse_name(p)?));
    }
    if p.parse_keyword(Keyword::TABLES) {
        let schema = parse_in(p)?.map(|n| name_of(&n)).transpose()?;
        return Ok(Stmt::ShowTables {
            schema,
            pattern: parse_like(p)?,
        });
    }
    if p.parse_keyword(Keyword::SCHEMAS) || p.parse_keyword(Keyword::DATABASES) {
        let catalog = parse_in(p)?.map(|n| n.to_string().to_lowercase());
        return Ok(Stmt::ShowSchemas {
            catalog,
            pattern: parse_like(p)?,
        });
    }
    if p.parse_keyword(Keyword::CATALOGS) {
        return Ok(Stmt::ShowCatalogs {
            pattern: parse_like(p)?,
        });
    }
    Err(SqlError::unsupported(format!(
        "SHOW {} (the emulator executes SHOW CREATE TABLE, TABLES, SCHEMAS and CATALOGS; query information_schema for the rest)",
        p.peek_token().token
    )))
}

/// `IN name` or `FROM name`.
fn parse_in(p: &mut Parser) -> SqlResult<Option<ObjectName>> {
    if p.parse_keyword(Keyword::IN) || p.parse_keyword(Keyword::FROM) {
        return Ok(Some(p.parse_object_name(false).map_err(perr)?));
    }
    Ok(None)
}

/// `[LIKE] 'pattern'`: Databricks' pattern, `*` any run and `|` alternatives.
fn parse_like(p: &mut Parser) -> SqlResult<Option<String>> {
    let like = p.parse_keyword(Keyword::LIKE);
    if like || matches!(p.peek_token().token, Token::SingleQuotedString(_)) {
        return Ok(Some(p.parse_literal_string().map_err(perr)?));
    }
    Ok(None)
}

fn table_of(t: &TableObject) -> SqlResult<Name> {
    match t {
        TableObject::TableName(n) => name_of(n),
        other => Err(SqlError::unsupported(format!("INSERT INTO {other}"))),
    }
}

/// SELECT, INSERT ... VALUES and DELETE, which sqlparser parses whole.
fn from_sqlparser(s: Statement) -> SqlResult<Stmt> {
    match s {
        Statement::Query(q) => Ok(Stmt::Query(q)),
        Statement::Insert(ins) => {
            if ins.overwrite {
                return Err(SqlError::unsupported("INSERT OVERWRITE"));
            }
            if ins.partitioned.is_some()
                || ins.by_name
                || ins.returning.is_some()
                || ins.on.is_some()
                || !ins.assignments.is_empty()
                || ins.replace_into
                || ins.ignore
            {
                return Err(SqlError::unsupported(
                    "INSERT with PARTITION, BY NAME, RETURNING, ON CONFLICT or SET",
                ));
            }
            let table = table_of(&ins.table)?;
            let columns = ins
                .columns
                .iter()
                .map(|c| name_of(c).map(|n| n.0.join(".")))
                .collect::<SqlResult<_>>()?;
            let source = match ins.source {
                Some(q) => match q.body.as_ref() {
                    SetExpr::Values(v) => {
                        InsertSource::Values(v.rows.iter().map(|r| r.content.clone()).collect())
                    }
                    _ => InsertSource::Query(q),
                },
                None => return Err(SqlError::unsupported("INSERT without VALUES or a query")),
            };
            Ok(Stmt::Insert {
                table,
                columns,
                source,
            })
        }
        Statement::Delete(d) => {
            if d.using.is_some()
                || d.returning.is_some()
                || !d.order_by.is_empty()
                || d.limit.is_some()
                || !d.tables.is_empty()
            {
                return Err(SqlError::unsupported(
                    "DELETE with USING, RETURNING, ORDER BY, LIMIT or several tables",
                ));
            }
            let from = match &d.from {
                FromTable::WithFromKeyword(f) | FromTable::WithoutKeyword(f) => f,
            };
            let table = match from.as_slice() {
                [one] if one.joins.is_empty() => match &one.relation {
                    TableFactor::Table { name, .. } => name_of(name)?,
                    other => return Err(SqlError::unsupported(format!("DELETE FROM {other}"))),
                },
                _ => return Err(SqlError::unsupported("DELETE from more than one table")),
            };
            Ok(Stmt::Delete {
                table,
                predicate: d.selection,
            })
        }
        Statement::Update(u) => from_update(u),
        other => Err(SqlError::unsupported(statement_head(&other.to_string()))),
    }
}

fn from_update(u: sqlparser::ast::Update) -> SqlResult<Stmt> {
    if u.from.is_some() || !u.table.joins.is_empty() {
        return Err(SqlError::unsupported("UPDATE ... FROM"));
    }
    if u.returning.is_some() || !u.order_by.is_empty() || u.limit.is_some() {
        return Err(SqlError::unsupported(
            "UPDATE with RETURNING, ORDER BY or LIMIT",
        ));
    }
    let table = match &u.table.relation {
        TableFactor::Table { name, .. } => name_of(name)?,
        other => return Err(SqlError::unsupported(format!("UPDATE {other}"))),
    };
    let assignments = u
        .assignments
        .into_iter()
        .map(|a| match a.target {
            sqlparser::ast::AssignmentTarget::ColumnName(c) => {
                let column = name_of(&c)?.0.pop().unwrap_or_default();
                Ok((column, a.value))
            }
            other => Err(SqlError::unsupported(format!("UPDATE SET {other}"))),
        })
        .collect::<SqlResult<_>>()?;
    Ok(Stmt::Update {
        table,
        assignments,
        predicate: u.selection,
    })
}

/// The first words of a statement, for "not supported" messages.
fn statement_head(text: &str) -> String {
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
