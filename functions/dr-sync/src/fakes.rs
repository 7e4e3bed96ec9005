//! In-memory fakes behind the ports, for tests: a lakehouse of two sides that applies
//! a plan's changes the way Databricks would, a run store and a pointer store.

use std::collections::{BTreeMap, BTreeSet};

use std::sync::Mutex;

use lakeops_shared::Error;

use crate::clones::StatementState;
use crate::failover::ActivePointer;
use crate::inventory::*;
use crate::mapping::FullName;
use crate::plan::{Action, Change, Plan, Side};
use crate::plan_tables::catalog_renames;
use crate::ports::{
    CloneLedger, FailoverJobs, Job, PointerStore, Result, RunState, RunStore, Workspace,
};
use crate::report::Report;
use crate::spec::DrSpec;
use crate::views::rewrite_catalogs;

fn n(s: &str) -> FullName {
    FullName::parse(s).unwrap()
}

/// What Databricks does to the two sides for one change of a plan. An object the
/// statement needs is missing: Databricks answers TABLE_OR_VIEW_NOT_FOUND.
pub fn apply_change(
    spec: &DrSpec,
    primary_side: &mut Inventory,
    secondary: &mut Inventory,
    c: &Change,
) -> std::result::Result<(), String> {
    // Statements and grants on a table or view need it to exist on the secondary.
    let needs_table = match (&c.action, c.kind.as_str()) {
        (Action::UpdateGrants { securable, .. }, _) if securable.kind == "TABLE" => {
            Some(securable.name.clone())
        }
        (Action::Statement { .. }, "comment" | "tags") if c.object.split('.').count() >= 3 => {
            Some(c.object.split('.').take(3).collect::<Vec<_>>().join("."))
        }
        _ => None,
    };
    if let Some(table) = needs_table {
        if !secondary.tables.contains_key(&n(&table)) {
            return Err(format!("TABLE_OR_VIEW_NOT_FOUND: {table}"));
        }
    }
    let renames = catalog_renames(spec);
    let primary = &primary_side.clone();
    let source_of = |target: &str| -> FullName {
        let t = n(target);
        t.with_catalog(&spec.mapping_into(&t.catalog).unwrap().source)
    };
    {
        match (&c.action, c.kind.as_str()) {
            (
                Action::CreateStorageCredential { name, role_arn }
                | Action::UpdateStorageCredential { name, role_arn },
                _,
            ) => {
                secondary.storage_credentials.insert(
                    name.clone(),
                    StorageCredential {
                        name: name.clone(),
                        role_arn: role_arn.clone(),
                    },
                );
            }
            (
                Action::CreateExternalLocation {
                    name,
                    url,
                    credential_name,
                }
                | Action::UpdateExternalLocation {
                    name,
                    url,
                    credential_name,
                },
                _,
            ) => {
                secondary.external_locations.insert(
                    name.clone(),
                    ExternalLocation {
                        name: name.clone(),
                        url: url.clone(),
                        credential_name: credential_name.clone(),
                    },
                );
            }
            (
                Action::CreateRecipient {
                    name,
                    global_metastore_id,
                },
                _,
            ) => {
                primary_side
                    .sharing
                    .recipients
                    .insert(name.clone(), global_metastore_id.clone());
            }
            (Action::CreateShare { name }, _) => {
                primary_side
                    .sharing
                    .shares
                    .insert(name.clone(), BTreeSet::new());
            }
            (Action::UpdateShare { share, add, remove }, _) => {
                let objects = primary_side.sharing.shares.get_mut(share).unwrap();
                for name in remove {
                    objects.remove(name);
                }
                objects.extend(add.iter().cloned());
            }
            (Action::GrantShare { share, recipient }, _) => {
                primary_side
                    .sharing
                    .share_grants
                    .entry(share.clone())
                    .or_default()
                    .insert(recipient.clone());
            }
            (Action::CreateShareCatalog { name, .. }, _) => {
                secondary.catalogs.insert(
                    name.clone(),
                    Catalog {
                        name: name.clone(),
                        comment: None,
                        catalog_type: "DELTASHARING_CATALOG".into(),
                        storage_root: None,
                    },
                );
            }
            (
                Action::CreateCatalog {
                    name,
                    comment,
                    storage_root,
                },
                _,
            ) => {
                secondary.catalogs.insert(
                    name.clone(),
                    Catalog {
                        name: name.clone(),
                        comment: comment.clone(),
                        catalog_type: "MANAGED_CATALOG".into(),
                        storage_root: storage_root.clone(),
                    },
                );
            }
            (
                Action::Clone {
                    target,
                    source_version,
                    target_version,
                    ..
                },
                _,
            ) => {
                let mut t = primary.tables[&source_of(target)].clone();
                t.name = n(target);
                t.version = Some(target_version.map_or(0, |v| v + 1));
                t.cloned_source_version = *source_version;
                // As Databricks: DEEP CLONE does not copy the table's description.
                t.comment = None;
                if let Some(l) = &t.storage_location {
                    t.storage_location = Some(spec.map_location(l).unwrap());
                }
                secondary.tables.insert(n(target), t);
            }
            (Action::Statement { statement, .. }, _) if statement.starts_with("DROP") => {
                let name = n(&c.object);
                secondary.tables.remove(&name);
                secondary.functions.remove(&name);
                secondary.volumes.remove(&name);
            }
            (
                Action::CreateSchema {
                    catalog,
                    name,
                    comment,
                    storage_root,
                },
                _,
            ) => {
                let full = format!("{catalog}.{name}");
                secondary.schemas.insert(
                    full.clone(),
                    Schema {
                        full_name: full,
                        comment: comment.clone(),
                        storage_root: storage_root.clone(),
                    },
                );
            }
            (Action::Statement { .. }, "table" | "view") => {
                let mut t = primary.tables[&source_of(&c.object)].clone();
                t.name = n(&c.object);
                t.storage_location = t.storage_location.map(|l| spec.map_location(&l).unwrap());
                t.view_definition = t.view_definition.map(|d| rewrite_catalogs(&d, &renames));
                t.cloned_source_version = None;
                secondary.tables.insert(n(&c.object), t);
            }
            (Action::Statement { .. }, "volume") => {
                let mut v = primary.volumes[&source_of(&c.object)].clone();
                v.name = n(&c.object);
                v.storage_location = v.storage_location.map(|l| spec.map_location(&l).unwrap());
                secondary.volumes.insert(n(&c.object), v);
            }
            (Action::Statement { .. }, "function") => {
                let mut f = primary.functions[&source_of(&c.object)].clone();
                f.name = n(&c.object);
                f.body = rewrite_catalogs(&f.body, &renames);
                secondary.functions.insert(n(&c.object), f);
            }
            (Action::Statement { .. }, "tags") => {
                let target = secondary
                    .tags
                    .keys()
                    .chain(
                        primary
                            .tags
                            .keys()
                            .filter_map(|s| spec.map_securable(s))
                            .collect::<Vec<_>>()
                            .iter(),
                    )
                    .find(|s| s.name == c.object)
                    .cloned()
                    .unwrap();
                let source = spec.source_securable(&target).unwrap();
                match primary.tags.get(&source) {
                    Some(tags) => secondary.tags.insert(target, tags.clone()),
                    None => secondary.tags.remove(&target),
                };
            }
            (Action::Statement { .. }, "comment") => {
                let parts: Vec<&str> = c.object.split('.').collect();
                let table = n(&parts[..3].join("."));
                let source = &primary.tables[&source_of(&table.to_string())];
                let t = secondary.tables.get_mut(&table).unwrap();
                match parts.get(3) {
                    None => t.comment = source.comment.clone(),
                    Some(column) => {
                        let want = source
                            .columns
                            .iter()
                            .find(|x| x.name == *column)
                            .unwrap()
                            .comment
                            .clone();
                        t.columns
                            .iter_mut()
                            .find(|x| x.name == *column)
                            .unwrap()
                            .comment = want;
                    }
                }
            }
            (Action::UpdateGrants { securable, changes }, _) => {
                let grants = secondary.grants.entry(securable.clone()).or_default();
                for ch in changes {
                    let set = grants.entry(ch.principal.clone()).or_default();
                    set.extend(ch.add.iter().cloned());
                    set.retain(|p| !ch.remove.contains(p));
                }
                grants.retain(|_, privs| !privs.is_empty());
            }
            other => panic!("the fake secondary cannot apply {other:?}"),
        }
    }
    Ok(())
}

