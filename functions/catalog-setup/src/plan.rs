//! The plan: for every resource the spec asks for, whether it must be created,
//! updated (and which fields differ) or is already as asked. Pure.
//!
//! Resources that exist but are not in the spec are left alone: setup never
//! deletes, so a spec edit cannot drop a database and its tables.

use crate::desired::{
    crawler_differences, database_differences, location_differences, workgroup_differences,
    CrawlerConfig, DatabaseConfig, Desired, LocationConfig, WorkgroupConfig,
};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    GlueDatabase,
    GlueCrawler,
    LakeFormationLocation,
    AthenaWorkgroup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    Unchanged,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub resource: ResourceKind,
    pub name: String,
    pub action: Action,
    /// The fields that differ, for updates.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub differences: Vec<String>,
}

/// What exists now, keyed by name (ARN for locations). Only the resources the
/// spec asks for need to be present.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub databases: BTreeMap<String, DatabaseConfig>,
    pub crawlers: BTreeMap<String, CrawlerConfig>,
    pub locations: BTreeMap<String, LocationConfig>,
    pub workgroups: BTreeMap<String, WorkgroupConfig>,
}

pub fn plan(desired: &Desired, observed: &Observed) -> Vec<Change> {
    let mut changes = Vec::new();
    for database in &desired.databases {
        changes.push(change(
            ResourceKind::GlueDatabase,
            &database.name,
            observed
                .databases
                .get(&database.name)
                .map(|o| database_differences(database, o)),
        ));
    }
    for location in &desired.locations {
        changes.push(change(
            ResourceKind::LakeFormationLocation,
            &location.resource_arn,
            observed
                .locations
                .get(&location.resource_arn)
                .map(|o| location_differences(location, o)),
        ));
    }
    for crawler in &desired.crawlers {
        changes.push(change(
            ResourceKind::GlueCrawler,
            &crawler.name,
            observed
                .crawlers
                .get(&crawler.name)
                .map(|o| crawler_differences(crawler, o)),
        ));
    }
    for workgroup in &desired.workgroups {
        changes.push(change(
            ResourceKind::AthenaWorkgroup,
            &workgroup.name,
            observed
                .workgroups
                .get(&workgroup.name)
                .map(|o| workgroup_differences(workgroup, o)),
        ));
    }
    changes
}

