//! The `dr-failover` state machine (statemachines/dr-failover.asl.json), rendered here
//! so that its steps and the function's agree. A test checks the file against
//! [`render`]; `LAKEOPS_WRITE_ASL=1 cargo test -p dr-sync asl` rewrites it.
//!
//! Input: `{"mode": "planned"|"forced", "reverse": false|true, "spec"?: ...}`.
//! `planned` first runs a last sync (the dr-sync state machine, to completion) and
//! passes its summary on, so `decide` refuses unless it was clean. Then: decide,
//! disable the sync schedule (enable it again on failback), pause the old primary's
//! jobs and cancel their runs (best effort when forced), unpause the new primary's,
//! and switch the pointer last.

use lakeops_shared::error::RETRYABLE;
use serde_json::{json, Map, Value};

use crate::asl::{sdk_retry, FUNCTION_ARN, SPEC_URI};
use crate::failover_runner::FailoverStep;

/// `DefinitionSubstitutions` keys in template.yaml.
pub const SYNC_STATE_MACHINE_ARN: &str = "${DrSyncStateMachineArn}";
pub const SYNC_SCHEDULE_NAME: &str = "${DrSyncScheduleName}";

fn step_name(step: FailoverStep) -> &'static str {
    match step {
        FailoverStep::Decide => "decide",
        FailoverStep::CancelSyncStatements => "cancel_sync_statements",
        FailoverStep::PausePrimaryJobs => "pause_primary_jobs",
        FailoverStep::UnpauseSecondaryJobs => "unpause_secondary_jobs",
        FailoverStep::Switch => "switch",
    }
}

fn retry() -> Value {
    json!([{
        "ErrorEquals": [RETRYABLE, "Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException", "Lambda.TooManyRequestsException"],
        "IntervalSeconds": 5, "BackoffRate": 2.0, "MaxAttempts": 6, "MaxDelaySeconds": 120, "JitterStrategy": "FULL"
    }])
}

fn catch() -> Value {
    json!([{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "FailoverFailed"}])
}

fn task(step: FailoverStep, next: &str) -> Value {
    let mut payload = json!({
        "failover_step": step_name(step),
        "mode.$": "$.mode",
        "spec.$": "$.spec",
        "reverse.$": "$.reverse",
        "generation.$": "$.generation",
        "last_sync.$": "$.last_sync",
        "last_sync_error.$": "$.last_sync_error"
    });
    if step == FailoverStep::CancelSyncStatements {
        payload["stopped_runs.$"] = json!("$.running_syncs.names");
    }
    json!({
        "Type": "Task",
        "Comment": format!("Failover step {}", step_name(step)),
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {
            "FunctionName": FUNCTION_ARN,
                        "Payload": payload
        },
        "ResultSelector": {"generation.$": "$.Payload.generation", "promoted.$": "$.Payload.promoted", "jobs.$": "$.Payload.jobs", "errors.$": "$.Payload.errors"},
        "ResultPath": format!("$.{}", step_name(step)),
        "TimeoutSeconds": 300,
        "Retry": retry(),
        "Catch": catch(),
        "Next": next
    })
}