/// Both sides, and the statements in flight on the secondary's warehouse.
pub struct FakeLake {
    pub spec: DrSpec,
    pub primary: Mutex<Inventory>,
    pub secondary: Mutex<Inventory>,
    /// Statement text -> the change it makes (registered from a run's plan).
    expected: Mutex<BTreeMap<String, Change>>,
    /// id -> (change, polls before it finishes, applied)
    statements: Mutex<BTreeMap<String, (Change, u8)>>,
    /// Statements whose text contains this fail.
    pub fail_containing: Mutex<Option<String>>,
    /// Every mutating call, `side: what`.
    pub mutations: Mutex<Vec<String>>,
    /// Answer inventories without `cloned_source_version`, as the REST API does (the
    /// sync then relies on its clone ledger).
    pub rest_only: std::sync::atomic::AtomicBool,
    /// Each side's triggered jobs; a side whose jobs API fails when `jobs_down`.
    pub primary_jobs: Mutex<Vec<Job>>,
    pub secondary_jobs: Mutex<Vec<Job>>,
    pub primary_down: std::sync::atomic::AtomicBool,
    /// Job ids whose runs were cancelled.
    pub cancelled: Mutex<Vec<i64>>,
    /// A run store for the failover tests, which keep theirs across calls.
    pub runs: FakeStore,
}

