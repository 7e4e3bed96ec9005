//! The planner against a two-sided fixture, with an in-memory secondary that applies
//! a plan's changes the way Databricks would, so that convergence is tested: after an
//! apply, the next plan is empty.

use std::collections::{BTreeMap, BTreeSet};

use crate::inventory::*;
use crate::mapping::FullName;
use crate::plan::{plan, Action, Plan, Side, Stage};
use crate::report::{reconcile, Status};
use crate::spec::{parse, DrSpec};

fn n(s: &str) -> FullName {
    FullName::parse(s).unwrap()
}

pub(crate) fn spec() -> DrSpec {
    let mut v = crate::spec::tests::sample();
    v["locations"] =
        serde_json::json!([{"primary": "s3://lake-use1/ext", "secondary": "s3://lake-usw2/ext"}]);
    parse(&v).unwrap()
}

fn col(name: &str, ty: &str) -> Column {
    Column {
        name: name.into(),
        type_text: ty.into(),
        comment: None,
    }
}

fn table(
    name: &str,
    table_type: TableType,
    format: Option<&str>,
    location: Option<&str>,
    version: i64,
) -> Table {
    Table {
        name: n(name),
        table_type,
        format: format.map(str::to_string),
        storage_location: location.map(str::to_string),
        columns: vec![col("id", "bigint"), col("email", "string")],
        comment: Some(format!("{name} table")),
        view_definition: None,
        view_dependencies: vec![],
        version: Some(version),
        cloned_source_version: None,
        commit_times: (0..=version).map(|v| (v, 1_000_000 + v * 1000)).collect(),
        row_count: Some(10),
    }
}

fn view(name: &str, definition: &str, deps: &[&str]) -> Table {
    Table {
        table_type: TableType::View,
        format: None,
        version: None,
        view_definition: Some(definition.into()),
        view_dependencies: deps.iter().map(|d| n(d)).collect(),
        commit_times: BTreeMap::new(),
        row_count: None,
        ..table(name, TableType::View, None, None, 0)
    }
}

