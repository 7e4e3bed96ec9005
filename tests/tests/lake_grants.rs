//! lake-grants against moto: the handler runs in-process with real SDK
//! clients, as an assumed role, against moto's Lake Formation, Glue, STS and S3.
//!
//! moto 5.2.5 limits what these tests can show (see the function's README):
//! batch grants ignore `PermissionsWithGrantOption`, `GetResourceLFTags` fails
//! for a resource that never had a tag (so LF-tag assignments are covered by
//! unit tests only), and grants are never refused (so an unknown principal is
//! covered by unit tests only).

use aws_sdk_glue::types::{Column, DatabaseInput, SerDeInfo, StorageDescriptor, TableInput};
use aws_sdk_lakeformation::types as lf;
use lake_grants::{handle, AwsLake, Config};
use lakeops_shared::retry::RetryPolicy;
use lakeops_shared::ErrorKind;
use lakeops_tests::Moto;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

const ACCOUNT: &str = "123456789012";
const ETL: &str = "arn:aws:iam::123456789012:role/etl";
const ANALYST: &str = "arn:aws:iam::123456789012:role/analyst";
const REPORTING: &str = "arn:aws:iam::123456789012:role/reporting";
const OUTSIDER: &str = "arn:aws:iam::123456789012:role/outsider";
const PLATFORM_ADMIN: &str = "arn:aws:iam::123456789012:role/platform-admin";
const RUNNER: &str = "arn:aws:iam::123456789012:role/lake-grants";

struct Lab {
    _moto: Moto,
    /// Clients with moto's default identity: the "human" setting things up.
    admin: aws_config::SdkConfig,
    /// The function's own identity: an assumed-role session of `lake-grants`.
    runner: aws_config::SdkConfig,
}

