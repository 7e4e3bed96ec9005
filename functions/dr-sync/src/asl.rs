//! The `dr-sync` state machine (statemachines/dr-sync.asl.json), rendered from the step
//! list so the two never disagree. A test checks the file against [`render`];
//! `LAKEOPS_WRITE_ASL=1 cargo test -p dr-sync asl` rewrites it.
//!
//! Shape: one run at a time (a run that finds another in flight ends at once, with a
//! status saying so); `discover`; then, in apply mode, each stage as a Task with its
//! own Wait/Choice loop (clones and views are submitted with wait 0s and polled by the
//! next call, never waited for in the Lambda); then `report`. Retryable errors are
//! retried with backoff; any other failure ends in a Fail state naming the step.

use lakeops_shared::error::RETRYABLE;
use serde_json::{json, Map, Value};

use crate::event::{errors, Step};

/// `DefinitionSubstitutions` key of the function ARN in template.yaml.
pub const FUNCTION_ARN: &str = "${DrSyncFunctionArn}";
/// `DefinitionSubstitutions` key of the stack's DR spec URI: the spec of a run that
/// names none (the schedule's input is only the mode).
pub const SPEC_URI: &str = "${DrSpecUri}";

/// The retrier of an AWS SDK or optimized Step Functions task. Step Functions names
/// such errors `<Service>.<Error>`, with an `Exception` suffix even where the service's
/// own name lacks it ("Learning to use AWS service SDK integrations in Step Functions"),
/// so the Lambda names of [`retry`] never match them. `service` is `Sfn` or `Scheduler`
/// for `aws-sdk:sfn` / `aws-sdk:scheduler`, `StepFunctions` for `states:startExecution`.
/// Throttling and the services' own transient failures are retried; a failed child
/// execution (`States.TaskFailed`) is not, it goes to the task's Catch.
pub(crate) fn sdk_retry(service: &str) -> Value {
    let transient = match service {
        "Scheduler" => vec!["ThrottlingException", "InternalServerException"],
        _ => vec![
            "ThrottlingException",
            "InternalFailureException",
            "ServiceUnavailableException",
        ],
    };
    let names: Vec<String> = transient.iter().map(|e| format!("{service}.{e}")).collect();
    json!([{
        "ErrorEquals": names,
        "IntervalSeconds": 2, "BackoffRate": 2.0, "MaxAttempts": 6, "MaxDelaySeconds": 60, "JitterStrategy": "FULL"
    }])
}

fn retry() -> Value {
    json!([{
        "ErrorEquals": [
            RETRYABLE,
            "Lambda.ServiceException",
            "Lambda.AWSLambdaException",
            "Lambda.SdkClientException",
            "Lambda.TooManyRequestsException"
        ],
        "IntervalSeconds": 5,
        "BackoffRate": 2.0,
        "MaxAttempts": 6,
        "MaxDelaySeconds": 120,
        "JitterStrategy": "FULL"
    }])
}

fn task(step: Step, next: &str) -> Value {
    json!({
        "Type": "Task",
        "Comment": format!("Step {}", step.as_str()),
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {
            "FunctionName": FUNCTION_ARN,
            "Payload": {
                "step": step.as_str(),
                "mode.$": "$.mode",
                "spec.$": "$.spec",
                "generation.$": "$.generation",
                "run.$": "$.run",
                "reverse.$": "$.reverse"
            }
        },
        "ResultSelector": {
            "mode.$": "$.Payload.mode",
            "spec.$": "$.Payload.spec",
            "generation.$": "$.Payload.generation",
            "run.$": "$.Payload.run",
            "reverse.$": "$.Payload.reverse",
            "step.$": "$.Payload.step",
            "changes.$": "$.Payload.changes",
            "changes_total.$": "$.Payload.changes_total",
            "plan_uri.$": "$.Payload.plan_uri",
            "report_uri.$": "$.Payload.report_uri",
            "summary.$": "$.Payload.summary",
            "ready.$": "$.Payload.ready",
            "wait_seconds.$": "$.Payload.wait_seconds"
        },
        "ResultPath": "$",
                // discover and report read both inventories (thousands of reads on a big lake).
        "TimeoutSeconds": if matches!(step, Step::Discover | Step::Report) { 900 } else { 300 },
        "Retry": retry(),
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": format!("{} failed", step.as_str())}],
        "Next": next
    })
}