pub(crate) fn primary() -> Inventory {
    let mut p = Inventory::default();
    p.sharing.global_metastore_id = "aws:us-east-1:p".into();
    p.storage_credentials.insert(
        "lake_cred".into(),
        StorageCredential {
            name: "lake_cred".into(),
            role_arn: "arn:aws:iam::123456789012:role/uc-use1".into(),
        },
    );
    p.external_locations.insert(
        "lake_ext".into(),
        ExternalLocation {
            name: "lake_ext".into(),
            url: "s3://lake-use1/ext".into(),
            credential_name: "lake_cred".into(),
        },
    );
    for c in ["main", "sales"] {
        p.catalogs.insert(
            c.into(),
            Catalog {
                name: c.into(),
                comment: None,
                catalog_type: "MANAGED_CATALOG".into(),
                storage_root: None,
            },
        );
    }
    for s in ["main.core", "sales.core", "sales.tmp_scratch"] {
        p.schemas.insert(
            s.into(),
            Schema {
                full_name: s.into(),
                comment: Some(format!("{s} schema")),
                storage_root: None,
            },
        );
    }
    let tables = [
        table(
            "main.core.orders",
            TableType::Managed,
            Some("DELTA"),
            None,
            3,
        ),
        table(
            "main.core.events",
            TableType::External,
            Some("DELTA"),
            Some("s3://lake-use1/ext/events"),
            7,
        ),
        table(
            "main.core.raw_csv",
            TableType::External,
            Some("CSV"),
            Some("s3://lake-use1/ext/raw"),
            0,
        ),
        table(
            "main.core.stream",
            TableType::StreamingTable,
            Some("DELTA"),
            None,
            2,
        ),
        table(
            "sales.core.fact",
            TableType::Managed,
            Some("DELTA"),
            None,
            5,
        ),
        table(
            "sales.tmp_scratch.t",
            TableType::Managed,
            Some("DELTA"),
            None,
            1,
        ),
        view(
            "main.core.v_orders",
            "SELECT * FROM main.core.orders",
            &["main.core.orders"],
        ),
        view(
            "sales.core.v_top",
            "SELECT * FROM sales.core.v_fact LIMIT 10",
            &["sales.core.v_fact"],
        ),
        view(
            "sales.core.v_fact",
            "SELECT f.* FROM sales.core.fact f",
            &["sales.core.fact"],
        ),
    ];
    for t in tables {
        p.tables.insert(t.name.clone(), t);
    }
    p.volumes.insert(
        n("main.core.landing"),
        Volume {
            name: n("main.core.landing"),
            volume_type: "EXTERNAL".into(),
            storage_location: Some("s3://lake-use1/ext/landing".into()),
            comment: None,
        },
    );
    p.volumes.insert(
        n("main.core.scratch"),
        Volume {
            name: n("main.core.scratch"),
            volume_type: "MANAGED".into(),
            storage_location: None,
            comment: None,
        },
    );
    p.functions.insert(
        n("sales.core.net"),
        Function {
            name: n("sales.core.net"),
            parameters: "x DOUBLE".into(),
            returns: "DOUBLE".into(),
            body: "x * (SELECT rate FROM sales.core.fact LIMIT 1)".into(),
            comment: None,
            unsupported: None,
        },
    );
    p.tags.insert(
        Securable::new("TABLE", "main.core.orders"),
        BTreeMap::from([("domain".into(), "orders".into())]),
    );
    p.tags.insert(
        Securable::new("COLUMN", "main.core.orders.email"),
        BTreeMap::from([("pii".into(), "true".into())]),
    );
    p.grants.insert(
        Securable::new("CATALOG", "main"),
        BTreeMap::from([("analysts".into(), BTreeSet::from(["USE_CATALOG".into()]))]),
    );
    p.grants.insert(
        Securable::new("TABLE", "main.core.orders"),
        BTreeMap::from([
            ("analysts".into(), BTreeSet::from(["SELECT".into()])),
            (
                "data-eng-use1".into(),
                BTreeSet::from(["MODIFY".into(), "SELECT".into()]),
            ),
        ]),
    );
    p
}

fn apply(spec: &DrSpec, primary: &mut Inventory, secondary: &mut Inventory, plan: &Plan) {
    for c in &plan.changes {
        crate::fakes::apply_change(spec, primary, secondary, c).unwrap();
    }
}

pub(crate) fn empty_secondary() -> Inventory {
    let mut s = Inventory::default();
    s.sharing.global_metastore_id = "aws:us-west-2:s".into();
    s
}

fn converged() -> (DrSpec, Inventory, Inventory) {
    let (s, mut p) = (spec(), primary());
    let mut secondary = empty_secondary();
    let first = plan(&s, &p, &secondary);
    apply(&s, &mut p, &mut secondary, &first);
    (s, p, secondary)
}

