//! The state machine (statemachines/provision.asl.json), rendered from the
//! stage list so the two never disagree. A test checks the file against
//! [`render`]; `LAKEOPS_WRITE_ASL=1 cargo test -p provision asl` rewrites it.
//!
//! Shape: the input is `{"mode", "spec"}` (one environment) or `{"mode",
//! "environments": [spec or s3 URI, ...]}`; a Map runs one environment at a
//! time. Each stage is one Task invoking `provision`; the workspace waits in a
//! Wait/Choice loop (never in the Lambda); retryable errors are retried with
//! backoff, credential validation with its own bounded budget; any other
//! failure ends in a Fail state whose cause names the stage.

use crate::event::CREDENTIAL_VALIDATION;
use crate::stages::{destroy_order, Stage, APPLY_ORDER};
use lakeops_shared::error::RETRYABLE;
use serde_json::{json, Map, Value};

/// `DefinitionSubstitutions` key of the function ARN in template.yaml.
pub const FUNCTION_ARN: &str = "${ProvisionFunctionArn}";

fn retry() -> Value {
    json!([
        {
            // IAM takes minutes to propagate a new cross-account role; Databricks
            // rejects it until then. About 13 minutes in all, then fail.
            "ErrorEquals": [CREDENTIAL_VALIDATION],
            "IntervalSeconds": 15,
            "BackoffRate": 1.5,
            "MaxAttempts": 10,
            "MaxDelaySeconds": 120,
            "JitterStrategy": "FULL"
        },
        {
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
        }
    ])
}

fn task(stage: Stage, failed_state: &str, next: &str) -> Value {
    json!({
        "Type": "Task",
        "Comment": format!("Stage {stage}"),
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {
            "FunctionName": FUNCTION_ARN,
            "Payload": {
                "stage": stage.as_str(),
                "mode.$": "$.mode",
                "spec.$": "$.spec",
                "outputs.$": "$.outputs",
                "all_changes.$": "$.all_changes"
            }
        },
        "ResultSelector": {
            "stage.$": "$.Payload.stage",
            "mode.$": "$.Payload.mode",
            "spec.$": "$.Payload.spec",
            "outputs.$": "$.Payload.outputs",
            "changes.$": "$.Payload.changes",
            "all_changes.$": "$.Payload.all_changes",
            "ready.$": "$.Payload.ready",
            "wait_seconds.$": "$.Payload.wait_seconds"
        },
        "ResultPath": "$",
        "TimeoutSeconds": 300,
        "Retry": retry(),
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": failed_state}],
        "Next": next
    })
}

fn failed(stage: Stage, fail_state: &str) -> Value {
    json!({
        "Type": "Pass",
        "Comment": format!("Stage {stage} failed: name the stage and the cause"),
        "Parameters": {
            "status": "FAILED",
            "stage": stage.as_str(),
            "mode.$": "$.mode",
            "error.$": "$.error.Error",
            "cause.$": format!("States.Format('Stage {stage} failed ({{}}): {{}}', $.error.Error, $.error.Cause)"),
            "outputs.$": "$.outputs",
            "all_changes.$": "$.all_changes"
        },
        "Next": fail_state
    })
}

/// The states of one chain of stages, wired in order, ending in `last_next`.
fn chain(states: &mut Map<String, Value>, prefix: &str, stages: &[Stage], last_next: &str) {
    let name = |s: Stage| format!("{prefix}{s}");
    for (i, stage) in stages.iter().enumerate() {
        let state = name(*stage);
        let failed_state = format!("{state} failed");
        let next = match stages.get(i + 1) {
            Some(next) => name(*next),
            None => last_next.to_string(),
        };
        if *stage == Stage::WorkspaceReady {
            let check = format!("{state}?");
            let wait = format!("Wait for {state}");
            states.insert(state.clone(), task(*stage, &failed_state, &check));
            states.insert(
                check,
                json!({
                    "Type": "Choice",
                    "Comment": "Loop until the workspace is RUNNING and its API answers",
                    "Choices": [{"Variable": "$.ready", "BooleanEquals": false, "Next": wait}],
                    "Default": next
                }),
            );
            states.insert(
                wait,
                json!({"Type": "Wait", "SecondsPath": "$.wait_seconds", "Next": state}),
            );
        } else {
            states.insert(state.clone(), task(*stage, &failed_state, &next));
        }
        states.insert(failed_state, failed(*stage, "Failed"));
    }
}

