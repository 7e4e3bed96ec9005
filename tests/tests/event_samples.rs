//! The AWS-originated samples in events/ (see events/SOURCES.md) against
//! template.yaml and the functions' entry types: each EventBridge rule
//! pattern matches the samples it is for and not the others, each schedule's
//! input is its sample byte for byte, every AWS-originated sample names the
//! AWS page it follows, and each parses through its function's real entry
//! type. Static: nothing here needs a server (moto runs no EventBridge rules
//! and no schedules, so only such a test catches a rule that AWS never fires).

use lakeops_tests::event_pattern::matches;
use lakeops_tests::repo_root;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// An EventBridge rule of the template (`Resource.Event` for SAM events, the
/// resource id for `AWS::Events::Rule`) and the samples it is for.
struct Rule {
    id: &'static str,
    matches: &'static [&'static str],
    not: &'static [&'static str],
}

const RULES: &[Rule] = &[Rule {
    id: "LakeGrantsFunction.GlueTableCreated",
    matches: &["lake-grants-aws-glue-create-table.json"],
    not: &[
        "lake-grants-aws-glue-batch-create-partition.json",
        "lake-grants-aws-eventbridge-scheduled-event.json",
    ],
}];

/// Schedules (SAM `ScheduleV2` events, `AWS::Scheduler::Schedule`) and the
/// sample that is their input.
const SCHEDULES: &[(&str, &str)] = &[
    (
        "LakeGrantsFunction.DailyDriftRepair",
        "lake-grants-aws-scheduler-daily.json",
    ),
    (
        "NetworkSleepSchedule",
        "network-sleep-aws-scheduler-sleep.json",
    ),
    (
        "NetworkWakeSchedule",
        "network-sleep-aws-scheduler-wake.json",
    ),
    ("DrSyncSchedule", "dr-sync-aws-scheduler-apply.json"),
];

/// catalog-ingest's own sample-data events (our buckets, keys and sizes),
/// each in the structure of the documented S3-through-SQS sample.
const SHAPED_LIKE_THE_S3_SAMPLE: &[&str] = &[
    "catalog-ingest-batch.json",
    "catalog-ingest-csv-gzip.json",
    "catalog-ingest-csv.json",
    "catalog-ingest-emergency.json",
    "catalog-ingest-jsonl.json",
    "catalog-ingest-parquet.json",
    "catalog-ingest-removal.json",
    "catalog-ingest-tsv.json",
];
const S3_THROUGH_SQS_SAMPLE: &str = "catalog-ingest-s3-put-and-delete.json";

/// The shape lake-grants once expected, which AWS never sends.
fn invented_glue_event() -> Value {
    json!({
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "Glue Data Catalog Table State Change",
        "source": "aws.glue",
        "account": "123456789012",
        "time": "2026-11-21T12:00:00Z",
        "region": "eu-west-1",
        "resources": ["arn:aws:glue:eu-west-1:123456789012:table/curated/sales_2027"],
        "detail": {"databaseName": "curated", "typeOfChange": "CreateTable", "tableName": "sales_2027"}
    })
}

// ---------------------------------------------------------------------------
// template.yaml, with CloudFormation's short-form tags as their long forms.
// ---------------------------------------------------------------------------