#[test]
fn a_first_sync_creates_everything_in_stage_order() {
    let (s, p) = (spec(), primary());
    let first = plan(&s, &p, &empty_secondary());
    let stages: Vec<Stage> = first.changes.iter().map(|c| c.stage).collect();
    let mut sorted = stages.clone();
    sorted.sort();
    assert_eq!(stages, sorted);
    let described: Vec<&str> = first
        .changes
        .iter()
        .map(|c| c.description.as_str())
        .collect();
    assert!(described.contains(&"deep clone main.core.orders into main.core.orders (missing), source version 3, target version none"), "{described:#?}");
    assert!(described.contains(
        &"create external table main.core.events over s3://lake-usw2/ext/events (missing)"
    ));
    assert!(described
        .contains(&"create external volume main.core.landing at s3://lake-usw2/ext/landing"));
    let clone = first
        .changes
        .iter()
        .find(|c| c.object == "sales_dr.core.fact")
        .unwrap();
    let Action::Clone { statement, .. } = &clone.action else {
        panic!()
    };
    assert_eq!(statement, "CREATE OR REPLACE TABLE `sales_dr`.`core`.`fact` DEEP CLONE `lakeops_dr_sales`.`core`.`fact`");
    // v_top reads v_fact: created after it; the excluded schema is not synced.
    let views: Vec<&str> = first
        .stage(Stage::Views)
        .map(|c| c.object.as_str())
        .collect();
    assert_eq!(
        views,
        [
            "main.core.v_orders",
            "sales_dr.core.v_fact",
            "sales_dr.core.v_top"
        ]
    );
    assert!(!first
        .changes
        .iter()
        .any(|c| c.object.contains("tmp_scratch")));
    let view = first
        .changes
        .iter()
        .find(|c| c.object == "sales_dr.core.v_fact")
        .unwrap();
    let Action::Statement { statement, schema } = &view.action else {
        panic!()
    };
    assert_eq!(statement, "CREATE OR REPLACE VIEW `sales_dr`.`core`.`v_fact` AS SELECT f.* FROM `sales_dr`.core.fact f");
    assert_eq!(schema.as_deref(), Some("sales_dr.core"));
    // Streaming tables and managed volumes are reported, not copied.
    let skipped: Vec<&str> = first.skipped.iter().map(|s| s.object.as_str()).collect();
    assert_eq!(skipped, ["main.core.stream", "main.core.scratch"]);
    assert!(first.skipped.iter().all(|s| !s.failed));
}

#[test]
fn sharing_is_set_up_by_the_sync_itself() {
    let (s, p) = (spec(), primary());
    let first = plan(&s, &p, &empty_secondary());
    let described: Vec<&str> = first
        .stage(Stage::Sharing)
        .map(|c| c.description.as_str())
        .collect();
    assert_eq!(
        described,
        [
            "create recipient lakeops_dr_usw2 on the primary for metastore aws:us-west-2:s",
            "create share lakeops_dr_main on the primary",
            "add schemas main.core to share lakeops_dr_main",
            "grant SELECT on share lakeops_dr_main to recipient lakeops_dr_usw2",
            "create share catalog lakeops_dr_main on the secondary from share lakeops_dr_main",
            "create share lakeops_dr_sales on the primary",
            "add schemas sales.core to share lakeops_dr_sales",
            "grant SELECT on share lakeops_dr_sales to recipient lakeops_dr_usw2",
            "create share catalog lakeops_dr_sales on the secondary from share lakeops_dr_sales",
        ]
    );
    let sides: Vec<Side> = first
        .stage(Stage::Sharing)
        .map(|c| c.action.side())
        .collect();
    assert_eq!(sides.iter().filter(|s| **s == Side::Secondary).count(), 2);
    // A schema created later on the primary is added to its share on the next run.
    let (s, mut p, secondary) = converged();
    p.schemas.insert(
        "main.ops".into(),
        Schema {
            full_name: "main.ops".into(),
            comment: None,
            storage_root: None,
        },
    );
    let next = plan(&s, &p, &secondary);
    let described: Vec<&str> = next
        .changes
        .iter()
        .map(|c| c.description.as_str())
        .collect();
    assert_eq!(
        described,
        [
            "create schema main.ops",
            "add schemas main.ops to share lakeops_dr_main"
        ]
    );
}

