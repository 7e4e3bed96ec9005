//! The events lake-grants takes: direct and state-machine inputs, the
//! EventBridge Scheduler input, and the Glue Data Catalog events that AWS
//! sends through EventBridge.
//!
//! Glue announces new tables as `Glue Data Catalog Database State Change`
//! with `detail.typeOfChange: CreateTable` and the names in
//! `detail.changedTables` (up to 100 per event, per the AWS Glue Developer
//! Guide); `events/lake-grants-aws-glue-create-table.json` is the documented
//! sample. `Glue Data Catalog Table State Change` (UpdateTable and the
//! partition operations) needs no grants: Lake Formation grants name
//! databases, tables and columns, and partitions inherit their table's.

use lakeops_shared::validate::Problems;
use lakeops_shared::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `plan` computes the difference; `apply` also makes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Plan,
    Apply,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PolicySource {
    Inline(Value),
    Uri(String),
}

/// Tables that were just created, all in one database: the run is limited to
/// that database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewTables {
    pub database: String,
    /// In the event's order, without repeats.
    pub tables: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub mode: Mode,
    pub policy: PolicySource,
    /// What started the run (`direct`, `schedule`, `glue-table-created`...).
    pub trigger: String,
    pub new_tables: Option<NewTables>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    Run(Request),
    /// An event this function has nothing to do for (e.g. a dropped table).
    Ignored(String),
}

/// Direct invocations, state-machine stages and Scheduler inputs (EventBridge
/// Scheduler delivers a schedule's `Input` to a Lambda target unchanged).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DirectInput {
    #[serde(default)]
    mode: Option<Mode>,
    #[serde(default)]
    policy: Option<Value>,
    #[serde(default)]
    policy_uri: Option<String>,
    #[serde(default)]
    trigger: Option<String>,
}

pub const GLUE_DATABASE_CHANGE: &str = "Glue Data Catalog Database State Change";
pub const GLUE_TABLE_CHANGE: &str = "Glue Data Catalog Table State Change";
/// A classic EventBridge schedule rule (the template uses EventBridge
/// Scheduler instead, whose input is a direct input).
pub const SCHEDULED_EVENT: &str = "Scheduled Event";

fn default_source(default_uri: Option<&str>) -> Result<PolicySource> {
    default_uri
        .map(|uri| PolicySource::Uri(uri.to_string()))
        .ok_or_else(|| {
            Error::invalid_input(
                "policy: give policy or policy_uri in the event, or set POLICY_URI",
            )
        })
}

/// Recognise the event: a direct or scheduled input, or an EventBridge event.
pub fn parse_event(event: &Value, default_uri: Option<&str>) -> Result<Parsed> {
    if let Some(detail_type) = event.get("detail-type").and_then(Value::as_str) {
        let source = event
            .get("source")
            .and_then(Value::as_str)
            .unwrap_or_default();
        return match (source, detail_type) {
            ("aws.glue", GLUE_DATABASE_CHANGE) => parse_database_change(event, default_uri),
            ("aws.glue", GLUE_TABLE_CHANGE) => {
                let change = event["detail"]["typeOfChange"].as_str().unwrap_or("?");
                Ok(Parsed::Ignored(format!(
                    "Glue {GLUE_TABLE_CHANGE} ({change}) needs no grants: partitions inherit their table's, and new tables come as {GLUE_DATABASE_CHANGE}"
                )))
            }
            ("aws.events", SCHEDULED_EVENT) => Ok(Parsed::Run(Request {
                mode: Mode::Apply,
                policy: default_source(default_uri)?,
                trigger: "schedule".to_string(),
                new_tables: None,
            })),
            _ => Err(Error::invalid_input(format!(
                "detail-type: unsupported event '{detail_type}' from '{source}'"
            ))),
        };
    }
    parse_direct(event, default_uri)
}