fn yaml_to_json(value: serde_norway::Value) -> Value {
    use serde_norway::Value as Y;
    match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => n
            .as_u64()
            .map(Value::from)
            .or_else(|| n.as_i64().map(Value::from))
            .unwrap_or_else(|| Value::from(n.as_f64().unwrap_or_default())),
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(yaml_to_json).collect()),
        Y::Mapping(mapping) => Value::Object(
            mapping
                .into_iter()
                .map(|(k, v)| {
                    let key = match k {
                        Y::String(s) => s,
                        other => serde_norway::to_string(&other).unwrap().trim().to_string(),
                    };
                    (key, yaml_to_json(v))
                })
                .collect(),
        ),
        Y::Tagged(tagged) => {
            let name = tagged.tag.to_string().trim_start_matches('!').to_string();
            let inner = yaml_to_json(tagged.value);
            let (key, inner) = match name.as_str() {
                "Ref" | "Condition" => (name, inner),
                // `!GetAtt A.B` is `Fn::GetAtt: [A, B]`.
                "GetAtt" => match inner {
                    Value::String(s) => {
                        let (resource, attribute) = s.split_once('.').unwrap_or((s.as_str(), ""));
                        ("Fn::GetAtt".into(), json!([resource, attribute]))
                    }
                    other => ("Fn::GetAtt".into(), other),
                },
                _ => (format!("Fn::{name}"), inner),
            };
            Value::Object(Map::from_iter([(key, inner)]))
        }
    }
}

fn load_template(text: &str) -> Value {
    yaml_to_json(serde_norway::from_str(text).expect("template.yaml is YAML"))
}

fn template() -> Value {
    load_template(&std::fs::read_to_string(repo_root().join("template.yaml")).unwrap())
}

fn resources(template: &Value) -> &Map<String, Value> {
    template["Resources"].as_object().expect("Resources")
}

/// SAM events of every resource, as (`Resource.Event`, type, properties).
fn sam_events(template: &Value) -> Vec<(String, String, Value)> {
    let mut events = Vec::new();
    for (id, resource) in resources(template) {
        for (name, event) in resource["Properties"]["Events"]
            .as_object()
            .into_iter()
            .flatten()
        {
            let kind = event["Type"].as_str().unwrap_or_default().to_string();
            events.push((format!("{id}.{name}"), kind, event["Properties"].clone()));
        }
    }
    events
}

fn has_intrinsic(value: &Value) -> bool {
    match value {
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| k == "Ref" || k.starts_with("Fn::") || has_intrinsic(v)),
        Value::Array(items) => items.iter().any(has_intrinsic),
        _ => false,
    }
}

/// Every EventBridge rule pattern of the template, by id.
fn rule_patterns(template: &Value) -> BTreeMap<String, Value> {
    let mut patterns = BTreeMap::new();
    for (id, kind, properties) in sam_events(template) {
        match kind.as_str() {
            "CloudWatchEvent" | "EventBridgeRule" => {
                patterns.insert(id, properties["Pattern"].clone());
            }
            "Schedule" => {
                panic!("{id}: a classic schedule rule; map it to its sample in this test")
            }
            _ => {}
        }
    }
    for (id, resource) in resources(template) {
        if resource["Type"] != "AWS::Events::Rule" {
            continue;
        }
        let properties = &resource["Properties"];
        assert!(
            properties.get("ScheduleExpression").is_none(),
            "{id}: a classic schedule rule; map it to its sample in this test"
        );
        let pattern = match &properties["EventPattern"] {
            Value::String(text) => serde_json::from_str(text).expect("EventPattern is JSON"),
            other => other.clone(),
        };
        patterns.insert(id.clone(), pattern);
    }
    for (id, pattern) in &patterns {
        assert!(
            !has_intrinsic(pattern),
            "{id}: resolve the intrinsic in its pattern here"
        );
    }
    patterns
}

/// Every schedule's input, by id.
fn schedule_inputs(template: &Value) -> BTreeMap<String, String> {
    let mut inputs = BTreeMap::new();
    for (id, kind, properties) in sam_events(template) {
        if kind == "ScheduleV2" {
            let input = properties["Input"]
                .as_str()
                .unwrap_or_else(|| panic!("{id}: Input is a string"));
            inputs.insert(id, input.to_string());
        }
    }
    for (id, resource) in resources(template) {
        if resource["Type"] == "AWS::Scheduler::Schedule" {
            let input = &resource["Properties"]["Target"]["Input"];
            let input = input
                .as_str()
                .unwrap_or_else(|| panic!("{id}: Target.Input is a string"));
            inputs.insert(id.clone(), input.to_string());
        }
    }
    inputs
}