/// A catalog or schema with its own managed storage gets the mapped storage on the
/// secondary; one outside every mapping fails, with everything under it.
#[test]
fn managed_storage_roots_are_mapped() {
    let (s, mut p) = (spec(), primary());
    p.catalogs.get_mut("main").unwrap().storage_root = Some("s3://lake-use1/ext/main".into());
    p.schemas.get_mut("main.core").unwrap().storage_root =
        Some("s3://lake-use1/ext/main/core".into());
    p.catalogs.get_mut("sales").unwrap().storage_root = Some("s3://elsewhere/sales".into());
    let first = plan(&s, &p, &empty_secondary());
    let described: Vec<&str> = first
        .stage(Stage::Catalogs)
        .map(|c| c.description.as_str())
        .collect();
    assert_eq!(
        described,
        [
            "create catalog main with managed storage s3://lake-usw2/ext/main",
            "create schema main.core with managed storage s3://lake-usw2/ext/main/core",
        ]
    );
    let failed = first
        .skipped
        .iter()
        .find(|k| k.object == "sales_dr")
        .unwrap();
    assert!(
        failed.failed && failed.reason.contains("locations[]"),
        "{failed:?}"
    );
}

/// A schema in a share exposes all its tables: with table filters, only the tables
/// that are cloned are shared, and a schema shared whole before leaves the share.
#[test]
fn an_excluded_table_is_never_shared() {
    let (mut s, p, secondary) = converged();
    s.catalogs[0].exclude_tables = vec!["core.ord*".into()];
    let next = plan(&s, &p, &secondary);
    let updates: Vec<(&Vec<String>, &Vec<String>)> = next
        .stage(Stage::Sharing)
        .filter_map(|c| match &c.action {
            Action::UpdateShare { add, remove, .. } => Some((add, remove)),
            _ => None,
        })
        .collect();
    // main.core.events is an external Delta table: re-created over replicated
    // storage (external_tables: metadata), so not shared either.
    assert_eq!(
        updates,
        [(&Vec::<String>::new(), &vec!["main.core".to_string()])],
        "{:?}",
        next.changes
    );
    let described: Vec<&str> = next
        .stage(Stage::Sharing)
        .map(|c| c.description.as_str())
        .collect();
    assert_eq!(
        described,
        ["remove schemas main.core from share lakeops_dr_main (not synced as such)"]
    );

    // With clones of external Delta tables, the cloned table is shared by name.
    s.external_tables = crate::spec::ExternalTables::Clone;
    let next = plan(&s, &p, &secondary);
    let described: Vec<&str> = next
        .stage(Stage::Sharing)
        .map(|c| c.description.as_str())
        .collect();
    assert_eq!(
        described,
        ["add tables main.core.events to share lakeops_dr_main; remove schemas main.core from share lakeops_dr_main (not synced as such)"]
    );
}

#[test]
fn principals_are_mapped_in_grants() {
    let (s, p) = (spec(), primary());
    let first = plan(&s, &p, &empty_secondary());
    let grants = first
        .changes
        .iter()
        .find(|c| c.object == "main.core.orders" && c.kind == "grants")
        .unwrap();
    let Action::UpdateGrants { changes, .. } = &grants.action else {
        panic!()
    };
    let principals: Vec<&str> = changes.iter().map(|c| c.principal.as_str()).collect();
    assert_eq!(principals, ["analysts", "data-eng-usw2"]);
}

#[test]
fn a_rerun_after_apply_changes_nothing_and_reconciles_clean() {
    let (s, p, secondary) = converged();
    let again = plan(&s, &p, &secondary);
    assert!(again.is_empty(), "{:#?}", again.changes);
    let report = reconcile(&s, &p, &secondary, &BTreeMap::new(), 10_000_000);
    assert!(
        report.summary.clean,
        "{:#?}",
        report
            .lines
            .iter()
            .filter(|l| l.status != Status::Ok)
            .collect::<Vec<_>>()
    );
    assert_eq!(report.summary.replication_lag_seconds, 0);
    assert_eq!(report.summary.skipped, 2);
}