impl FakeLake {
    pub fn new(spec: DrSpec, primary: Inventory, secondary: Inventory) -> FakeLake {
        FakeLake {
            spec,
            primary: Mutex::new(primary),
            secondary: Mutex::new(secondary),
            expected: Mutex::default(),
            statements: Mutex::default(),
            fail_containing: Mutex::default(),
            mutations: Mutex::default(),
            rest_only: Default::default(),
            primary_jobs: Mutex::default(),
            secondary_jobs: Mutex::default(),
            primary_down: Default::default(),
            cancelled: Mutex::default(),
            runs: FakeStore::default(),
        }
    }

    /// Teaches the fake warehouse what a plan's statements do.
    pub fn expect(&self, plan: &Plan) {
        let mut expected = self.expected.lock().unwrap();
        for c in &plan.changes {
            if let Some((statement, _)) = c.action.statement() {
                expected.insert(statement.to_string(), c.clone());
            }
        }
    }

    pub fn side(&self, side: Side) -> FakeSide<'_> {
        FakeSide { lake: self, side }
    }

    fn run(&self, change: &Change) -> std::result::Result<(), String> {
        let mut p = self.primary.lock().unwrap();
        let mut s = self.secondary.lock().unwrap();
        apply_change(&self.spec, &mut p, &mut s, change)
    }
}

pub struct FakeSide<'a> {
    lake: &'a FakeLake,
    side: Side,
}

impl FakeSide<'_> {
    fn jobs(&self) -> &Mutex<Vec<Job>> {
        match self.side {
            Side::Primary => &self.lake.primary_jobs,
            Side::Secondary => &self.lake.secondary_jobs,
        }
    }
}