impl Lab {
    async fn start() -> Self {
        let moto = Moto::start();
        let admin = moto.sdk_config().await;
        let iam = lakeops_shared::aws::iam(&admin);
        iam.create_role()
            .role_name("lake-grants")
            .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#)
            .send()
            .await
            .unwrap();
        let session = lakeops_shared::aws::sts(&admin)
            .assume_role()
            .role_arn(RUNNER)
            .role_session_name("lake-grants-fn")
            .send()
            .await
            .unwrap();
        let creds = session.credentials.unwrap();
        let runner = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(moto.url())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sts::config::Credentials::new(
                creds.access_key_id,
                creds.secret_access_key,
                Some(creds.session_token),
                None,
                "assumed-role",
            ))
            .load()
            .await;
        let lab = Lab {
            _moto: moto,
            admin,
            runner,
        };
        lab.seed().await;
        lab
    }

    fn lf(&self) -> aws_sdk_lakeformation::Client {
        lakeops_shared::aws::lakeformation(&self.admin)
    }

    fn glue(&self) -> aws_sdk_glue::Client {
        lakeops_shared::aws::glue(&self.admin)
    }

    fn config(&self, policy_uri: Option<&str>) -> Config {
        Config {
            default_policy_uri: policy_uri.map(String::from),
            retry: RetryPolicy::immediate(3),
        }
    }

    async fn run(&self, event: Value, policy_uri: Option<&str>) -> lakeops_shared::Result<Value> {
        let lake = AwsLake::new(&self.runner);
        handle(&lake, &self.config(policy_uri), event).await
    }

    /// What provisioning and catalog setup leave behind: the runner is a data
    /// lake admin, settings have fields this policy does not manage, and two
    /// databases with a table each.
    async fn seed(&self) {
        let settings = lf::DataLakeSettings::builder()
            .data_lake_admins(principal(RUNNER))
            .trusted_resource_owners("210987654321")
            .create_database_default_permissions(iam_allowed_all())
            .create_table_default_permissions(iam_allowed_all())
            .build();
        self.lf()
            .put_data_lake_settings()
            .data_lake_settings(settings)
            .send()
            .await
            .unwrap();
        for database in ["raw", "curated"] {
            self.glue()
                .create_database()
                .database_input(DatabaseInput::builder().name(database).build().unwrap())
                .send()
                .await
                .unwrap();
        }
        self.create_table("raw", "events").await;
        self.create_table("curated", "orders").await;
    }

    /// A table as catalog-ingest registers one: an external Parquet table with
    /// its columns, location and partition keys.
    async fn create_table(&self, database: &str, name: &str) {
        let columns = ["id", "amount", "payload"]
            .map(|c| Column::builder().name(c).r#type("string").build().unwrap());
        self.glue()
            .create_table()
            .database_name(database)
            .table_input(
                TableInput::builder()
                    .name(name)
                    .table_type("EXTERNAL_TABLE")
                    .parameters("classification", "parquet")
                    .partition_keys(Column::builder().name("dt").r#type("string").build().unwrap())
                    .storage_descriptor(
                        StorageDescriptor::builder()
                            .set_columns(Some(columns.to_vec()))
                            .location(format!("s3://lake-{database}/{name}/"))
                            .input_format("org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat")
                            .output_format("org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat")
                            .serde_info(
                                SerDeInfo::builder()
                                    .serialization_library("org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe")
                                    .build(),
                            )
                            .build(),
                    )
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    }

    /// A grant made by hand, the way a console user or old CloudFormation would.
    async fn grant_by_hand(&self, who: &str, resource: lf::Resource, permissions: &[&str]) {
        self.lf()
            .grant_permissions()
            .principal(principal(who))
            .resource(resource)
            .set_permissions(Some(
                permissions
                    .iter()
                    .map(|p| lf::Permission::from(*p))
                    .collect(),
            ))
            .send()
            .await
            .unwrap();
    }

    /// principal -> resource description -> permissions, as Lake Formation lists them.
    async fn permissions(&self) -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
        let listed = self.lf().list_permissions().send().await.unwrap();
        let mut out: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
        for entry in listed.principal_resource_permissions.unwrap_or_default() {
            let who = entry
                .principal
                .unwrap()
                .data_lake_principal_identifier
                .unwrap();
            let resource = lake_grants::lake::resource_from_sdk(&entry.resource.unwrap(), ACCOUNT)
                .unwrap()
                .to_string();
            let permissions: BTreeSet<String> = entry
                .permissions
                .unwrap_or_default()
                .iter()
                .map(|p| p.as_str().to_string())
                .collect();
            if !permissions.is_empty() {
                out.entry(who)
                    .or_default()
                    .entry(resource)
                    .or_default()
                    .extend(permissions);
            }
        }
        out
    }

    async fn settings(&self) -> lf::DataLakeSettings {
        self.lf()
            .get_data_lake_settings()
            .send()
            .await
            .unwrap()
            .data_lake_settings
            .unwrap()
    }
}

fn principal(id: &str) -> lf::DataLakePrincipal {
    lf::DataLakePrincipal::builder()
        .data_lake_principal_identifier(id)
        .build()
}

fn iam_allowed_all() -> lf::PrincipalPermissions {
    lf::PrincipalPermissions::builder()
        .principal(principal("IAM_ALLOWED_PRINCIPALS"))
        .permissions(lf::Permission::All)
        .build()
}

fn all_tables(database: &str) -> lf::Resource {
    lf::Resource::builder()
        .table(
            lf::TableResource::builder()
                .database_name(database)
                .table_wildcard(lf::TableWildcard::builder().build())
                .build()
                .unwrap(),
        )
        .build()
}

fn table(database: &str, name: &str) -> lf::Resource {
    lf::Resource::builder()
        .table(
            lf::TableResource::builder()
                .database_name(database)
                .name(name)
                .build()
                .unwrap(),
        )
        .build()
}

fn database(name: &str) -> lf::Resource {
    lf::Resource::builder()
        .database(lf::DatabaseResource::builder().name(name).build().unwrap())
        .build()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn policy() -> Value {
    json!({
        "version": 1,
        "admins": [PLATFORM_ADMIN],
        "lake_formation_only": true,
        "data_locations": [{"location": "arn:aws:s3:::lake-raw/", "principals": [ETL]}],
        "lf_tags": {"tier": ["raw", "curated"]},
        "grants": [
            {"principal": ETL, "resource": {"table": {"database": "raw", "name": "*"}}, "permissions": ["ALL"]},
            {"principal": ETL, "resource": {"table": {"database": "curated", "name": "*"}}, "permissions": ["ALL"]},
            {"principal": ETL, "resource": {"database": "raw"}, "permissions": ["CREATE_TABLE", "DESCRIBE"]},
            {"principal": ETL, "resource": {"database": "curated"}, "permissions": ["CREATE_TABLE", "DESCRIBE"]},
            {"principal": ANALYST, "resource": {"table": {"database": "curated", "name": "*"}}, "permissions": ["SELECT"]},
            {"principal": ANALYST, "resource": {"lf_tag_policy": {"resource_type": "TABLE", "expression": {"tier": ["curated"]}}}, "permissions": ["SELECT", "DESCRIBE"]},
            {"principal": REPORTING, "resource": {"table": {"database": "curated", "name": "sales_*"}}, "permissions": ["SELECT"]}
        ]
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn etl_and_analyst_get_their_grants_and_drift_is_repaired() {
    let lab = Lab::start().await;
    // Before the first run: someone else's grant, and a hand-made extra on a
    // principal the policy manages.
    lab.grant_by_hand(OUTSIDER, all_tables("raw"), &["SELECT"])
        .await;
    lab.grant_by_hand(ANALYST, all_tables("raw"), &["SELECT"])
        .await;

    let plan = lab
        .run(json!({"mode": "plan", "policy": policy()}), None)
        .await
        .unwrap();
    assert_eq!(plan["applied"], false);
    assert_eq!(
        plan["drifted_grants"], 8,
        "7 grants to make, 1 to revoke: {plan:#}"
    );
    assert_eq!(
        plan["caller"], RUNNER,
        "the assumed-role session is known as its role"
    );
    assert_eq!(lab.permissions().await.len(), 2, "plan applies nothing");

    let report = lab
        .run(
            json!({"mode": "apply", "policy": policy(), "trigger": "provisioning"}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(report["applied"], true, "{report:#}");
    let rows: Vec<lake_grants::handler::PermissionRow> =
        serde_json::from_value(report["permissions"].clone()).unwrap();
    eprintln!("{}", lake_grants::handler::render_table(&rows));

    let held = lab.permissions().await;
    assert_eq!(held[ETL]["table raw.*"], set(&["ALL"]));
    assert_eq!(held[ETL]["table curated.*"], set(&["ALL"]));
    assert_eq!(
        held[ETL]["location arn:aws:s3:::lake-raw"],
        set(&["DATA_LOCATION_ACCESS"])
    );
    assert_eq!(
        held[ANALYST].keys().cloned().collect::<Vec<_>>(),
        vec![
            "lf-tag-policy TABLE [tier=curated]".to_string(),
            "table curated.*".to_string()
        ],
        "the analyst reads curated only: {held:#?}"
    );
    assert_eq!(held[ANALYST]["table curated.*"], set(&["SELECT"]));
    assert_eq!(
        held[OUTSIDER]["table raw.*"],
        set(&["SELECT"]),
        "unmanaged principals are left alone"
    );
    assert!(!held.contains_key(REPORTING), "no sales_* table exists yet");

    let settings = lab.settings().await;
    let admins: BTreeSet<String> = settings
        .data_lake_admins
        .iter()
        .flatten()
        .filter_map(|p| p.data_lake_principal_identifier.clone())
        .collect();
    assert_eq!(
        admins,
        set(&[PLATFORM_ADMIN, RUNNER]),
        "the policy's admins, and the runner kept"
    );
    assert_eq!(
        settings.trusted_resource_owners,
        Some(vec!["210987654321".to_string()]),
        "unmanaged field kept"
    );
    assert_eq!(settings.create_database_default_permissions, Some(vec![]));
    assert_eq!(settings.create_table_default_permissions, Some(vec![]));
    let tags = lab
        .lf()
        .list_lf_tags()
        .send()
        .await
        .unwrap()
        .lf_tags
        .unwrap();
    assert_eq!(tags[0].tag_key, "tier");
    let registered = lab
        .lf()
        .list_resources()
        .send()
        .await
        .unwrap()
        .resource_info_list
        .unwrap();
    assert_eq!(
        registered[0].resource_arn.as_deref(),
        Some("arn:aws:s3:::lake-raw")
    );

    // Converged: the next plan is empty.
    let again = lab
        .run(json!({"mode": "plan", "policy": policy()}), None)
        .await
        .unwrap();
    assert_eq!(again["drifted_grants"], 0, "{again:#}");
    assert_eq!(again["plan"]["grants"], json!([]));

    // Drift: hand-made grants on managed principals are revoked on the next
    // (scheduled) run, the outsider keeps theirs, and the admins stay.
    // (On its own resource: moto 5.2.5 cannot revoke from a grant it merged
    // with a second one, because it mutates a set member in place.)
    lab.grant_by_hand(ANALYST, table("curated", "orders"), &["INSERT"])
        .await;
    lab.grant_by_hand(ANALYST, database("raw"), &["DESCRIBE"])
        .await;
    lab.grant_by_hand(OUTSIDER, database("curated"), &["DESCRIBE"])
        .await;
    let repaired = lab
        .run(
            json!({"mode": "apply", "policy": policy(), "trigger": "schedule"}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(repaired["drifted_grants"], 2, "{repaired:#}");
    let held = lab.permissions().await;
    assert_eq!(held[ANALYST]["table curated.*"], set(&["SELECT"]));
    assert!(
        !held[ANALYST].contains_key("table curated.orders"),
        "{held:#?}"
    );
    assert!(!held[ANALYST].contains_key("database raw"));
    assert_eq!(held[OUTSIDER]["database curated"], set(&["DESCRIBE"]));
    let admins: BTreeSet<String> = lab
        .settings()
        .await
        .data_lake_admins
        .iter()
        .flatten()
        .filter_map(|p| p.data_lake_principal_identifier.clone())
        .collect();
    assert_eq!(
        admins,
        set(&[PLATFORM_ADMIN, RUNNER]),
        "admins preserved across runs"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_table_gets_its_grants_through_the_glue_event() {
    let lab = Lab::start().await;
    // The policy lives in S3, in YAML, as the deployed function reads it.
    let s3 = lakeops_shared::aws::s3(&lab.admin);
    s3.create_bucket()
        .bucket("lakeops-policies")
        .send()
        .await
        .unwrap();
    let yaml = serde_norway::to_string(&policy()).unwrap();
    assert!(
        !yaml.trim_start().starts_with('{'),
        "block-style YAML: {yaml}"
    );
    s3.put_object()
        .bucket("lakeops-policies")
        .key("lake-grants/policy.yaml")
        .body(yaml.into_bytes().into())
        .send()
        .await
        .unwrap();
    let uri = Some("s3://lakeops-policies/lake-grants/policy.yaml");
    lab.run(json!({"mode": "apply"}), uri).await.unwrap();

    // catalog-ingest registers new tables; EventBridge delivers Glue's event,
    // as documented (events/SOURCES.md), naming both.
    lab.create_table("curated", "sales_2027").await;
    lab.create_table("curated", "sales_2028").await;
    let sample = lakeops_tests::repo_root().join("events/lake-grants-aws-glue-create-table.json");
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(sample).unwrap()).unwrap();
    event["detail"]["changedTables"] = json!(["sales_2027", "sales_2028"]);
    let report = lab.run(event.clone(), uri).await.unwrap();
    assert_eq!(report["trigger"], "glue-table-created");
    assert_eq!(
        report["plan"]["grants"].as_array().unwrap().len(),
        2,
        "{report:#}"
    );

    let held = lab.permissions().await;
    for (i, table) in ["sales_2027", "sales_2028"].iter().enumerate() {
        assert_eq!(
            held[REPORTING][&format!("table curated.{table}")],
            set(&["SELECT"])
        );
        let new_table = &report["new_tables"][i];
        assert_eq!(new_table["table"], *table);
        let effective = &new_table["effective"];
        assert_eq!(effective[REPORTING]["permissions"], json!(["SELECT"]));
        assert_eq!(
            effective[ANALYST]["permissions"],
            json!(["SELECT"]),
            "through the curated wildcard"
        );
        assert_eq!(effective[ETL]["permissions"], json!(["ALL"]));
    }

    // A dropped table needs nothing.
    let mut dropped = event;
    dropped["detail"]["typeOfChange"] = json!("DeleteTable");
    let ignored = lab.run(dropped, uri).await.unwrap();
    assert!(ignored["ignored"].as_str().unwrap().contains("DeleteTable"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_policy_is_reported_and_nothing_is_applied() {
    let lab = Lab::start().await;
    let before = lab.permissions().await;
    let mut bad = policy();
    bad["grants"][0]["resource"] = json!({"table": {"database": "raw", "name": "no_such_table"}});
    let error = lab
        .run(json!({"mode": "apply", "policy": bad}), None)
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::InvalidInput);
    assert!(
        error
            .message
            .contains("grants[0].resource: table 'raw.no_such_table' does not exist"),
        "{error}"
    );

    let mut malformed = policy();
    malformed["grants"][1]["principal"] = json!("arn:aws:iam::etl");
    malformed["data_locations"][0]["location"] = json!("s3://lake-raw/");
    let error = lab
        .run(json!({"mode": "apply", "policy": malformed}), None)
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::InvalidInput);
    assert!(
        error
            .message
            .contains("grants[1].principal: 'arn:aws:iam::etl' is not a Lake Formation principal"),
        "{error}"
    );
    assert!(
        error.message.contains("data_locations[0].location"),
        "{error}"
    );

    assert_eq!(lab.permissions().await, before, "nothing applied");
    let settings = lab.settings().await;
    assert_eq!(
        settings.create_table_default_permissions,
        Some(vec![iam_allowed_all()]),
        "settings untouched"
    );
    assert!(lab
        .lf()
        .list_lf_tags()
        .send()
        .await
        .unwrap()
        .lf_tags
        .unwrap_or_default()
        .is_empty());
}