#[test]
fn only_the_changed_table_is_cloned_and_its_lag_is_measured() {
    let (s, mut p, secondary) = converged();
    let orders = p.tables.get_mut(&n("main.core.orders")).unwrap();
    orders.version = Some(4);
    orders.commit_times.insert(4, 9_000_000);
    let report = reconcile(&s, &p, &secondary, &BTreeMap::new(), 10_000_000);
    assert_eq!(report.summary.replication_lag_seconds, 1000);
    assert_eq!(report.summary.drifted, 1);
    assert!(!report.summary.clean);
    let next = plan(&s, &p, &secondary);
    let described: Vec<&str> = next
        .changes
        .iter()
        .map(|c| c.description.as_str())
        .collect();
    // DEEP CLONE does not copy the description: the re-cloned replica gets it again.
    assert_eq!(
        described,
        [
            "deep clone main.core.orders into main.core.orders (source changed), source version 4, target version 0",
            "comment of main.core.orders"
        ]
    );
}

#[test]
fn drift_on_the_secondary_is_repaired_but_the_sync_principal_keeps_its_grants() {
    let (s, mut p, mut secondary) = converged();
    let fact = secondary.tables.get_mut(&n("sales_dr.core.fact")).unwrap();
    fact.cloned_source_version = None; // someone wrote to the replica
    secondary
        .tags
        .get_mut(&Securable::new("COLUMN", "main.core.orders.email"))
        .unwrap()
        .insert("pii".into(), "false".into());
    let grants = secondary
        .grants
        .get_mut(&Securable::new("TABLE", "main.core.orders"))
        .unwrap();
    grants.insert("intruder".into(), BTreeSet::from(["MODIFY".into()]));
    grants.insert(
        s.sync_principal.clone(),
        BTreeSet::from(["ALL_PRIVILEGES".into()]),
    );
    let repair = plan(&s, &p, &secondary);
    let described: Vec<&str> = repair
        .changes
        .iter()
        .map(|c| c.description.as_str())
        .collect();
    assert_eq!(described.len(), 4, "{described:#?}");
    assert!(
        described[0].starts_with("deep clone sales.core.fact into sales_dr.core.fact (not a clone")
    );
    assert!(described[1].starts_with("tags of column main.core.orders.email"));
    // The re-clone drops the description (DEEP CLONE does not copy it).
    assert_eq!(described[2], "comment of sales_dr.core.fact");
    assert_eq!(
        described[3],
        "grants on table main.core.orders: intruder +{} -{\"MODIFY\"}"
    );
    apply(&s, &mut p, &mut secondary, &repair);
    assert!(plan(&s, &p, &secondary).is_empty());
    assert!(
        secondary.grants[&Securable::new("TABLE", "main.core.orders")]
            .contains_key(&s.sync_principal)
    );
}

#[test]
fn deletes_are_reported_unless_they_propagate() {
    let (mut s, mut p, mut secondary) = converged();
    p.tables.remove(&n("sales.core.v_top"));
    p.tables.remove(&n("sales.core.fact"));
    p.functions.clear();
    let kept = plan(&s, &p, &secondary);
    assert!(kept.stage(Stage::Deletes).next().is_none());
    let extras: Vec<&str> = kept
        .skipped
        .iter()
        .filter(|x| x.reason.starts_with("extra"))
        .map(|x| x.object.as_str())
        .collect();
    assert_eq!(
        extras,
        [
            "sales_dr.core.v_top",
            "sales_dr.core.fact",
            "sales_dr.core.net"
        ]
    );
    let report = reconcile(&s, &p, &secondary, &BTreeMap::new(), 0);
    assert_eq!(report.summary.extra, 3);
    s.propagate_deletes = true;
    let dropped = plan(&s, &p, &secondary);
    let statements: Vec<String> = dropped
        .stage(Stage::Deletes)
        .map(|c| match &c.action {
            Action::Statement { statement, .. } => statement.clone(),
            _ => panic!(),
        })
        .collect();
    assert_eq!(
        statements,
        [
            "DROP VIEW IF EXISTS `sales_dr`.`core`.`v_top`",
            "DROP TABLE IF EXISTS `sales_dr`.`core`.`fact`",
            "DROP FUNCTION IF EXISTS `sales_dr`.`core`.`net`",
        ]
    );
    apply(&s, &mut p, &mut secondary, &dropped);
    // v_fact still reads the dropped table on both sides: the sync mirrors, it does not judge.
    assert!(plan(&s, &p, &secondary)
        .stage(Stage::Deletes)
        .next()
        .is_none());
}

