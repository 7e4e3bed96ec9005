//! The statements the engine executes, as parsed from SQL text (`parse`). Expressions
//! and queries are sqlparser's own AST; the statement shapes are ours because many
//! Databricks statements (CLONE, SET TAGS, DESCRIBE HISTORY, ...) have none there.

use sqlparser::ast::{Expr, Query};

/// A possibly partial (1 to 3 part) object name, lower case, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name(pub Vec<String>);

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("."))
    }
}

/// What GRANT, SET TAGS and COMMENT ON apply to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Securable {
    Catalog(Name),
    Schema(Name),
    /// A table or a view (`is_view` when written as VIEW; both are securable type
    /// TABLE in Unity Catalog).
    Table {
        name: Name,
        is_view: bool,
    },
    Column {
        table: Name,
        column: String,
    },
    Function(Name),
    Share(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSpec {
    pub name: String,
    /// Normalised lower-case type text (`bigint`, `decimal(10,2)`).
    pub type_text: String,
    pub nullable: bool,
    pub comment: Option<String>,
}

/// Options of CREATE TABLE shared by the column, AS SELECT and CLONE forms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableOptions {
    pub using: Option<String>,
    pub location: Option<String>,
    pub comment: Option<String>,
    pub properties: Vec<(String, String)>,
    pub partitioned_by: Vec<String>,
    /// Liquid clustering columns (`CLUSTER BY (a, b)`; `CLUSTER BY AUTO` is `["AUTO"]`).
    pub cluster_by: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateMode {
    pub or_replace: bool,
    pub if_not_exists: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TableSource {
    Columns(Vec<ColumnSpec>),
    Query(Box<Query>),
    Clone { source: Name, deep: bool },
}

#[derive(Debug, Clone, PartialEq)]
pub struct CreateTable {
    pub name: Name,
    pub mode: CreateMode,
    pub source: TableSource,
    pub options: TableOptions,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CreateView {
    pub name: Name,
    pub mode: CreateMode,
    pub comment: Option<String>,
    pub properties: Vec<(String, String)>,
    pub query: Box<Query>,
    /// The query as written (the view's `view_definition`).
    pub definition: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionParam {
    pub name: String,
    pub type_text: String,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateFunction {
    pub name: Name,
    pub mode: CreateMode,
    pub params: Vec<FunctionParam>,
    pub returns: String,
    pub comment: Option<String>,
    pub deterministic: bool,
    /// CONTAINS_SQL or READS_SQL_DATA (`sql_data_access`).
    pub data_access: String,
    /// The body after RETURN, as written (`routine_definition`).
    pub body: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum InsertSource {
    Values(Vec<Vec<Expr>>),
    Query(Box<Query>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropKind {
    Table,
    View,
    Function,
    Volume,
}

/// `CREATE [EXTERNAL] VOLUME [IF NOT EXISTS] name [LOCATION 'url'] [COMMENT 'text']`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateVolume {
    pub name: Name,
    pub external: bool,
    pub if_not_exists: bool,
    pub location: Option<String>,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Stmt {
    CreateTable(CreateTable),
    CreateView(CreateView),
    CreateFunction(CreateFunction),
    CreateVolume(CreateVolume),
    Insert {
        table: Name,
        columns: Vec<String>,
        source: InsertSource,
    },
    Update {
        table: Name,
        /// (column, new value)
        assignments: Vec<(String, Expr)>,
        predicate: Option<Expr>,
    },
    SetProperties {
        table: Name,
        properties: Vec<(String, String)>,
    },
    UnsetProperties {
        table: Name,
        keys: Vec<String>,
        if_exists: bool,
    },
    Delete {
        table: Name,
        predicate: Option<Expr>,
    },
    Drop {
        kind: DropKind,
        name: Name,
        if_exists: bool,
    },
    Query(Box<Query>),
    DescribeHistory(Name),
    DescribeTable(Name),
    DescribeDetail(Name),
    ShowCreateTable(Name),
    /// SHOW TABLES [IN schema] [LIKE pattern]
    ShowTables {
        schema: Option<Name>,
        pattern: Option<String>,
    },
    /// SHOW SCHEMAS [IN catalog] [LIKE pattern]
    ShowSchemas {
        catalog: Option<String>,
        pattern: Option<String>,
    },
    ShowCatalogs {
        pattern: Option<String>,
    },
    SetTags {
        target: Securable,
        tags: Vec<(String, String)>,
    },
    UnsetTags {
        target: Securable,
        keys: Vec<String>,
    },
    SetComment {
        target: Securable,
        comment: Option<String>,
    },
    Grant {
        privileges: Vec<String>,
        target: Securable,
        principal: String,
    },
    Revoke {
        privileges: Vec<String>,
        target: Securable,
        principal: String,
    },
}

impl Stmt {
    /// The statement's kind as the request log reports it (`SELECT`, `INSERT`,
    /// `CREATE TABLE`, `DEEP CLONE`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Stmt::CreateTable(c) => match &c.source {
                TableSource::Columns(_) => "CREATE TABLE",
                TableSource::Query(_) => "CREATE TABLE AS SELECT",
                TableSource::Clone { deep: true, .. } => "DEEP CLONE",
                TableSource::Clone { deep: false, .. } => "SHALLOW CLONE",
            },
            Stmt::CreateView(_) => "CREATE VIEW",
            Stmt::CreateFunction(_) => "CREATE FUNCTION",
            Stmt::CreateVolume(_) => "CREATE VOLUME",
            Stmt::Insert { .. } => "INSERT",
            Stmt::Update { .. } => "UPDATE",
            Stmt::SetProperties { .. } => "SET TBLPROPERTIES",
            Stmt::UnsetProperties { .. } => "UNSET TBLPROPERTIES",
            Stmt::Delete { .. } => "DELETE",
            Stmt::Drop {
                kind: DropKind::Table,
                ..
            } => "DROP TABLE",
            Stmt::Drop {
                kind: DropKind::View,
                ..
            } => "DROP VIEW",
            Stmt::Drop {
                kind: DropKind::Function,
                ..
            } => "DROP FUNCTION",
            Stmt::Drop {
                kind: DropKind::Volume,
                ..
            } => "DROP VOLUME",
            Stmt::Query(_) => "SELECT",
            Stmt::DescribeHistory(_) => "DESCRIBE HISTORY",
            Stmt::DescribeTable(_) => "DESCRIBE TABLE",
            Stmt::DescribeDetail(_) => "DESCRIBE DETAIL",
            Stmt::ShowCreateTable(_) => "SHOW CREATE TABLE",
            Stmt::ShowTables { .. } => "SHOW TABLES",
            Stmt::ShowSchemas { .. } => "SHOW SCHEMAS",
            Stmt::ShowCatalogs { .. } => "SHOW CATALOGS",
            Stmt::SetTags { .. } => "SET TAGS",
            Stmt::UnsetTags { .. } => "UNSET TAGS",
            Stmt::SetComment { .. } => "COMMENT",
            Stmt::Grant { .. } => "GRANT",
            Stmt::Revoke { .. } => "REVOKE",
        }
    }
}

/// Whether executing the statement can change anything: every statement but queries,
/// DESCRIBE and SHOW.
pub fn is_mutating(stmt: &Stmt) -> bool {
    !matches!(
        stmt,
        Stmt::Query(_)
            | Stmt::DescribeHistory(_)
            | Stmt::DescribeTable(_)
            | Stmt::DescribeDetail(_)
            | Stmt::ShowCreateTable(_)
            | Stmt::ShowTables { .. }
            | Stmt::ShowSchemas { .. }
            | Stmt::ShowCatalogs { .. }
    )
}