/// `CreateTable` runs for the tables in `changedTables`; the other changes
/// (CreateDatabase, DeleteDatabase, DeleteTable, BatchDeleteTable) need none.
fn parse_database_change(event: &Value, default_uri: Option<&str>) -> Result<Parsed> {
    let detail = &event["detail"];
    let mut problems = Problems::new();
    let mut text = |name: &str| match &detail[name] {
        Value::String(s) if !s.trim().is_empty() => s.clone(),
        Value::String(_) | Value::Null => {
            problems.add(format!("detail.{name}"), "is required");
            String::new()
        }
        _ => {
            problems.add(format!("detail.{name}"), "must be a string");
            String::new()
        }
    };
    let change = text("typeOfChange");
    let database = text("databaseName");
    problems.into_result()?;
    if change != "CreateTable" {
        return Ok(Parsed::Ignored(format!(
            "Glue typeOfChange {change} needs no grants"
        )));
    }
    let tables = changed_tables(&detail["changedTables"])?;
    Ok(Parsed::Run(Request {
        mode: Mode::Apply,
        policy: default_source(default_uri)?,
        trigger: "glue-table-created".to_string(),
        new_tables: Some(NewTables { database, tables }),
    }))
}

/// `detail.changedTables`: a non-empty list of table names.
fn changed_tables(value: &Value) -> Result<Vec<String>> {
    const PATH: &str = "detail.changedTables";
    let mut problems = Problems::new();
    let mut tables: Vec<String> = Vec::new();
    match value {
        Value::Array(items) if items.is_empty() => problems.add(PATH, "lists no table"),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                match item.as_str() {
                    Some(name) if !name.trim().is_empty() => {
                        if !tables.iter().any(|t| t == name) {
                            tables.push(name.to_string());
                        }
                    }
                    _ => problems.add(format!("{PATH}[{i}]"), "must be a table name"),
                }
            }
        }
        Value::Null => problems.add(PATH, "is required"),
        _ => problems.add(PATH, "must be a list of table names"),
    }
    problems.into_result()?;
    Ok(tables)
}