/// The whole state machine definition.
pub fn render() -> Value {
    let mut inner = Map::new();
    inner.insert(
        "ByMode".into(),
        json!({
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.mode", "StringEquals": "destroy", "Next": format!("destroy {}", Stage::Validate)},
                {"Or": [
                    {"Variable": "$.mode", "StringEquals": "plan"},
                    {"Variable": "$.mode", "StringEquals": "apply"}
                ], "Next": Stage::Validate.as_str()}
            ],
            "Default": "InvalidMode"
        }),
    );
    inner.insert(
        "InvalidMode".into(),
        json!({"Type": "Fail", "Error": "Lakeops.InvalidInput", "Cause": "mode: must be plan, apply or destroy"}),
    );
    chain(&mut inner, "", APPLY_ORDER, "Done");
    chain(&mut inner, "destroy ", &destroy_order(), "Destroyed");
    inner.insert(
        "Done".into(),
        json!({
            "Type": "Pass",
            "Parameters": {
                "status": "SUCCEEDED",
                "mode.$": "$.mode",
                "environment.$": "$.outputs.environment",
                "workspace_url.$": "$.outputs.workspace_url",
                "catalog.$": "$.outputs.catalog_name",
                "schemas.$": "$.outputs.schemas",
                "outputs.$": "$.outputs",
                "changes.$": "$.all_changes"
            },
            "End": true
        }),
    );
    inner.insert(
        "Destroyed".into(),
        json!({
            "Type": "Pass",
            "Parameters": {
                "status": "SUCCEEDED",
                "mode.$": "$.mode",
                "environment.$": "$.outputs.environment",
                "outputs.$": "$.outputs",
                "changes.$": "$.all_changes"
            },
            "End": true
        }),
    );
    inner.insert(
        "Failed".into(),
        json!({"Type": "Fail", "ErrorPath": "$.error", "CausePath": "$.cause"}),
    );
    json!({
        "Comment": "lakeops provision: converge a Databricks on AWS platform from a spec, one stage per Task. Input: {\"mode\": \"plan\"|\"apply\"|\"destroy\", \"spec\": {...} | \"s3://...\"} or {\"mode\": ..., \"environments\": [...]}.",
        "StartAt": "Inputs",
        "States": {
            "Inputs": {
                "Type": "Choice",
                "Choices": [
                    {"Not": {"Variable": "$.mode", "IsPresent": true}, "Next": "NoMode"},
                    {"Variable": "$.environments", "IsPresent": true, "Next": "Environments"},
                    {"Not": {"Variable": "$.spec", "IsPresent": true}, "Next": "NoSpec"}
                ],
                "Default": "OneEnvironment"
            },
            "NoMode": {"Type": "Fail", "Error": "Lakeops.InvalidInput", "Cause": "mode: is required (plan, apply or destroy)"},
            "NoSpec": {"Type": "Fail", "Error": "Lakeops.InvalidInput", "Cause": "spec: is required (a spec object or an s3:// URI), or give environments: [...]"},
            "OneEnvironment": {
                "Type": "Pass",
                "Parameters": {"mode.$": "$.mode", "environments.$": "States.Array($.spec)"},
                "Next": "Environments"
            },
            "Environments": {
                "Type": "Map",
                "Comment": "One environment at a time (dev, then qa, then prod), in list order",
                "ItemsPath": "$.environments",
                "ItemSelector": {
                    "mode.$": "$.mode",
                    "spec.$": "$$.Map.Item.Value",
                    "outputs": {},
                    "all_changes": []
                },
                "MaxConcurrency": 1,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "ByMode",
                    "States": Value::Object(inner)
                },
                "End": true
            }
        }
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
            .join("../../statemachines/provision.asl.json")
    }

    fn states() -> Map<String, Value> {
        render()["States"]["Environments"]["ItemProcessor"]["States"]
            .as_object()
            .unwrap()
            .clone()
    }

    #[test]
    fn the_file_is_the_rendered_definition() {
        if std::env::var_os("LAKEOPS_WRITE_ASL").is_some() {
            std::fs::create_dir_all(path().parent().unwrap()).unwrap();
            std::fs::write(path(), render_text()).unwrap();
        }
        let on_disk = std::fs::read_to_string(path())
            .expect("statemachines/provision.asl.json (LAKEOPS_WRITE_ASL=1 writes it)");
        assert_eq!(on_disk, render_text(), "statemachines/provision.asl.json is stale: run LAKEOPS_WRITE_ASL=1 cargo test -p provision asl");
    }

    #[test]
    fn every_next_names_a_state_and_every_state_is_reachable() {
        let states = states();
        let mut reachable = BTreeSet::new();
        let mut todo = vec!["ByMode".to_string()];
        while let Some(name) = todo.pop() {
            if !reachable.insert(name.clone()) {
                continue;
            }
            let state = states
                .get(&name)
                .unwrap_or_else(|| panic!("missing state {name}"));
            let mut nexts: Vec<String> = Vec::new();
            for key in ["Next", "Default"] {
                if let Some(n) = state[key].as_str() {
                    nexts.push(n.into());
                }
            }
            for list in ["Choices", "Catch"] {
                for item in state[list].as_array().into_iter().flatten() {
                    nexts.push(item["Next"].as_str().unwrap().into());
                }
            }
            todo.extend(nexts);
        }
        let all: BTreeSet<String> = states.keys().cloned().collect();
        assert_eq!(reachable, all);
    }

    #[test]
    fn each_stage_is_a_task_in_order_with_retry_and_catch() {
        let states = states();
        let mut name = Stage::Validate.as_str().to_string();
        let mut seen = Vec::new();
        while let Some(state) = states.get(&name) {
            if state["Type"] == "Task" {
                let stage = state["Parameters"]["Payload"]["stage"].as_str().unwrap();
                seen.push(stage.to_string());
                let retried: Vec<&str> = state["Retry"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .flat_map(|r| {
                        r["ErrorEquals"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|e| e.as_str().unwrap())
                    })
                    .collect();
                assert!(retried.contains(&"Lakeops.Retryable"));
                assert!(retried.contains(&"Lakeops.CredentialValidation"));
                assert!(
                    !retried.contains(&"Lakeops.Terminal")
                        && !retried.contains(&"Lakeops.InvalidInput")
                );
                assert_eq!(state["Catch"][0]["ErrorEquals"], json!(["States.ALL"]));
                let failed = &states[state["Catch"][0]["Next"].as_str().unwrap()];
                assert_eq!(failed["Parameters"]["stage"], json!(stage));
            }
            match state["Next"].as_str().or(state["Default"].as_str()) {
                Some(next) => name = next.to_string(),
                None => break,
            }
        }
        let expected: Vec<String> = APPLY_ORDER.iter().map(|s| s.as_str().to_string()).collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn the_workspace_wait_loops_in_step_functions() {
        let states = states();
        let check = &states["workspace_ready?"];
        assert_eq!(
            check["Choices"][0]["Next"],
            json!("Wait for workspace_ready")
        );
        assert_eq!(
            states["Wait for workspace_ready"]["Next"],
            json!("workspace_ready")
        );
        assert_eq!(
            states["Wait for workspace_ready"]["SecondsPath"],
            json!("$.wait_seconds")
        );
    }

    #[test]
    fn destroy_runs_in_reverse() {
        let states = states();
        assert_eq!(states["destroy validate"]["Next"], json!("destroy extras"));
        assert_eq!(states["destroy credentials"]["Next"], json!("Destroyed"));
        assert_eq!(
            states["destroy credentials"]["Parameters"]["Payload"]["stage"],
            json!("credentials")
        );
    }
}