fn failed(step: Step) -> Value {
    json!({
        "Type": "Pass",
        "Comment": format!("Step {} failed: name the step and the cause", step.as_str()),
        "Parameters": {
            "status": "FAILED",
            "step": step.as_str(),
            "mode.$": "$.mode",
            "error.$": "$.error.Error",
            "cause.$": format!("States.Format('Step {} failed ({{}}): {{}}', $.error.Error, $.error.Cause)", step.as_str())
        },
        "Next": "Failed"
    })
}

/// A step's Task, and its Wait/Choice loop when it can answer "not ready".
fn insert_step(states: &mut Map<String, Value>, step: Step, next: &str) {
    let name = step.as_str().to_string();
    let check = format!("{name}?");
    let wait = format!("wait {name}");
    states.insert(name.clone(), task(step, &check));
    states.insert(
        check,
        json!({
            "Type": "Choice",
            "Comment": "Loop while statements of this step are in flight",
            "Choices": [{"Variable": "$.ready", "BooleanEquals": false, "Next": wait}],
            "Default": next
        }),
    );
    states.insert(
        wait,
        json!({"Type": "Wait", "SecondsPath": "$.wait_seconds", "Next": name}),
    );
    states.insert(format!("{name} failed"), failed(step));
}

pub fn render() -> Value {
    let steps = Step::apply_order();
    let mut states = Map::new();
    states.insert(
        "Inputs".into(),
        json!({
            "Type": "Pass",
            "Comment": "Defaults for what a schedule or a person may leave out",
            "Parameters": {
                "defaults": {"mode": "apply", "spec": SPEC_URI, "generation": null, "run": null, "reverse": false},
                "given.$": "$"
            },
            "Next": "WithDefaults"
        }),
    );
    states.insert(
        "WithDefaults".into(),
        json!({
            "Type": "Pass",
            "Parameters": {"merged.$": "States.JsonMerge($.defaults, $.given, false)"},
            "OutputPath": "$.merged",
            "Next": "CheckInput"
        }),
    );
    states.insert(
        "CheckInput".into(),
        json!({
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.spec", "StringEquals": "", "Next": "NoSpec"},
                {"Not": {"Or": [
                    {"Variable": "$.mode", "StringEquals": "plan"},
                    {"Variable": "$.mode", "StringEquals": "apply"},
                    {"Variable": "$.mode", "StringEquals": "reconcile"}
                ]}, "Next": "InvalidMode"}
            ],
            "Default": "InFlight"
        }),
    );
    states.insert("NoSpec".into(), json!({"Type": "Fail", "Error": "Lakeops.InvalidInput", "Cause": "spec: is required (a DR spec object or an s3:// URI); the stack's DrSpecUri is empty"}));
    states.insert("InvalidMode".into(), json!({"Type": "Fail", "Error": "Lakeops.InvalidInput", "Cause": "mode: must be plan, apply or reconcile"}));
    states.insert(
        "InFlight".into(),
        json!({
            "Type": "Task",
            "Comment": "A run does not start while another is in flight (this one counts itself)",
            "Resource": "arn:aws:states:::aws-sdk:sfn:listExecutions",
            "Parameters": {"StateMachineArn.$": "$$.StateMachine.Id", "StatusFilter": "RUNNING"},
            "ResultSelector": {"running.$": "States.ArrayLength($.Executions)"},
            "ResultPath": "$.in_flight",
            "Retry": sdk_retry("Sfn"),
            "Next": "OneAtATime"
        }),
    );
    states.insert(
        "OneAtATime".into(),
        json!({
            "Type": "Choice",
            "Choices": [{"Variable": "$.in_flight.running", "NumericGreaterThan": 1, "Next": "AlreadyRunning"}],
            "Default": "RunId"
        }),
    );
    states.insert(
        "AlreadyRunning".into(),
        json!({"Type": "Pass", "Parameters": {"status": "SKIPPED", "reason": "another dr-sync run is in flight"}, "End": true}),
    );
    states.insert(
        "RunId".into(),
        json!({
            "Type": "Pass",
            "Comment": "The execution name is the run id: plan and queues are stored under it",
            "Parameters": {"mode.$": "$.mode", "spec.$": "$.spec", "generation.$": "$.generation", "reverse.$": "$.reverse", "run.$": "$$.Execution.Name"},
            "Next": Step::Discover.as_str()
        }),
    );
    let first_stage = steps[1].as_str();
    insert_step(&mut states, Step::Discover, "ByMode");
    states.insert(
        "ByMode".into(),
        json!({
            "Type": "Choice",
            "Comment": "plan and reconcile read only: straight to the report",
            "Choices": [{"Variable": "$.mode", "StringEquals": "apply", "Next": first_stage}],
            "Default": Step::Report.as_str()
        }),
    );
    for (i, step) in steps.iter().enumerate().skip(1) {
        let next = steps.get(i + 1).map_or("Done", |s| s.as_str());
        insert_step(&mut states, *step, next);
    }
    states.insert(
        "Done".into(),
        json!({
            "Type": "Pass",
            "Parameters": {
                "status": "SUCCEEDED",
                "mode.$": "$.mode",
                "reverse.$": "$.reverse",
                "run.$": "$.run",
                "summary.$": "$.summary",
                "report_uri.$": "$.report_uri",
                "plan_uri.$": "$.plan_uri"
            },
            "End": true
        }),
    );
    states.insert(
        "Failed".into(),
        json!({"Type": "Fail", "ErrorPath": "$.error", "CausePath": "$.cause"}),
    );
    json!({
        "Comment": format!(
            "lakeops dr-sync: keep the secondary region's Unity Catalog in step with the primary's. Input: {{\"mode\": \"plan\"|\"apply\"|\"reconcile\", \"spec\": {{...}} | \"s3://...\" (default: the stack's DrSpecUri)}}. Refusals: {}.",
                        errors::REFUSALS.join(", ")
        ),
        "StartAt": "Inputs",
        "States": Value::Object(states)
    })
}