fn parse_direct(event: &Value, default_uri: Option<&str>) -> Result<Parsed> {
    let input: DirectInput = serde_json::from_value(event.clone()).map_err(|e| {
        Error::invalid_input(format!(
            "event: {e} (expected mode, policy or policy_uri, trigger)"
        ))
    })?;
    let policy = match (input.policy, input.policy_uri) {
        (Some(_), Some(_)) => {
            return Err(Error::invalid_input(
                "policy, policy_uri: give one, not both",
            ))
        }
        (Some(inline), None) => PolicySource::Inline(inline),
        (None, Some(uri)) => PolicySource::Uri(uri),
        (None, None) => default_source(default_uri)?,
    };
    Ok(Parsed::Run(Request {
        mode: input.mode.unwrap_or(Mode::Plan),
        policy,
        trigger: input.trigger.unwrap_or_else(|| "direct".to_string()),
        new_tables: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lakeops_shared::ErrorKind;
    use serde_json::json;

    const POLICY: Option<&str> = Some("s3://b/p.yaml");

    /// The documented AWS samples in `events/` (see `events/SOURCES.md`).
    fn sample(name: &str) -> Value {
        let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    fn run(event: &Value) -> Request {
        match parse_event(event, POLICY).unwrap() {
            Parsed::Run(request) => request,
            Parsed::Ignored(reason) => panic!("ignored: {reason}"),
        }
    }

    #[test]
    fn the_documented_create_table_event_runs_for_its_table() {
        let request = run(&sample("lake-grants-aws-glue-create-table.json"));
        assert_eq!(request.mode, Mode::Apply);
        assert_eq!(request.trigger, "glue-table-created");
        assert_eq!(request.policy, PolicySource::Uri("s3://b/p.yaml".into()));
        assert_eq!(
            request.new_tables,
            Some(NewTables {
                database: "curated".into(),
                tables: vec!["sales_2027".into()]
            })
        );
    }

    #[test]
    fn every_table_of_a_create_table_event_is_run_for() {
        let mut event = sample("lake-grants-aws-glue-create-table.json");
        event["detail"]["changedTables"] =
            json!(["sales_2027", "sales_2028", "sales_2027", "returns"]);
        let tables = run(&event).new_tables.unwrap().tables;
        assert_eq!(tables, ["sales_2027", "sales_2028", "returns"]);
    }

    #[test]
    fn other_database_changes_are_ignored() {
        for change in [
            "CreateDatabase",
            "DeleteDatabase",
            "DeleteTable",
            "BatchDeleteTable",
        ] {
            let mut event = sample("lake-grants-aws-glue-create-table.json");
            event["detail"]["typeOfChange"] = json!(change);
            match parse_event(&event, POLICY).unwrap() {
                Parsed::Ignored(reason) => assert!(reason.contains(change), "{reason}"),
                other => panic!("{change}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_malformed_create_table_event_names_the_field() {
        let base = sample("lake-grants-aws-glue-create-table.json");
        let cases = [
            (
                "changedTables",
                json!([]),
                "detail.changedTables: lists no table",
            ),
            (
                "changedTables",
                json!(null),
                "detail.changedTables: is required",
            ),
            (
                "changedTables",
                json!("t1"),
                "detail.changedTables: must be a list",
            ),
            (
                "changedTables",
                json!(["a", 3]),
                "detail.changedTables[1]: must be a table name",
            ),
            (
                "databaseName",
                json!(""),
                "detail.databaseName: is required",
            ),
            (
                "typeOfChange",
                json!(7),
                "detail.typeOfChange: must be a string",
            ),
        ];
        for (field, value, expected) in cases {
            let mut event = base.clone();
            event["detail"][field] = value;
            let error = parse_event(&event, POLICY).unwrap_err();
            assert_eq!(error.kind, ErrorKind::InvalidInput);
            assert!(error.message.contains(expected), "{field}: {error}");
        }
        let error = parse_event(&base, None).unwrap_err();
        assert!(error.message.contains("POLICY_URI"), "{error}");
    }

    /// UpdateTable and the partition operations need no grants, and the shape
    /// this function once expected (a Table State Change with CreateTable and
    /// `tableName`) is not one AWS sends: it runs nothing.
    #[test]
    fn table_state_changes_are_ignored() {
        let partitions = sample("lake-grants-aws-glue-batch-create-partition.json");
        let invented = json!({
            "version": "0", "id": "1", "detail-type": GLUE_TABLE_CHANGE, "source": "aws.glue",
            "detail": {"databaseName": "curated", "typeOfChange": "CreateTable", "tableName": "orders"}
        });
        for event in [partitions, invented] {
            match parse_event(&event, POLICY).unwrap() {
                Parsed::Ignored(reason) => {
                    assert!(reason.contains(GLUE_DATABASE_CHANGE), "{reason}")
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn the_scheduler_input_is_a_full_apply_run() {
        let request = run(&sample("lake-grants-aws-scheduler-daily.json"));
        assert_eq!(request.mode, Mode::Apply);
        assert_eq!(request.trigger, "schedule");
        assert_eq!(request.new_tables, None);
        let request = run(&sample("lake-grants-aws-eventbridge-scheduled-event.json"));
        assert_eq!(
            (request.mode, request.trigger.as_str()),
            (Mode::Apply, "schedule")
        );
    }

    #[test]
    fn direct_inputs_are_recognised() {
        let request = run(&json!({"mode": "apply", "policy_uri": "s3://b/q.yaml"}));
        assert_eq!(request.mode, Mode::Apply);
        assert_eq!(request.policy, PolicySource::Uri("s3://b/q.yaml".into()));
        assert_eq!(run(&json!({})).mode, Mode::Plan, "plan is the safe default");

        let error =
            parse_event(&json!({"mode": "apply", "polcy_uri": "s3://b/p"}), None).unwrap_err();
        assert!(error.message.contains("polcy_uri"), "{error}");
        let error = parse_event(&json!({"mode": "destroy", "policy": {}}), None).unwrap_err();
        assert_eq!(error.kind, ErrorKind::InvalidInput);
        let error =
            parse_event(&json!({"policy": {}, "policy_uri": "s3://b/p"}), None).unwrap_err();
        assert!(error.message.contains("not both"), "{error}");
        let error = parse_event(
            &json!({"detail-type": "Object Created", "source": "aws.s3"}),
            POLICY,
        )
        .unwrap_err();
        assert!(
            error.message.contains("unsupported event 'Object Created'"),
            "{error}"
        );
    }
}