// ---------------------------------------------------------------------------
// events/ and events/SOURCES.md.
// ---------------------------------------------------------------------------

fn sample_text(name: &str) -> String {
    std::fs::read_to_string(repo_root().join("events").join(name))
        .unwrap_or_else(|e| panic!("events/{name}: {e}"))
}

fn sample(name: &str) -> Value {
    serde_json::from_str(&sample_text(name)).unwrap_or_else(|e| panic!("events/{name}: {e}"))
}

/// SOURCES.md's table: file -> (AWS page, note).
fn sources() -> BTreeMap<String, (String, String)> {
    let text = sample_text("SOURCES.md");
    let mut rows = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
        assert_eq!(
            cells.len(),
            3,
            "SOURCES.md row {line:?}: file | AWS page | note"
        );
        let file = cells[0].trim_matches('`').to_string();
        let previous = rows.insert(file.clone(), (cells[1].to_string(), cells[2].to_string()));
        assert!(previous.is_none(), "SOURCES.md lists {file} twice");
    }
    rows
}

fn sample_files() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo_root().join("events"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    names
}

/// What AWS sends: an EventBridge event from an AWS source, SQS or S3
/// records, a Secrets Manager rotation request, S3's test event.
fn looks_aws_originated(value: &Value) -> bool {
    let text = |key: &str| value.get(key).and_then(Value::as_str);
    let records = value["Records"].as_array().is_some_and(|records| {
        records
            .iter()
            .any(|r| r.get("eventSource").is_some() || r.get("EventSource").is_some())
    });
    (text("source").is_some_and(|s| s.starts_with("aws.")) && value.get("detail-type").is_some())
        || records
        || (value.get("Step").is_some() && value.get("SecretId").is_some())
        || text("Event") == Some("s3:TestEvent")
}

// ---------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------

#[test]
fn every_rule_pattern_matches_its_samples_and_not_the_others() {
    let patterns = rule_patterns(&template());
    let mapped: Vec<&str> = RULES.iter().map(|r| r.id).collect();
    assert_eq!(
        patterns.keys().map(String::as_str).collect::<Vec<_>>(),
        mapped,
        "every EventBridge rule of template.yaml, and only those, is mapped to its samples here"
    );
    for rule in RULES {
        let pattern = &patterns[rule.id];
        for name in rule.matches {
            assert!(
                matches(pattern, &sample(name)).unwrap(),
                "{}: {pattern} does not match events/{name}",
                rule.id
            );
        }
        for name in rule.not {
            assert!(
                !matches(pattern, &sample(name)).unwrap(),
                "{}: {pattern} matches events/{name}, which it is not for",
                rule.id
            );
        }
    }
}

#[test]
fn the_glue_rule_does_not_match_the_invented_shape() {
    let patterns = rule_patterns(&template());
    let pattern = &patterns["LakeGrantsFunction.GlueTableCreated"];
    assert!(
        !matches(pattern, &invented_glue_event()).unwrap(),
        "{pattern}"
    );
    // Nor a dropped table, which the function would only ignore.
    let mut dropped = sample("lake-grants-aws-glue-create-table.json");
    dropped["detail"]["typeOfChange"] = json!("DeleteTable");
    assert!(!matches(pattern, &dropped).unwrap(), "{pattern}");
}

#[test]
fn every_schedule_input_is_its_sample_byte_for_byte() {
    let inputs = schedule_inputs(&template());
    let mapped: Vec<&str> = SCHEDULES.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        inputs.keys().map(String::as_str).collect::<Vec<_>>(),
        {
            let mut sorted = mapped.clone();
            sorted.sort();
            sorted
        },
        "every schedule of template.yaml, and only those, is mapped to its sample here"
    );
    for (id, name) in SCHEDULES {
        let text = sample_text(name);
        assert_eq!(
            text.strip_suffix('\n').unwrap_or(&text),
            inputs[*id],
            "{id}: EventBridge Scheduler delivers the Input verbatim; events/{name} must be it"
        );
        // Templated Lambda and Step Functions targets need well-formed JSON.
        assert!(sample(name).is_object(), "{id}: the input is a JSON object");
        assert!(
            !text.contains("<aws.scheduler."),
            "{id}: context attributes would be substituted"
        );
    }
}

