//! SQL errors as Databricks reports them: an error class (`TABLE_OR_VIEW_NOT_FOUND`),
//! its SQLSTATE (`42P01`), and a message that starts with `[CLASS]` and ends with
//! `SQLSTATE: xxxxx`, which is how the Statement Execution API's `status.error.message`
//! reads.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    pub error_class: String,
    pub sql_state: String,
    /// The message without the `[CLASS]` prefix and SQLSTATE suffix.
    pub detail: String,
}

pub type SqlResult<T> = Result<T, SqlError>;

impl SqlError {
    pub fn new(error_class: &str, sql_state: &str, detail: impl Into<String>) -> Self {
        SqlError {
            error_class: error_class.to_string(),
            sql_state: sql_state.to_string(),
            detail: detail.into(),
        }
    }

    /// The full message, as in `status.error.message`.
    pub fn message(&self) -> String {
        format!(
            "[{}] {} SQLSTATE: {}",
            self.error_class, self.detail, self.sql_state
        )
    }

    /// The Statement Execution API's `ServiceErrorCode` for this error: analysis errors
    /// are BAD_REQUEST, internal failures INTERNAL_ERROR.
    pub fn service_error_code(&self) -> &'static str {
        if self.sql_state.starts_with("XX") {
            "INTERNAL_ERROR"
        } else {
            "BAD_REQUEST"
        }
    }

    pub fn parse(detail: impl Into<String>) -> Self {
        Self::new("PARSE_SYNTAX_ERROR", "42601", detail)
    }

    pub fn table_not_found(name: &str) -> Self {
        Self::new(
            "TABLE_OR_VIEW_NOT_FOUND",
            "42P01",
            format!("The table or view {} cannot be found. Verify the spelling and correctness of the schema and catalog.", quoted(name)),
        )
    }

    pub fn table_exists(name: &str) -> Self {
        Self::new(
            "TABLE_OR_VIEW_ALREADY_EXISTS",
            "42P07",
            format!(
                "Cannot create table or view {} because it already exists.",
                quoted(name)
            ),
        )
    }

    pub fn schema_not_found(name: &str) -> Self {
        Self::new(
            "SCHEMA_NOT_FOUND",
            "42704",
            format!("The schema {} cannot be found. Verify the spelling and correctness of the schema and catalog.", quoted(name)),
        )
    }

    pub fn catalog_not_found(name: &str) -> Self {
        Self::new(
            "NO_SUCH_CATALOG_EXCEPTION",
            "42704",
            format!("The catalog '{name}' was not found. Please verify the catalog name and then retry the query or command again."),
        )
    }

    pub fn routine_not_found(name: &str) -> Self {
        Self::new(
            "ROUTINE_NOT_FOUND",
            "42883",
            format!("The routine {} cannot be found. Verify the spelling and correctness of the schema and catalog.", quoted(name)),
        )
    }

    pub fn routine_exists(name: &str) -> Self {
        Self::new(
            "ROUTINE_ALREADY_EXISTS",
            "42723",
            format!(
                "Cannot create the routine {} because it already exists.",
                quoted(name)
            ),
        )
    }

    pub fn column_not_found(column: &str, table: &str) -> Self {
        Self::new(
            "UNRESOLVED_COLUMN.WITH_SUGGESTION",
            "42703",
            format!(
                "A column, variable, or function parameter with name `{column}` cannot be resolved. Did you mean one of the columns of {}?",
                quoted(table)
            ),
        )
    }

    /// A statement or construct the emulator does not execute (as a Databricks runtime
    /// answers for a feature it does not have).
    pub fn unsupported(what: impl Into<String>) -> Self {
        Self::new(
            "UNSUPPORTED_FEATURE",
            "0A000",
            format!(
                "The feature is not supported: {} (databricks-emulator).",
                what.into()
            ),
        )
    }

    /// Writes to a table read through a Delta Sharing catalog (shares are read-only).
    pub fn read_only_share(table: &str, operation: &str) -> Self {
        Self::new(
            "UNSUPPORTED_FEATURE.TABLE_OPERATION",
            "0A000",
            format!(
                "The feature is not supported: Table {} does not support {operation}: it is read through a Delta Sharing catalog, which is read-only.",
                quoted(table)
            ),
        )
    }

    pub fn invalid_cast(value: &str, to: &str) -> Self {
        Self::new(
            "CAST_INVALID_INPUT",
            "22018",
            format!("The value '{value}' of the type \"STRING\" cannot be cast to \"{}\" because it is malformed.", to.to_uppercase()),
        )
    }
}

/// `` `a`.`b`.`c` ``, the way Databricks quotes a multi-part name in messages.
pub fn quoted(name: &str) -> String {
    name.split('.')
        .map(|p| format!("`{p}`"))
        .collect::<Vec<_>>()
        .join(".")
}