#[test]
fn a_location_outside_every_mapping_fails_only_its_object() {
    let (s, mut p) = (spec(), primary());
    p.tables
        .get_mut(&n("main.core.events"))
        .unwrap()
        .storage_location = Some("s3://elsewhere/events".into());
    let first = plan(&s, &p, &empty_secondary());
    let failed: Vec<(&str, &str)> = first
        .skipped
        .iter()
        .filter(|x| x.failed)
        .map(|x| (x.object.as_str(), x.reason.as_str()))
        .collect();
    assert_eq!(
        failed,
        [(
            "main.core.events",
            "location s3://elsewhere/events is outside every mapping in locations[]"
        )]
    );
    assert!(first.changes.iter().any(|c| c.object == "main.core.orders"));
}

#[test]
fn a_failed_clone_is_reported_failed_with_its_error() {
    let (s, p, secondary) = converged();
    let failures = BTreeMap::from([(
        "main.core.orders".to_string(),
        "DELTA_CLONE_FAILED: boom".to_string(),
    )]);
    let report = reconcile(&s, &p, &secondary, &failures, 0);
    let line = report
        .lines
        .iter()
        .find(|l| l.target == "main.core.orders" && l.kind == "table")
        .unwrap();
    assert_eq!(line.status, Status::Failed);
    assert_eq!(line.error.as_deref(), Some("DELTA_CLONE_FAILED: boom"));
    assert!(!report.summary.clean);
}

#[test]
fn external_delta_tables_clone_to_the_mapped_location_when_asked() {
    let (mut s, p) = (spec(), primary());
    s.external_tables = crate::spec::ExternalTables::Clone;
    let first = plan(&s, &p, &empty_secondary());
    let events = first
        .changes
        .iter()
        .find(|c| c.object == "main.core.events")
        .unwrap();
    assert_eq!(events.stage, Stage::ExternalTables);
    let Action::Clone { statement, .. } = &events.action else {
        panic!()
    };
    assert!(statement.ends_with(
        "DEEP CLONE `lakeops_dr_main`.`core`.`events` LOCATION 's3://lake-usw2/ext/events'"
    ));
}

#[test]
fn a_missing_source_catalog_deletes_nothing_even_when_deletes_propagate() {
    let (mut s, mut p, secondary) = converged();
    s.propagate_deletes = true;
    p.catalogs.remove("sales");
    p.schemas.retain(|k, _| !k.starts_with("sales."));
    p.tables.retain(|k, _| k.catalog != "sales");
    p.functions.clear();
    let next = plan(&s, &p, &secondary);
    assert!(
        next.stage(Stage::Deletes).next().is_none(),
        "{:#?}",
        next.changes
    );
    assert!(next.skipped.iter().any(|x| x.failed
        && x.object == "sales_dr"
        && x.reason.contains("does not exist on the primary")));
}

#[test]
fn a_recipient_of_another_metastore_gets_no_share() {
    let (s, mut p) = (spec(), primary());
    p.sharing.recipients.insert(
        "lakeops_dr_usw2".into(),
        "aws:eu-west-1:someone-else".into(),
    );
    let first = plan(&s, &p, &empty_secondary());
    assert!(
        first.stage(Stage::Sharing).next().is_none(),
        "{:#?}",
        first.stage(Stage::Sharing).collect::<Vec<_>>()
    );
    assert!(first
        .skipped
        .iter()
        .any(|x| x.failed && x.kind == "recipient"));
}