pub fn render() -> Value {
    let mut s = Map::new();
    s.insert("Inputs".into(), json!({
        "Type": "Pass",
        "Parameters": {"defaults": {"spec": SPEC_URI, "reverse": false, "generation": null, "last_sync": null, "last_sync_error": null}, "given.$": "$"},
        "Next": "WithDefaults"
    }));
    s.insert(
        "WithDefaults".into(),
        json!({
            "Type": "Pass",
            "Parameters": {"merged.$": "States.JsonMerge($.defaults, $.given, false)"},
            "OutputPath": "$.merged",
            "Next": "ByMode"
        }),
    );
    s.insert(
        "ByMode".into(),
        json!({
            "Type": "Choice",
            "Choices": [
                {"Not": {"Variable": "$.mode", "IsPresent": true}, "Next": "InvalidMode"},
                {"Variable": "$.mode", "StringEquals": "planned", "Next": "LastSync"},
                {"Variable": "$.mode", "StringEquals": "forced", "Next": "decide"}
            ],
            "Default": "InvalidMode"
        }),
    );
    s.insert("InvalidMode".into(), json!({"Type": "Fail", "Error": "Lakeops.InvalidInput", "Cause": "mode: must be planned or forced"}));
    s.insert("LastSync".into(), json!({
        "Type": "Task",
        "Comment": "A planned failover first syncs once more, to completion",
        "Resource": "arn:aws:states:::states:startExecution.sync:2",
        "Parameters": {
            "StateMachineArn": SYNC_STATE_MACHINE_ARN,
            "Input": {"mode": "apply", "spec.$": "$.spec", "reverse.$": "$.reverse", "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$": "$$.Execution.Id"}
        },
        "ResultSelector": {"status.$": "$.Output.status", "output.$": "$.Output"},
        "ResultPath": "$.last_sync_run",
        "Retry": sdk_retry("StepFunctions"),
        // A failed last sync is decide's to judge: before the switch it refuses the
        // failover with the sync's error; on a re-run after the switch (when the sync
        // is refused because the primary is no longer active) the failover finishes.
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.last_sync_failure", "Next": "WithoutLastSync"}],
        "Next": "LastSyncRan"
    }));
    s.insert("WithoutLastSync".into(), json!({
        "Type": "Pass",
        "Parameters": {"mode.$": "$.mode", "spec.$": "$.spec", "reverse.$": "$.reverse", "generation.$": "$.generation", "last_sync": null, "last_sync_error.$": "$.last_sync_failure"},
        "Next": "decide"
    }));
    s.insert("LastSyncRan".into(), json!({
        "Type": "Choice",
        "Comment": "A scheduled sync in flight makes the last sync end SKIPPED: try again when it is done",
        "Choices": [{"Variable": "$.last_sync_run.status", "StringEquals": "SUCCEEDED", "Next": "WithLastSync"}],
        "Default": "LastSyncSkipped"
    }));
    s.insert("LastSyncSkipped".into(), json!({"Type": "Fail", "Error": "DR.LastSyncSkipped", "Cause": "another dr-sync run was in flight; start the failover again when it ends"}));
    s.insert("WithLastSync".into(), json!({
        "Type": "Pass",
        "Parameters": {"mode.$": "$.mode", "spec.$": "$.spec", "reverse.$": "$.reverse", "generation.$": "$.generation", "last_sync.$": "$.last_sync_run.output.summary", "last_sync_error": null},
        "Next": "decide"
    }));
    s.insert("decide".into(), task(FailoverStep::Decide, "Carry"));
    s.insert("Carry".into(), json!({
        "Type": "Pass",
        "Comment": "Every later step carries the generation decide saw",
        "Parameters": {"mode.$": "$.mode", "spec.$": "$.spec", "reverse.$": "$.reverse", "last_sync.$": "$.last_sync", "last_sync_error.$": "$.last_sync_error", "generation.$": "$.decide.generation", "promoted.$": "$.decide.promoted"},
        "Next": "ScheduleState"
    }));
    s.insert(
        "ScheduleState".into(),
        json!({
            "Type": "Choice",
            "Comment": "Failover stops the sync into the promoted side; failback starts it again",
            "Choices": [{"Variable": "$.reverse", "BooleanEquals": true, "Next": "EnableSync"}],
            "Default": "DisableSync"
        }),
    );
    s.insert("DisableSync".into(), json!({"Type": "Pass", "Result": "DISABLED", "ResultPath": "$.schedule_state", "Next": "GetSyncSchedule"}));
    s.insert("EnableSync".into(), json!({"Type": "Pass", "Result": "ENABLED", "ResultPath": "$.schedule_state", "Next": "GetSyncSchedule"}));
    s.insert(
        "GetSyncSchedule".into(),
        json!({
            "Type": "Task",
            "Resource": "arn:aws:states:::aws-sdk:scheduler:getSchedule",
            "Parameters": {"Name": SYNC_SCHEDULE_NAME},
            "ResultPath": "$.schedule",
            "Retry": sdk_retry("Scheduler"),
            "Catch": catch(),
            "Next": "SetSyncSchedule"
        }),
    );
    s.insert("SetSyncSchedule".into(), json!({
        "Type": "Task",
        "Comment": "UpdateSchedule replaces the whole schedule: write it back with only its state changed",
        "Resource": "arn:aws:states:::aws-sdk:scheduler:updateSchedule",
        "Parameters": {
            "Name": SYNC_SCHEDULE_NAME,
            "ScheduleExpression.$": "$.schedule.ScheduleExpression",
            "ScheduleExpressionTimezone.$": "$.schedule.ScheduleExpressionTimezone",
            "FlexibleTimeWindow.$": "$.schedule.FlexibleTimeWindow",
            "Target.$": "$.schedule.Target",
            "Description.$": "$.schedule.Description",
            "State.$": "$.schedule_state"
        },
                "ResultPath": null,
        "Retry": sdk_retry("Scheduler"),
        "Catch": catch(),
        "Next": "RunningSyncs"
    }));
    s.insert("RunningSyncs".into(), json!({
        "Type": "Task",
        "Comment": "Sync runs that started before the schedule stopped: they must not write into the promoted side",
        "Resource": "arn:aws:states:::aws-sdk:sfn:listExecutions",
        "Parameters": {"StateMachineArn": SYNC_STATE_MACHINE_ARN, "StatusFilter": "RUNNING"},
        "ResultSelector": {"arns.$": "$.Executions[*].ExecutionArn", "names.$": "$.Executions[*].Name"},
        "ResultPath": "$.running_syncs",
        "Retry": sdk_retry("Sfn"),
        "Catch": catch(),
        "Next": "StopSyncs"
    }));
    s.insert("StopSyncs".into(), json!({
        "Type": "Map",
        "ItemsPath": "$.running_syncs.arns",
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "INLINE"},
            "StartAt": "StopSync",
            "States": {
                "StopSync": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::aws-sdk:sfn:stopExecution",
                    "Parameters": {"ExecutionArn.$": "$", "Error": "DR.FailoverInProgress", "Cause": "a failover stopped this sync run"},
                    "Retry": sdk_retry("Sfn"),
                    "End": true
                }
            }
        },
        "ResultPath": null,
        "Catch": catch(),
        "Next": "cancel_sync_statements"
    }));
    s.insert(
        "cancel_sync_statements".into(),
        task(FailoverStep::CancelSyncStatements, "pause_primary_jobs"),
    );
    s.insert(
        "pause_primary_jobs".into(),
        task(FailoverStep::PausePrimaryJobs, "unpause_secondary_jobs"),
    );
    s.insert(
        "unpause_secondary_jobs".into(),
        task(FailoverStep::UnpauseSecondaryJobs, "switch"),
    );
    s.insert("switch".into(), task(FailoverStep::Switch, "Done"));
    s.insert(
        "Done".into(),
        json!({
            "Type": "Pass",
            "Parameters": {
                "status": "SUCCEEDED",
                "mode.$": "$.mode",
                "reverse.$": "$.reverse",
                "active.$": "$.switch.promoted",
                "jobs_paused.$": "$.pause_primary_jobs.jobs",
                "jobs_unpaused.$": "$.unpause_secondary_jobs.jobs",
                "primary_errors.$": "$.pause_primary_jobs.errors"
            },
            "End": true
        }),
    );
    s.insert("FailoverFailed".into(), json!({
        "Type": "Pass",
        "Parameters": {"status": "FAILED", "error.$": "$.error.Error", "cause.$": "$.error.Cause"},
        "Next": "Failed"
    }));
    s.insert(
        "Failed".into(),
        json!({"Type": "Fail", "ErrorPath": "$.error", "CausePath": "$.cause"}),
    );
    json!({
        "Comment": "lakeops dr-failover: promote the secondary (or, with reverse, fail back). Input: {\"mode\": \"planned\"|\"forced\", \"reverse\": false|true}.",
        "StartAt": "Inputs",
        "States": Value::Object(s)
    })
}

