//! ALTER ... SET/UNSET TAGS, ALTER TABLE ... ALTER COLUMN, COMMENT ON, GRANT and
//! REVOKE: the governance statements, parsed word by word.

use sqlparser::keywords::Keyword;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Token;

use super::ast::{Name, Securable, Stmt};
use super::error::{SqlError, SqlResult};
use super::parse::{expect_word, parse_key_values, parse_name, parse_word, perr};

/// `ALTER {TABLE|VIEW|SCHEMA|CATALOG} name ...`
pub fn parse_alter(p: &mut Parser) -> SqlResult<Stmt> {
    p.expect_keyword(Keyword::ALTER).map_err(perr)?;
    let target = if p.parse_keyword(Keyword::TABLE) {
        Securable::Table {
            name: parse_name(p)?,
            is_view: false,
        }
    } else if p.parse_keyword(Keyword::VIEW) {
        Securable::Table {
            name: parse_name(p)?,
            is_view: true,
        }
    } else if p.parse_keyword(Keyword::SCHEMA) || p.parse_keyword(Keyword::DATABASE) {
        Securable::Schema(parse_name(p)?)
    } else if p.parse_keyword(Keyword::CATALOG) {
        Securable::Catalog(parse_name(p)?)
    } else {
        return Err(SqlError::unsupported(format!(
            "ALTER {} (the emulator executes ALTER TABLE, VIEW, SCHEMA and CATALOG ... SET/UNSET TAGS)",
            p.peek_token().token
        )));
    };
    if let Securable::Table { name, .. } = &target {
        if p.parse_keywords(&[Keyword::SET, Keyword::TBLPROPERTIES]) {
            return Ok(Stmt::SetProperties {
                table: name.clone(),
                properties: parse_key_values(p, true)?,
            });
        }
        if p.parse_keywords(&[Keyword::UNSET, Keyword::TBLPROPERTIES]) {
            let if_exists = p.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
            let keys = parse_key_values(p, false)?
                .into_iter()
                .map(|(k, _)| k)
                .collect();
            return Ok(Stmt::UnsetProperties {
                table: name.clone(),
                keys,
                if_exists,
            });
        }
        if p.parse_keyword(Keyword::ALTER) {
            let _ = p.parse_keyword(Keyword::COLUMN);
            let column = p.parse_identifier().map_err(perr)?.value.to_lowercase();
            let col = Securable::Column {
                table: name.clone(),
                column,
            };
            if p.parse_keyword(Keyword::COMMENT) {
                return Ok(Stmt::SetComment {
                    target: col,
                    comment: parse_comment_value(p)?,
                });
            }
            return parse_tag_change(p, col);
        }
    }
    parse_tag_change(p, target)
}

fn parse_tag_change(p: &mut Parser, target: Securable) -> SqlResult<Stmt> {
    if p.parse_keyword(Keyword::SET) {
        if parse_word(p, "TAGS") {
            return Ok(Stmt::SetTags {
                target,
                tags: parse_key_values(p, false)?,
            });
        }
    } else if p.parse_keyword(Keyword::UNSET) {
        expect_word(p, "TAGS")?;
        let keys = parse_key_values(p, false)?
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        return Ok(Stmt::UnsetTags { target, keys });
    }
    Err(SqlError::unsupported(format!(
        "this ALTER statement at '{}' (the emulator executes SET/UNSET TAGS, SET/UNSET TBLPROPERTIES and ALTER COLUMN ... COMMENT/SET TAGS/UNSET TAGS)",
        p.peek_token().token
    )))
}

fn parse_comment_value(p: &mut Parser) -> SqlResult<Option<String>> {
    if p.parse_keyword(Keyword::NULL) {
        Ok(None)
    } else {
        Ok(Some(p.parse_literal_string().map_err(perr)?))
    }
}

/// `COMMENT ON {CATALOG|SCHEMA|TABLE|VIEW|COLUMN} name IS {'text'|NULL}`
pub fn parse_comment_on(p: &mut Parser) -> SqlResult<Stmt> {
    p.expect_keyword(Keyword::COMMENT).map_err(perr)?;
    p.expect_keyword(Keyword::ON).map_err(perr)?;
    let target = if p.parse_keyword(Keyword::COLUMN) {
        let mut parts = parse_name_any(p)?;
        if parts.len() < 2 {
            return Err(SqlError::parse(
                "Syntax error: COMMENT ON COLUMN needs table.column.",
            ));
        }
        let column = parts.pop().unwrap_or_default();
        Securable::Column {
            table: Name(parts),
            column,
        }
    } else {
        parse_securable(p)?
    };
    p.expect_keyword(Keyword::IS).map_err(perr)?;
    Ok(Stmt::SetComment {
        target,
        comment: parse_comment_value(p)?,
    })
}