#[test]
fn every_aws_originated_sample_names_its_aws_page() {
    let sources = sources();
    for (file, (page, note)) in &sources {
        assert!(
            repo_root().join("events").join(file).is_file(),
            "SOURCES.md lists {file}, which is not in events/"
        );
        assert!(
            page.contains("https://docs.aws.amazon.com/"),
            "{file}: {page}"
        );
        assert!(!note.is_empty(), "{file}: say what was substituted");
    }
    for name in sample_files() {
        let aws = name.contains("-aws-") || looks_aws_originated(&sample(&name));
        if aws {
            assert!(
                sources.contains_key(&name),
                "events/{name} is AWS-originated: list its AWS page in events/SOURCES.md"
            );
        }
    }
    let used = RULES
        .iter()
        .flat_map(|r| r.matches.iter().chain(r.not))
        .chain(SCHEDULES.iter().map(|(_, name)| name));
    for name in used {
        assert!(
            sources.contains_key(*name),
            "{name} is used as an AWS sample: list it in SOURCES.md"
        );
    }
}

/// Every leaf path of an SQS event of S3 notifications: the SQS record's
/// fields and, parsed from its body, the S3 records' fields.
fn s3_through_sqs_paths(event: &Value) -> BTreeSet<String> {
    fn leaves(value: &Value, path: String, out: &mut BTreeSet<String>) {
        match value {
            Value::Object(map) => {
                for (key, v) in map {
                    leaves(v, format!("{path}/{key}"), out);
                }
            }
            Value::Array(items) => {
                for v in items {
                    leaves(v, format!("{path}[]"), out);
                }
            }
            _ => {
                out.insert(path);
            }
        }
    }
    let mut out = BTreeSet::new();
    for record in event["Records"].as_array().expect("Records") {
        let mut sqs = record.clone();
        let body = sqs
            .as_object_mut()
            .and_then(|m| m.remove("body"))
            .expect("an SQS record has a body");
        leaves(&sqs, "sqs".into(), &mut out);
        let body: Value = serde_json::from_str(body.as_str().expect("body is a string"))
            .expect("the body is an S3 notification");
        leaves(&body, "s3".into(), &mut out);
    }
    out
}

#[test]
fn our_catalog_ingest_samples_have_only_documented_fields() {
    let documented = s3_through_sqs_paths(&sample(S3_THROUGH_SQS_SAMPLE));
    for name in SHAPED_LIKE_THE_S3_SAMPLE {
        let extra: Vec<_> = s3_through_sqs_paths(&sample(name))
            .difference(&documented)
            .cloned()
            .collect();
        assert!(
            extra.is_empty(),
            "events/{name} has fields the documented sample has not: {extra:?}"
        );
    }
    // The check can fail: an invented field is caught.
    let mut invented = sample(SHAPED_LIKE_THE_S3_SAMPLE[0]);
    invented["Records"][0]["bucketName"] = json!("x");
    assert!(!s3_through_sqs_paths(&invented).is_subset(&documented));
}

#[test]
fn the_rotation_requests_parse_as_rotation_events() {
    use rotate_credentials::steps::{RotationEvent, Step};
    let mut seen = 0;
    for name in sample_files()
        .iter()
        .filter(|n| n.starts_with("rotate-credentials-"))
    {
        let value = sample(name);
        let event = RotationEvent::from_json(&value).unwrap_or_else(|p| panic!("{name}: {p}"));
        let step = name.trim_end_matches(".json").rsplit('-').next().unwrap();
        assert_eq!(Some(event.step), Step::parse(step), "{name}");
        assert_eq!(event.secret_id, value["SecretId"].as_str().unwrap());
        assert!(
            event.secret_id.starts_with("arn:aws:secretsmanager:"),
            "{name}"
        );
        assert_eq!(
            event.client_request_token,
            value["ClientRequestToken"].as_str().unwrap()
        );
        assert!(
            value["RotationToken"].is_string(),
            "{name}: the documented request has RotationToken"
        );
        seen += 1;
    }
    assert_eq!(seen, 12, "four steps of three kinds of secret");
}