fn change(resource: ResourceKind, name: &str, differences: Option<Vec<String>>) -> Change {
    let (action, differences) = match differences {
        None => (Action::Create, Vec::new()),
        Some(d) if d.is_empty() => (Action::Unchanged, d),
        Some(d) => (Action::Update, d),
    };
    Change {
        resource,
        name: name.to_string(),
        action,
        differences,
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub unchanged: usize,
}

pub fn summarize(changes: &[Change]) -> Summary {
    let mut summary = Summary::default();
    for change in changes {
        match change.action {
            Action::Create => summary.create += 1,
            Action::Update => summary.update += 1,
            Action::Unchanged => summary.unchanged += 1,
        }
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::desired;
    use crate::test_support::spec;
    use proptest::prelude::*;

    fn observed_from(desired: &Desired) -> Observed {
        Observed {
            databases: desired
                .databases
                .iter()
                .map(|d| (d.name.clone(), d.clone()))
                .collect(),
            crawlers: desired
                .crawlers
                .iter()
                .map(|c| (c.name.clone(), c.clone()))
                .collect(),
            locations: desired
                .locations
                .iter()
                .map(|l| (l.resource_arn.clone(), l.clone()))
                .collect(),
            workgroups: desired
                .workgroups
                .iter()
                .map(|w| (w.name.clone(), w.clone()))
                .collect(),
        }
    }

    #[test]
    fn nothing_exists_so_everything_is_created() {
        let desired = desired(&spec());
        let changes = plan(&desired, &Observed::default());
        let summary = summarize(&changes);
        // 5 databases, 5 locations, 5 crawlers, 3 workgroups.
        assert_eq!(
            summary,
            Summary {
                create: 18,
                update: 0,
                unchanged: 0
            }
        );
        assert!(changes
            .iter()
            .any(|c| c.resource == ResourceKind::LakeFormationLocation
                && c.name == "arn:aws:s3:::lakeops-dev-raw"));
    }

    #[test]
    fn converged_state_plans_nothing() {
        let desired = desired(&spec());
        let changes = plan(&desired, &observed_from(&desired));
        assert_eq!(summarize(&changes).unchanged, changes.len());
    }

    #[test]
    fn drift_is_named_field_by_field() {
        let desired = desired(&spec());
        let mut observed = observed_from(&desired);
        let crawler = observed.crawlers.values_mut().next().unwrap();
        crawler.role = "arn:aws:iam::123456789012:role/other".into();
        crawler.configuration = serde_json::json!({"Version": 1.0});
        // The order Glue returns exclusions in is not drift.
        crawler.exclusions.reverse();
        let workgroup = observed.workgroups.values_mut().next().unwrap();
        workgroup.output_location = "s3://elsewhere/".into();
        workgroup.engine_version = Some("Athena engine version 2".into());
        let changes = plan(&desired, &observed);
        let updates: Vec<_> = changes
            .iter()
            .filter(|c| c.action == Action::Update)
            .collect();
        assert_eq!(updates.len(), 2, "{updates:?}");
        assert_eq!(updates[0].differences, vec!["role", "configuration"]);
        // The spec leaves the engine version to Athena, so it is not compared.
        assert_eq!(updates[1].differences, vec!["output_location"]);
    }

    #[test]
    fn crawlers_use_event_mode_only_with_a_queue_and_exclude_parsed_formats() {
        let mut spec = spec();
        spec.layers[0].crawler.event_queue_arn =
            Some("arn:aws:sqs:us-east-1:123456789012:raw-crawler".into());
        spec.layers[1].formats = vec![lakeops_shared::spec::lake::DataFormat::Parquet];
        spec.layers[2].crawler.enabled = false;
        let desired = desired(&spec);
        assert_eq!(desired.crawlers.len(), 4);
        assert_eq!(
            desired.crawlers[0].recrawl,
            crate::desired::RecrawlBehavior::EventMode
        );
        assert_eq!(
            desired.crawlers[1].recrawl,
            crate::desired::RecrawlBehavior::NewFoldersOnly
        );
        assert!(desired.crawlers[0]
            .exclusions
            .contains(&"**.csv.gz".to_string()));
        assert!(desired.crawlers[1]
            .exclusions
            .contains(&"**.parquet".to_string()));
        assert!(!desired.crawlers[1]
            .exclusions
            .contains(&"**.csv".to_string()));
        let mut sorted = desired.crawlers[0].exclusions.clone();
        sorted.sort();
        assert_eq!(sorted, desired.crawlers[0].exclusions);
    }

    proptest! {
        /// Whatever subset exists, and however it drifted, the plan creates
        /// exactly the missing resources, updates exactly the drifted ones,
        /// and covers every resource of the spec once.
        #[test]
        fn plan_matches_what_exists(
            present in proptest::collection::vec(any::<bool>(), 18),
            drifted in proptest::collection::vec(any::<bool>(), 18),
        ) {
            let desired = desired(&spec());
            let mut observed = Observed::default();
            let mut expect = Vec::new();
            let mut i = 0;
            let next = |i: &mut usize| { let r = (present[*i], drifted[*i]); *i += 1; r };
            for d in &desired.databases {
                let (p, x) = next(&mut i);
                if p { let mut o = d.clone(); if x { o.description.push('!'); } observed.databases.insert(o.name.clone(), o); }
                expect.push((p, x));
            }
            for l in &desired.locations {
                let (p, x) = next(&mut i);
                if p { let mut o = l.clone(); if x { o.role_arn = Some("arn:aws:iam::1:role/x".into()); } observed.locations.insert(o.resource_arn.clone(), o); }
                expect.push((p, x));
            }
            for c in &desired.crawlers {
                let (p, x) = next(&mut i);
                if p { let mut o = c.clone(); if x { o.schedule = Some("cron(0 0 * * ? *)".into()); } observed.crawlers.insert(o.name.clone(), o); }
                expect.push((p, x));
            }
            for w in &desired.workgroups {
                let (p, x) = next(&mut i);
                if p { let mut o = w.clone(); if x { o.enforce_configuration = !o.enforce_configuration; } observed.workgroups.insert(o.name.clone(), o); }
                expect.push((p, x));
            }
            let changes = plan(&desired, &observed);
            prop_assert_eq!(changes.len(), expect.len());
            for (change, (p, x)) in changes.iter().zip(expect) {
                let want = match (p, x) { (false, _) => Action::Create, (true, true) => Action::Update, (true, false) => Action::Unchanged };
                prop_assert_eq!(change.action, want, "{:?}", change);
                prop_assert_eq!(change.differences.len(), usize::from(want == Action::Update));
            }
        }
    }
}