/// A dotted name of up to four parts (a column of `catalog.schema.table`).
fn parse_name_any(p: &mut Parser) -> SqlResult<Vec<String>> {
    let object = p.parse_object_name(false).map_err(perr)?;
    let parts: Vec<String> = object
        .0
        .iter()
        .filter_map(|x| x.as_ident().map(|i| i.value.to_lowercase()))
        .collect();
    if parts.len() != object.0.len() || parts.len() > 4 {
        return Err(SqlError::parse(format!(
            "Syntax error: invalid name {object}."
        )));
    }
    Ok(parts)
}

/// `{CATALOG|SCHEMA|TABLE|VIEW|FUNCTION|SHARE} name`
fn parse_securable(p: &mut Parser) -> SqlResult<Securable> {
    if p.parse_keyword(Keyword::CATALOG) {
        Ok(Securable::Catalog(parse_name(p)?))
    } else if p.parse_keyword(Keyword::SCHEMA) || p.parse_keyword(Keyword::DATABASE) {
        Ok(Securable::Schema(parse_name(p)?))
    } else if p.parse_keyword(Keyword::TABLE) {
        Ok(Securable::Table {
            name: parse_name(p)?,
            is_view: false,
        })
    } else if p.parse_keyword(Keyword::VIEW) {
        Ok(Securable::Table {
            name: parse_name(p)?,
            is_view: true,
        })
    } else if p.parse_keyword(Keyword::FUNCTION) {
        Ok(Securable::Function(parse_name(p)?))
    } else if p.parse_keyword(Keyword::SHARE) {
        Ok(Securable::Share(
            p.parse_identifier().map_err(perr)?.value.to_lowercase(),
        ))
    } else {
        Err(SqlError::unsupported(format!(
            "securable '{}' (the emulator knows CATALOG, SCHEMA, TABLE, VIEW, FUNCTION and SHARE)",
            p.peek_token().token
        )))
    }
}

/// `GRANT privileges ON securable TO principal`, `REVOKE privileges ON securable FROM
/// principal`. Privileges are written as words (`USE CATALOG`, `ALL PRIVILEGES`) and
/// stored as Unity Catalog names (`USE_CATALOG`, `ALL_PRIVILEGES`).
pub fn parse_grant(p: &mut Parser) -> SqlResult<Stmt> {
    let grant = p.parse_keyword(Keyword::GRANT);
    if !grant {
        p.expect_keyword(Keyword::REVOKE).map_err(perr)?;
    }
    let mut privileges = Vec::new();
    let mut words: Vec<String> = Vec::new();
    loop {
        let t = p.next_token();
        match t.token {
            Token::Word(w) if w.keyword == Keyword::ON => break,
            Token::Word(w) => words.push(w.value.to_uppercase()),
            Token::Comma if !words.is_empty() => {
                privileges.push(std::mem::take(&mut words).join("_"))
            }
            other => {
                return Err(SqlError::parse(format!(
                    "Syntax error at or near '{other}': expected a privilege."
                )))
            }
        }
    }
    if words.is_empty() {
        return Err(SqlError::parse(
            "Syntax error: expected a privilege before ON.",
        ));
    }
    privileges.push(words.join("_"));
    let target = parse_securable(p)?;
    if grant {
        p.expect_keyword(Keyword::TO).map_err(perr)?;
    } else {
        p.expect_keyword(Keyword::FROM).map_err(perr)?;
    }
    // Shares are granted to recipients: `TO RECIPIENT r`.
    if matches!(target, Securable::Share(_)) {
        expect_word(p, "RECIPIENT")?;
    }
    let principal = parse_principal(p)?;
    Ok(if grant {
        Stmt::Grant {
            privileges,
            target,
            principal,
        }
    } else {
        Stmt::Revoke {
            privileges,
            target,
            principal,
        }
    })
}

/// A principal: a backquoted or plain name (`` `user@example.com` ``, `data-eng`).
fn parse_principal(p: &mut Parser) -> SqlResult<String> {
    let t = p.next_token();
    match t.token {
        Token::Word(w) => {
            let mut name = w.value;
            // Unquoted names with dashes come as several tokens: `data-eng`.
            while p.consume_token(&Token::Minus) {
                name.push('-');
                name.push_str(&p.parse_identifier().map_err(perr)?.value);
            }
            Ok(name)
        }
        Token::SingleQuotedString(s) => Ok(s),
        other => Err(SqlError::parse(format!(
            "Syntax error at or near '{other}': expected a principal."
        ))),
    }
}