impl Workspace for FakeSide<'_> {
    async fn inventory(&self, _catalogs: &[String]) -> Result<Inventory> {
        Ok(match self.side {
            Side::Primary => self.lake.primary.lock().unwrap().clone(),
            Side::Secondary => {
                let mut inv = self.lake.secondary.lock().unwrap().clone();
                if self
                    .lake
                    .rest_only
                    .load(std::sync::atomic::Ordering::Relaxed)
                {
                    for t in inv.tables.values_mut() {
                        t.cloned_source_version = None;
                    }
                }
                inv
            }
        })
    }

    async fn apply(&self, action: &Action) -> Result<()> {
        assert_eq!(
            action.side(),
            self.side,
            "{action:?} sent to the wrong side"
        );
        self.lake
            .mutations
            .lock()
            .unwrap()
            .push(format!("{:?}: {action:?}", self.side));
        let change = Change {
            stage: crate::plan::Stage::Storage,
            kind: String::new(),
            object: String::new(),
            description: String::new(),
            action: action.clone(),
            after: vec![],
        };
        self.lake.run(&change).map_err(Error::terminal)
    }

    async fn submit(&self, statement: &str, _schema: Option<&str>) -> Result<String> {
        assert_eq!(self.side, Side::Secondary);
        self.lake
            .mutations
            .lock()
            .unwrap()
            .push(format!("statement: {statement}"));
        let change = self
            .lake
            .expected
            .lock()
            .unwrap()
            .get(statement)
            .cloned()
            .ok_or_else(|| {
                Error::terminal(format!(
                    "PARSE_SYNTAX_ERROR: the fake warehouse does not know {statement}"
                ))
            })?;
        let mut statements = self.lake.statements.lock().unwrap();
        let id = format!("st-{}", statements.len());
        statements.insert(id.clone(), (change, 1));
        Ok(id)
    }

    async fn poll(&self, statement_id: &str) -> Result<StatementState> {
        const SETTLED: u8 = u8::MAX;
        let (change, first) = {
            let mut statements = self.lake.statements.lock().unwrap();
            let (change, polls) = statements
                .get_mut(statement_id)
                .ok_or_else(|| Error::terminal(format!("no statement {statement_id}")))?;
            if *polls > 0 && *polls != SETTLED {
                *polls -= 1;
                return Ok(StatementState::Running);
            }
            let first = *polls == 0;
            *polls = SETTLED;
            (change.clone(), first)
        };
        let text = change
            .action
            .statement()
            .map(|(s, _)| s.to_string())
            .unwrap_or_default();
        let failing = self.lake.fail_containing.lock().unwrap().clone();
        if failing.is_some_and(|bad| text.contains(&bad)) {
            return Ok(StatementState::Failed {
                error: "DELTA_CLONE_FAILED: injected".into(),
            });
        }
        if first {
            if let Err(error) = self.lake.run(&change) {
                return Ok(StatementState::Failed { error });
            }
        }
        Ok(StatementState::Succeeded)
    }

    async fn table_version(&self, full_name: &str) -> Result<Option<i64>> {
        let inv = match self.side {
            Side::Primary => self.lake.primary.lock().unwrap(),
            Side::Secondary => self.lake.secondary.lock().unwrap(),
        };
        Ok(FullName::parse(full_name)
            .and_then(|n| inv.tables.get(&n))
            .and_then(|t| t.version))
    }

    async fn triggered_jobs(&self) -> Result<Vec<Job>> {
        if self.side == Side::Primary
            && self
                .lake
                .primary_down
                .load(std::sync::atomic::Ordering::Relaxed)
        {
            return Err(Error::retryable(
                "TEMPORARILY_UNAVAILABLE: the primary region is impaired",
            ));
        }
        Ok(self.jobs().lock().unwrap().clone())
    }

    async fn set_job_paused(&self, job: &Job, paused: bool) -> Result<()> {
        self.lake
            .mutations
            .lock()
            .unwrap()
            .push(format!("{:?}: job {} paused={paused}", self.side, job.name));
        let jobs = self.jobs();
        let mut jobs = jobs.lock().unwrap();
        let j = jobs
            .iter_mut()
            .find(|j| j.job_id == job.job_id)
            .ok_or_else(|| Error::terminal("no such job"))?;
        j.paused = paused;
        Ok(())
    }

    async fn cancel_job_runs(&self, job_id: i64) -> Result<()> {
        self.lake.cancelled.lock().unwrap().push(job_id);
        Ok(())
    }

    async fn cancel_statement(&self, statement_id: &str) -> Result<()> {
        self.lake
            .mutations
            .lock()
            .unwrap()
            .push(format!("cancel {statement_id}"));
        // A cancelled statement never runs.
        self.lake.statements.lock().unwrap().remove(statement_id);
        Ok(())
    }
}

#[derive(Default)]
pub struct FakeStore {
    pub states: Mutex<BTreeMap<String, RunState>>,
    pub reports: Mutex<BTreeMap<String, Report>>,
    pub ledger: Mutex<CloneLedger>,
    pub failover_jobs: Mutex<BTreeMap<u64, FailoverJobs>>,
}

impl RunStore for FakeStore {
    async fn load(&self, run: &str) -> Result<Option<RunState>> {
        Ok(self.states.lock().unwrap().get(run).cloned())
    }
    async fn save(&self, run: &str, state: &RunState) -> Result<()> {
        self.states
            .lock()
            .unwrap()
            .insert(run.into(), state.clone());
        Ok(())
    }
    async fn put_report(&self, run: &str, report: &Report) -> Result<String> {
        self.reports
            .lock()
            .unwrap()
            .insert(run.into(), report.clone());
        Ok(format!("s3://fake/{run}/report.json"))
    }
    fn state_uri(&self, run: &str) -> String {
        format!("s3://fake/{run}/state.json")
    }
    async fn load_ledger(&self) -> Result<CloneLedger> {
        Ok(self.ledger.lock().unwrap().clone())
    }
    async fn save_ledger(&self, ledger: &CloneLedger) -> Result<()> {
        *self.ledger.lock().unwrap() = ledger.clone();
        Ok(())
    }
    async fn load_failover_jobs(&self, generation: u64) -> Result<Option<FailoverJobs>> {
        Ok(self.failover_jobs.lock().unwrap().get(&generation).cloned())
    }
    async fn save_failover_jobs(&self, generation: u64, jobs: &FailoverJobs) -> Result<()> {
        self.failover_jobs
            .lock()
            .unwrap()
            .insert(generation, jobs.clone());
        Ok(())
    }
}

#[derive(Default)]
pub struct FakePointer(pub Mutex<Option<ActivePointer>>);

impl PointerStore for FakePointer {
    async fn read(&self) -> Result<Option<ActivePointer>> {
        Ok(self.0.lock().unwrap().clone())
    }
    async fn write(&self, pointer: &ActivePointer) -> Result<()> {
        *self.0.lock().unwrap() = Some(pointer.clone());
        Ok(())
    }
}
