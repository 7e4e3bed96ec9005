//! The local stack end to end: template.yaml deployed into moto, real
//! functions run by cargo lambda watch, reached through every path AWS uses.

use aws_sdk_sfn::types::ExecutionStatus;
use lakeops_tests::{repo_root, venv, LocalStack};
use serde_json::{json, Value};
use std::process::Command;
use std::time::{Duration, Instant};

/// The sample lake spec with this stack's bucket names.
fn lake_spec(stack: &LocalStack) -> Value {
    let text = std::fs::read_to_string(repo_root().join("events/lake-spec.json")).unwrap();
    let mut spec: Value = serde_json::from_str(&text).unwrap();
    for layer in spec["layers"].as_array_mut().unwrap() {
        let logical = match layer["name"].as_str().unwrap() {
            "raw" => "RawBucket",
            "schematized" => "SchematizedBucket",
            "filtered" => "FilteredBucket",
            "emergency" => "EmergencyBucket",
            "curated" => "CuratedBucket",
            other => panic!("unexpected layer {other}"),
        };
        layer["bucket"] = json!(stack.resource(logical));
    }
    spec
}

async fn run_execution(
    sfn: &aws_sdk_sfn::Client,
    arn: &str,
    input: &Value,
) -> aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput {
    let started = sfn
        .start_execution()
        .state_machine_arn(arn)
        .input(input.to_string())
        .send()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let described = sfn
            .describe_execution()
            .execution_arn(started.execution_arn())
            .send()
            .await
            .unwrap();
        if described.status() != &ExecutionStatus::Running {
            return described;
        }
        assert!(
            Instant::now() < deadline,
            "execution still running after 300 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn every_invocation_path_reaches_the_real_functions() {
    let stack = LocalStack::start();
    let config = stack.sdk_config().await;
    let spec = lake_spec(&stack);

    // 1. Lambda Invoke on the AWS endpoint, by deployed name.
    let lambda = aws_sdk_lambda::Client::new(&config);
    let function = stack.resource("CatalogSetupFunction");
    assert_eq!(function, "lakeops-dev-catalog-setup");
    let response = lambda
        .invoke()
        .function_name(&function)
        .payload(aws_sdk_lambda::primitives::Blob::new(
            json!({"mode": "plan", "spec": spec}).to_string(),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.function_error(), None);
    let plan: Value = serde_json::from_slice(response.payload().unwrap().as_ref()).unwrap();
    assert_eq!(plan["mode"], "plan");
    let creates = plan["summary"]["create"].as_u64().unwrap();
    assert!(
        creates >= 5,
        "a plan on an empty account creates every layer database: {plan}"
    );

    // A function error comes back with the stable error name.
    let response = lambda
        .invoke()
        .function_name(&function)
        .payload(aws_sdk_lambda::primitives::Blob::new(
            json!({"mode": "apply", "spec": {"name": ""}}).to_string(),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.function_error(), Some("Unhandled"));
    let error: Value = serde_json::from_slice(response.payload().unwrap().as_ref()).unwrap();
    assert_eq!(error["errorType"], "Lakeops.InvalidInput", "{error}");

    // 2. A Step Functions execution (moto's ASL interpreter) invokes the real
    // function and carries its output.
    let sfn = aws_sdk_sfn::Client::new(&config);
    let machine = stack.resource("LakeSetupStateMachine");
    let done = run_execution(
        &sfn,
        &machine,
        &json!({"catalog": {"mode": "apply", "spec": spec}}),
    )
    .await;
    assert_eq!(
        done.status(),
        &ExecutionStatus::Succeeded,
        "{:?} {:?}",
        done.error(),
        done.cause()
    );
    let output: Value = serde_json::from_str(done.output().unwrap()).unwrap();
    assert_eq!(
        output["catalog"]["summary"]["create"].as_u64(),
        Some(creates),
        "{output}"
    );
    let glue = aws_sdk_glue::Client::new(&config);
    glue.get_database()
        .name("lakeops_dev_raw")
        .send()
        .await
        .expect("the execution created the raw database");

    // Converged: the same execution again changes nothing.
    let again = run_execution(
        &sfn,
        &machine,
        &json!({"catalog": {"mode": "apply", "spec": spec}}),
    )
    .await;
    let output: Value = serde_json::from_str(again.output().unwrap()).unwrap();
    assert_eq!(output["catalog"]["summary"]["create"], 0, "{output}");

    // A terminal error is caught into a failed execution naming the cause.
    let failed = run_execution(
        &sfn,
        &machine,
        &json!({"catalog": {"mode": "apply", "spec": {"name": ""}}}),
    )
    .await;
    assert_eq!(failed.status(), &ExecutionStatus::Failed);
    assert_eq!(failed.error(), Some("Lakeops.CatalogSetupFailed"));
    assert!(
        failed.cause().unwrap_or_default().contains("layers"),
        "{:?}",
        failed.cause()
    );

    // 3. `cargo lambda invoke`, straight to cargo lambda watch.
    let port = stack.lambda_url.rsplit(':').next().unwrap().to_string();
    let output = Command::new(venv().join("bin").join("cargo-lambda"))
        .args([
            "lambda",
            "invoke",
            "--invoke-address",
            "127.0.0.1",
            "--invoke-port",
            &port,
            "catalog-setup",
            "--data-ascii",
        ])
        .arg(json!({"mode": "plan", "spec": spec}).to_string())
        .output()
        .expect("cargo lambda invoke");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let plan: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(plan["summary"]["create"], 0, "{plan}");

    // 4. S3 notification -> the raw bucket's events topic -> SQS (raw
    // delivery) -> event-source mapping -> catalog-ingest, which reads the
    // lake spec from the config bucket at init.
    let s3 = lakeops_shared::aws::s3(&config);
    s3.put_object()
        .bucket(stack.resource("ConfigBucket"))
        .key("lake/spec.json")
        .body(spec.to_string().into_bytes().into())
        .send()
        .await
        .unwrap();
    let raw = stack.resource("RawBucket");
    s3.put_object()
        .bucket(&raw)
        .key("weather station/date=2026-11-21/readings+1.csv")
        .body(b"station,temperature\nnorth,12.5\n".to_vec().into())
        .send()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    let table = loop {
        if let Ok(found) = glue
            .get_table()
            .database_name("lakeops_dev_raw")
            .name("weather_station")
            .send()
            .await
        {
            break found.table.unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "the dropped file was not catalogued within 90 s:\n{}",
            stack.lambda_logs()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let columns: Vec<&str> = table
        .storage_descriptor()
        .unwrap()
        .columns()
        .iter()
        .map(|c| c.name())
        .collect();
    assert_eq!(columns, ["station", "temperature"]);
    let partitions = glue
        .get_partitions()
        .database_name("lakeops_dev_raw")
        .table_name("weather_station")
        .send()
        .await
        .unwrap();
    assert_eq!(partitions.partitions().len(), 1);

    // 5. The same topic feeds the raw layer's crawler event queue (the lake
    // spec's crawler.event_queue_arn): the S3 notification itself, not an SNS
    // envelope, as the crawler's S3 event mode reads it.
    let sqs = aws_sdk_sqs::Client::new(&config);
    let queue = sqs
        .get_queue_url()
        .queue_name("lakeops-dev-raw-crawler-events")
        .send()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let record = 'found: loop {
        let received = sqs
            .receive_message()
            .queue_url(queue.queue_url().unwrap())
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for message in received.messages() {
            let body: Value = serde_json::from_str(message.body().unwrap()).unwrap();
            assert_eq!(body.get("Type"), None, "an SNS envelope: {body}");
            // The s3:TestEvent S3 sends when the notification is configured has no Records.
            if let Some(record) = body["Records"].get(0) {
                break 'found record.clone();
            }
        }
        assert!(
            Instant::now() < deadline,
            "no S3 event reached the raw crawler event queue within 30 s"
        );
    };
    assert_eq!(record["eventSource"], "aws:s3");
    assert_eq!(record["s3"]["bucket"]["name"], raw.as_str());
    assert!(
        record["eventName"]
            .as_str()
            .unwrap()
            .starts_with("ObjectCreated:"),
        "{record}"
    );

    // Every bucket carries its TLS-only policy (stored by moto, not enforced).
    let policy = s3.get_bucket_policy().bucket(&raw).send().await.unwrap();
    let policy: Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    assert_eq!(
        policy["Statement"][0]["Condition"],
        json!({"Bool": {"aws:SecureTransport": "false"}})
    );
}