pub fn render_text() -> String {
    let mut text = serde_json::to_string_pretty(&render()).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../statemachines/dr-failover.asl.json")
    }

    #[test]
    fn the_file_is_the_rendered_definition() {
        let text = render_text();
        if std::env::var_os("LAKEOPS_WRITE_ASL").is_some() {
            std::fs::write(path(), &text).unwrap();
        }
        let file = std::fs::read_to_string(path()).unwrap_or_default();
        assert!(file == text, "statemachines/dr-failover.asl.json is stale: LAKEOPS_WRITE_ASL=1 cargo test -p dr-sync asl");
    }

    /// Every task is retried under the names Step Functions gives its errors: a Lambda
    /// step under `Lambda.*` and ours, an SDK call under its service's prefix.
    #[test]
    fn every_task_retries_the_errors_its_integration_raises() {
        fn tasks<'a>(states: &'a Value, out: &mut Vec<&'a Value>) {
            for state in states.as_object().unwrap().values() {
                if state["Type"] == "Task" {
                    out.push(state);
                }
                if let Some(inner) = state.get("Iterator").or_else(|| state.get("ItemProcessor")) {
                    tasks(&inner["States"], out);
                }
            }
        }
        for definition in [render(), crate::asl::render()] {
            let mut found = vec![];
            tasks(&definition["States"], &mut found);
            assert!(found.len() >= 2);
            for task in found {
                let resource = task["Resource"].as_str().unwrap();
                let prefix = match resource {
                    "arn:aws:states:::lambda:invoke" => "Lambda.",
                    r if r.starts_with("arn:aws:states:::aws-sdk:sfn:") => "Sfn.",
                    r if r.starts_with("arn:aws:states:::aws-sdk:scheduler:") => "Scheduler.",
                    r if r.starts_with("arn:aws:states:::states:") => "StepFunctions.",
                    other => panic!("a task of an integration the test does not know: {other}"),
                };
                let names: Vec<&str> = task["Retry"][0]["ErrorEquals"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|n| n.as_str().unwrap())
                    .collect();
                assert!(
                    names
                        .iter()
                        .any(|n| n.starts_with(prefix) && n.contains("Throttl")
                            || *n == "Lambda.TooManyRequestsException"),
                    "{resource}: {names:?}"
                );
                assert!(
                    names
                        .iter()
                        .all(|n| n.starts_with(prefix) || *n == RETRYABLE),
                    "{resource}: {names:?}"
                );
            }
        }
    }

    #[test]
    fn the_pointer_switches_last_and_every_step_is_a_function_step() {
        let states = render()["States"].as_object().unwrap().clone();
        let mut at = "decide".to_string();
        let mut order = vec![];
        while at != "Done" {
            order.push(at.clone());
            let state = &states[&at];
            at = state["Next"]
                .as_str()
                .or(state["Default"].as_str())
                .unwrap()
                .to_string();
        }
        assert_eq!(order.last().map(String::as_str), Some("switch"));
        let disable = order.iter().position(|s| s == "SetSyncSchedule").unwrap();
        let pause = order
            .iter()
            .position(|s| s == "pause_primary_jobs")
            .unwrap();
        assert!(
            disable < pause,
            "the sync is stopped before anything moves: {order:?}"
        );
        let stop = order
            .iter()
            .position(|s| s == "cancel_sync_statements")
            .unwrap();
        assert!(
            stop < pause,
            "sync runs in flight are stopped before anything moves: {order:?}"
        );
        for step in [
            "decide",
            "cancel_sync_statements",
            "pause_primary_jobs",
            "unpause_secondary_jobs",
            "switch",
        ] {
            let payload = &states[step]["Parameters"]["Payload"];
            let parsed: FailoverStep =
                serde_json::from_value(payload["failover_step"].clone()).unwrap();
            assert_eq!(step_name(parsed), step);
        }
    }
}
