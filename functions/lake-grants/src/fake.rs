//! An in-memory Lake Formation for unit tests of the handler's flow. It keeps
//! the state in the normal form and follows the same grant semantics as
//! [`crate::plan::apply`]; faults are scripted.

use crate::lake::{BatchOp, EntryFailure, Lake};
use crate::model::*;
use crate::plan::{self, GrantChange, Plan, SettingsChange};
use lakeops_shared::{Error, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

#[derive(Default)]
pub struct FakeLake {
    pub caller: String,
    pub catalog: CatalogSnapshot,
    pub policies: BTreeMap<String, String>,
    pub state: Mutex<LakeState>,
    /// Grants to these principals fail as Lake Formation fails them.
    pub unknown_principals: BTreeSet<String>,
    /// The next this-many batch calls fail every entry with ConcurrentModificationException.
    pub concurrent_failures: Mutex<u32>,
    /// Every batch call: operation and number of entries.
    pub batch_calls: Mutex<Vec<(BatchOp, usize)>>,
    pub settings_writes: Mutex<u32>,
}

impl FakeLake {
    pub fn state(&self) -> LakeState {
        self.state.lock().unwrap().clone()
    }
}

impl Lake for FakeLake {
    async fn caller_arn(&self) -> Result<String> {
        Ok(self.caller.clone())
    }

    async fn read_policy(&self, uri: &str) -> Result<String> {
        self.policies
            .get(uri)
            .cloned()
            .ok_or_else(|| Error::terminal(format!("s3:GetObject {uri}: NoSuchKey")))
    }

    async fn read_catalog(&self, databases: &BTreeSet<String>) -> Result<CatalogSnapshot> {
        Ok(CatalogSnapshot {
            databases: self
                .catalog
                .databases
                .iter()
                .filter(|(name, _)| databases.contains(*name))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })
    }

    async fn read_settings(&self) -> Result<SettingsView> {
        Ok(self.state.lock().unwrap().settings.clone())
    }

    async fn write_settings(&self, change: &SettingsChange) -> Result<()> {
        *self.settings_writes.lock().unwrap() += 1;
        let mut state = self.state.lock().unwrap();
        *state = plan::apply(
            &state,
            &Plan {
                settings: change.clone(),
                ..Plan::default()
            },
        );
        Ok(())
    }

    async fn list_grants(&self) -> Result<GrantMap> {
        Ok(self.state.lock().unwrap().grants.clone())
    }

    async fn list_lf_tags(&self) -> Result<BTreeMap<String, BTreeSet<String>>> {
        Ok(self.state.lock().unwrap().lf_tags.clone())
    }

    async fn resource_tags(&self, target: &TagTarget) -> Result<TagAssignment> {
        Ok(self
            .state
            .lock()
            .unwrap()
            .tag_assignments
            .get(target)
            .cloned()
            .unwrap_or_default())
    }

    async fn registered_locations(&self) -> Result<BTreeSet<String>> {
        Ok(self.state.lock().unwrap().registered_locations.clone())
    }

    async fn register_location(&self, arn: &str, _role_arn: Option<&str>) -> Result<()> {
        self.state
            .lock()
            .unwrap()
            .registered_locations
            .insert(arn.to_string());
        Ok(())
    }

    async fn create_lf_tag(&self, key: &str, values: &BTreeSet<String>) -> Result<()> {
        let mut state = self.state.lock().unwrap();
        if state.lf_tags.contains_key(key) {
            return Err(Error::terminal(format!(
                "CreateLFTag {key}: AlreadyExistsException"
            )));
        }
        state.lf_tags.insert(key.to_string(), values.clone());
        Ok(())
    }

    async fn update_lf_tag(
        &self,
        key: &str,
        add: &BTreeSet<String>,
        remove: &BTreeSet<String>,
    ) -> Result<()> {
        let mut state = self.state.lock().unwrap();
        let values = state.lf_tags.get_mut(key).ok_or_else(|| {
            Error::terminal(format!("UpdateLFTag {key}: EntityNotFoundException"))
        })?;
        values.extend(add.iter().cloned());
        values.retain(|v| !remove.contains(v));
        Ok(())
    }

    async fn add_resource_tags(
        &self,
        target: &TagTarget,
        tags: &BTreeMap<String, String>,
    ) -> Result<()> {
        let mut state = self.state.lock().unwrap();
        for (key, value) in tags {
            if !state.lf_tags.get(key).is_some_and(|v| v.contains(value)) {
                return Err(Error::terminal(format!(
                    "AddLFTagsToResource {target}: {key}: EntityNotFoundException"
                )));
            }
        }
        let assigned = state.tag_assignments.entry(target.clone()).or_default();
        for (key, value) in tags {
            assigned.insert(key.clone(), BTreeSet::from([value.clone()]));
        }
        Ok(())
    }

    async fn remove_resource_tags(
        &self,
        target: &TagTarget,
        tags: &BTreeMap<String, BTreeSet<String>>,
    ) -> Result<()> {
        let mut state = self.state.lock().unwrap();
        if let Some(assigned) = state.tag_assignments.get_mut(target) {
            for key in tags.keys() {
                assigned.remove(key);
            }
        }
        Ok(())
    }

    async fn batch(&self, op: BatchOp, entries: &[GrantChange]) -> Result<Vec<EntryFailure>> {
        assert!(
            entries.len() <= plan::MAX_BATCH,
            "Lake Formation rejects batches over 20 entries"
        );
        self.batch_calls.lock().unwrap().push((op, entries.len()));
        {
            let mut concurrent = self.concurrent_failures.lock().unwrap();
            if *concurrent > 0 {
                *concurrent -= 1;
                return Ok((0..entries.len())
                    .map(|index| EntryFailure {
                        index,
                        code: "ConcurrentModificationException".into(),
                        message: "Concurrent modification detected".into(),
                    })
                    .collect());
            }
        }
        let mut failures = Vec::new();
        let mut state = self.state.lock().unwrap();
        for (index, entry) in entries.iter().enumerate() {
            if op == BatchOp::Grant && self.unknown_principals.contains(&entry.principal) {
                failures.push(EntryFailure {
                    index,
                    code: "InvalidInputException".into(),
                    message: format!("Invalid principal: {} does not exist", entry.principal),
                });
                continue;
            }
            let single = match op {
                BatchOp::Grant => Plan {
                    grants: vec![entry.clone()],
                    ..Plan::default()
                },
                BatchOp::Revoke => Plan {
                    revokes: vec![entry.clone()],
                    ..Plan::default()
                },
            };
            *state = plan::apply(&state, &single);
        }
        Ok(failures)
    }
}