/// The file's text: pretty JSON and a final newline.
pub fn render_text() -> String {
    let mut text = serde_json::to_string_pretty(&render()).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn path() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../statemachines/dr-sync.asl.json")
    }

    fn states() -> Map<String, Value> {
        render()["States"].as_object().unwrap().clone()
    }

    #[test]
    fn the_file_is_the_rendered_definition() {
        let text = render_text();
        if std::env::var_os("LAKEOPS_WRITE_ASL").is_some() {
            std::fs::write(path(), &text).unwrap();
        }
        let file = std::fs::read_to_string(path()).unwrap_or_default();
        assert!(file == text, "statemachines/dr-sync.asl.json is stale: LAKEOPS_WRITE_ASL=1 cargo test -p dr-sync asl");
    }

    fn targets(state: &Value) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(n) = state["Next"].as_str() {
            out.push(n.to_string());
        }
        if let Some(n) = state["Default"].as_str() {
            out.push(n.to_string());
        }
        for c in state["Choices"].as_array().into_iter().flatten() {
            out.push(c["Next"].as_str().unwrap().to_string());
        }
        for c in state["Catch"].as_array().into_iter().flatten() {
            out.push(c["Next"].as_str().unwrap().to_string());
        }
        out
    }

    #[test]
    fn every_next_names_a_state_and_every_state_is_reachable() {
        let states = states();
        let mut seen = BTreeSet::new();
        let mut todo = vec!["Inputs".to_string()];
        while let Some(s) = todo.pop() {
            if !seen.insert(s.clone()) {
                continue;
            }
            let state = states
                .get(&s)
                .unwrap_or_else(|| panic!("{s} is named but missing"));
            todo.extend(targets(state));
        }
        let all: BTreeSet<String> = states.keys().cloned().collect();
        assert_eq!(seen, all);
    }

    #[test]
    fn apply_runs_every_step_in_order_and_others_go_to_the_report() {
        let states = states();
        let mut at = "managed_tables".to_string();
        let mut order = vec![];
        while at != "Done" {
            order.push(at.clone());
            assert_eq!(states[&at]["Type"], "Task");
            assert_eq!(states[&at]["Parameters"]["Payload"]["step"], at.as_str());
            let check = &states[&format!("{at}?")];
            assert_eq!(check["Choices"][0]["Next"], format!("wait {at}"));
            assert_eq!(states[&format!("wait {at}")]["Next"], at.as_str());
            at = check["Default"].as_str().unwrap().to_string();
        }
        assert_eq!(order.first().map(String::as_str), Some("managed_tables"));
        assert_eq!(order.last().map(String::as_str), Some("report"));
        assert_eq!(states["ByMode"]["Default"], "report");
        assert_eq!(states["ByMode"]["Choices"][0]["Next"], "storage");
        assert_eq!(states["storage?"]["Default"], "catalogs");
        assert_eq!(states["catalogs?"]["Default"], "sharing");
        assert_eq!(states["sharing?"]["Default"], "managed_tables");
    }
}