#[test]
fn the_schedule_inputs_parse_as_network_sleep_requests() {
    use network_sleep::event::{Action, Request};
    for (name, action) in [
        ("network-sleep-aws-scheduler-sleep.json", Action::Sleep),
        ("network-sleep-aws-scheduler-wake.json", Action::Wake),
    ] {
        let request = Request::parse(sample(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(request.action, action, "{name}");
        assert!(
            !request.force && request.continuation_of.is_none(),
            "{name}"
        );
    }
}

#[test]
fn the_lake_grants_samples_parse_as_lake_grants_events() {
    use lake_grants::event::{parse_event, Mode, Parsed};
    let policy = Some("s3://lakeops-dev-config/lake-grants/policy.yaml");
    for name in sample_files()
        .iter()
        .filter(|n| n.starts_with("lake-grants-aws-"))
    {
        let parsed = parse_event(&sample(name), policy).unwrap_or_else(|e| panic!("{name}: {e}"));
        match (name.as_str(), parsed) {
            ("lake-grants-aws-glue-batch-create-partition.json", Parsed::Ignored(_)) => {}
            ("lake-grants-aws-glue-create-table.json", Parsed::Run(request)) => {
                assert_eq!(request.new_tables.unwrap().tables, ["sales_2027"]);
            }
            (_, Parsed::Run(request)) => {
                assert_eq!(
                    (request.mode, request.trigger.as_str()),
                    (Mode::Apply, "schedule"),
                    "{name}"
                );
            }
            (_, other) => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn the_template_loader_reads_short_form_tags() {
    let template = load_template(
        "Resources:\n  R:\n    Properties:\n      A: !Sub arn:${AWS::Partition}:x\n      B: !GetAtt Queue.Arn\n      C: !Ref Param\n      D: [!Ref X, 2, true]\n",
    );
    let properties = &template["Resources"]["R"]["Properties"];
    assert_eq!(
        properties["A"],
        json!({"Fn::Sub": "arn:${AWS::Partition}:x"})
    );
    assert_eq!(properties["B"], json!({"Fn::GetAtt": ["Queue", "Arn"]}));
    assert_eq!(properties["C"], json!({"Ref": "Param"}));
    assert_eq!(properties["D"], json!([{"Ref": "X"}, 2, true]));
    assert!(has_intrinsic(properties));
    assert!(!has_intrinsic(&json!({"source": ["aws.glue"]})));
}

/// The schedules start the network-sleep state machine; its first pass
/// invokes the function with the execution input unchanged, so the
/// schedule's input is what the function parses.
#[test]
fn the_state_machine_passes_the_schedule_input_to_the_function() {
    let text =
        std::fs::read_to_string(repo_root().join("statemachines/network-sleep.asl.json")).unwrap();
    let asl: Value = serde_json::from_str(&text).unwrap();
    let start = &asl["States"][asl["StartAt"].as_str().unwrap()];
    assert_eq!(start["Type"], "Pass");
    assert_eq!(
        start["Parameters"]["request.$"], "$",
        "the whole input is kept"
    );
    assert_eq!(
        start["Parameters"]["continuation"],
        json!({}),
        "nothing is added on the first pass"
    );
    let run = &asl["States"][start["Next"].as_str().unwrap()];
    assert_eq!(
        run["Parameters"]["Payload.$"],
        "States.JsonMerge($.request, $.continuation, false)"
    );
}
