//! `CREATE [OR REPLACE] FUNCTION [IF NOT EXISTS] name (params) RETURNS type
//! [characteristics] RETURN body`: SQL UDFs, which sqlparser's grammars do not cover
//! in Databricks' form.

use sqlparser::keywords::Keyword;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Token;

use super::ast::{CreateFunction, CreateMode, FunctionParam};
use super::error::{SqlError, SqlResult};
use super::parse::{offset_of, parse_name, parse_type, parse_word, perr};

pub fn parse_create_function(
    p: &mut Parser,
    sql: &str,
    mode: CreateMode,
) -> SqlResult<CreateFunction> {
    let name = parse_name(p)?;
    p.expect_token(&Token::LParen).map_err(perr)?;
    let mut params = Vec::new();
    if !p.consume_token(&Token::RParen) {
        loop {
            params.push(parse_param(p)?);
            if !p.consume_token(&Token::Comma) {
                break;
            }
        }
        p.expect_token(&Token::RParen).map_err(perr)?;
    }
    p.expect_keyword(Keyword::RETURNS).map_err(perr)?;
    if p.peek_keyword(Keyword::TABLE) {
        return Err(SqlError::unsupported(
            "table-valued SQL functions (RETURNS TABLE)",
        ));
    }
    let returns = parse_type(p)?;
    let mut f = CreateFunction {
        name,
        mode,
        params,
        returns,
        comment: None,
        deterministic: true,
        data_access: "CONTAINS_SQL".to_string(),
        body: String::new(),
    };
    parse_characteristics(p, &mut f)?;
    p.expect_keyword(Keyword::RETURN).map_err(perr)?;
    let start = offset_of(sql, p.peek_token().span.start);
    // The body is validated as an expression or a query; its text is stored as written.
    let is_query = matches!(&p.peek_token().token, Token::Word(w) if matches!(w.keyword, Keyword::SELECT | Keyword::WITH));
    if is_query {
        p.parse_query().map_err(perr)?;
        f.data_access = "READS_SQL_DATA".to_string();
    } else {
        p.parse_expr().map_err(perr)?;
    }
    f.body = sql[start..]
        .trim()
        .trim_end_matches(';')
        .trim_end()
        .to_string();
    Ok(f)
}

fn parse_param(p: &mut Parser) -> SqlResult<FunctionParam> {
    let name = p.parse_identifier().map_err(perr)?.value;
    let type_text = parse_type(p)?;
    let mut comment = None;
    loop {
        if p.parse_keyword(Keyword::COMMENT) {
            comment = Some(p.parse_literal_string().map_err(perr)?);
        } else if p.parse_keyword(Keyword::DEFAULT) {
            return Err(SqlError::unsupported("SQL function parameter defaults"));
        } else {
            return Ok(FunctionParam {
                name,
                type_text,
                comment,
            });
        }
    }
}

fn parse_characteristics(p: &mut Parser, f: &mut CreateFunction) -> SqlResult<()> {
    loop {
        if p.parse_keyword(Keyword::COMMENT) {
            f.comment = Some(p.parse_literal_string().map_err(perr)?);
        } else if p.parse_keyword(Keyword::LANGUAGE) {
            let lang = p.parse_identifier().map_err(perr)?.value;
            if !lang.eq_ignore_ascii_case("SQL") {
                return Err(SqlError::unsupported(format!(
                    "LANGUAGE {lang} functions (the emulator stores SQL functions)"
                )));
            }
        } else if p.parse_keywords(&[Keyword::NOT, Keyword::DETERMINISTIC]) {
            f.deterministic = false;
        } else if p.parse_keyword(Keyword::DETERMINISTIC) {
            f.deterministic = true;
        } else if p.parse_keywords(&[Keyword::CONTAINS, Keyword::SQL]) {
            f.data_access = "CONTAINS_SQL".to_string();
        } else if p.parse_keywords(&[Keyword::READS, Keyword::SQL, Keyword::DATA]) {
            f.data_access = "READS_SQL_DATA".to_string();
        } else if p.parse_keywords(&[Keyword::SQL, Keyword::SECURITY]) {
            if !parse_word(p, "DEFINER") {
                return Err(SqlError::unsupported("SQL SECURITY other than DEFINER"));
            }
        } else {
            return Ok(());
        }
    }
}
