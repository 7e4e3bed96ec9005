//! A lake spec and an in-memory catalog for the unit tests of the handler flow.

use crate::api::{CatalogApi, Created};
use crate::desired::{CrawlerConfig, DatabaseConfig, LocationConfig, WorkgroupConfig};
use lakeops_shared::spec::lake::LakeSpec;
use lakeops_shared::{Error, Result};
use std::collections::BTreeMap;
use std::sync::Mutex;

pub fn spec_json() -> serde_json::Value {
    let layer = |name: &str| {
        serde_json::json!({
            "name": name,
            "bucket": format!("lakeops-dev-{name}"),
            "database": format!("lakeops_dev_{name}"),
        })
    };
    serde_json::json!({
        "name": "lakeops-dev",
        "crawler_role_arn": "arn:aws:iam::123456789012:role/lakeops-dev-crawler",
        "layers": [layer("raw"), layer("schematized"), layer("filtered"), layer("emergency"), layer("curated")],
        "athena": {"workgroups": [
            {"profile": "engineer", "name": "lakeops-dev-engineer", "result_location": "s3://lakeops-dev-athena/engineer/"},
            {"profile": "analyst", "name": "lakeops-dev-analyst", "result_location": "s3://lakeops-dev-athena/analyst/",
             "bytes_scanned_cutoff_per_query": 1_000_000_000_i64},
            {"profile": "architect", "name": "lakeops-dev-architect", "result_location": "s3://lakeops-dev-athena/architect/",
             "engine_version": "Athena engine version 3"}
        ]}
    })
}

pub fn spec() -> LakeSpec {
    LakeSpec::from_value(spec_json()).unwrap()
}

#[derive(Default)]
pub struct State {
    pub databases: BTreeMap<String, DatabaseConfig>,
    pub crawlers: BTreeMap<String, CrawlerConfig>,
    pub locations: BTreeMap<String, LocationConfig>,
    pub workgroups: BTreeMap<String, WorkgroupConfig>,
    pub objects: BTreeMap<(String, String), String>,
    /// Every mutating call, in order.
    pub writes: Vec<String>,
    /// Fail this many calls with a throttling error before answering.
    pub throttle_next: u32,
    /// Creates report "already exists" (another setup got there first) after
    /// storing this variant of the resource.
    pub race_creates: bool,
}

#[derive(Default)]
pub struct FakeCatalog {
    pub state: Mutex<State>,
}

impl FakeCatalog {
    fn gate(&self) -> Result<std::sync::MutexGuard<'_, State>> {
        let mut state = self.state.lock().unwrap();
        if state.throttle_next > 0 {
            state.throttle_next -= 1;
            return Err(Error::retryable("ThrottlingException: Rate exceeded"));
        }
        Ok(state)
    }
}

/// Store `value` under `name` unless present; report whether it was created.
fn create<T: Clone>(
    map: &mut BTreeMap<String, T>,
    name: &str,
    value: &T,
    race: bool,
    racer: impl Fn(&T) -> T,
) -> Created {
    if map.contains_key(name) {
        return Created::AlreadyExists;
    }
    if race {
        map.insert(name.to_string(), racer(value));
        return Created::AlreadyExists;
    }
    map.insert(name.to_string(), value.clone());
    Created::Created
}

impl CatalogApi for FakeCatalog {
    async fn read_spec(&self, bucket: &str, key: &str, max_bytes: u64) -> Result<String> {
        let state = self.gate()?;
        let text = state
            .objects
            .get(&(bucket.to_string(), key.to_string()))
            .cloned()
            .ok_or_else(|| Error::terminal("s3:GetObject: NoSuchKey"))?;
        if text.len() as u64 > max_bytes {
            return Err(Error::invalid_input("too large"));
        }
        Ok(text)
    }

    async fn get_database(&self, name: &str) -> Result<Option<DatabaseConfig>> {
        Ok(self.gate()?.databases.get(name).cloned())
    }

    async fn create_database(&self, database: &DatabaseConfig) -> Result<Created> {
        let mut state = self.gate()?;
        state
            .writes
            .push(format!("create_database {}", database.name));
        let race = state.race_creates;
        Ok(create(
            &mut state.databases,
            &database.name,
            database,
            race,
            |d| DatabaseConfig {
                description: "made by someone else".into(),
                ..d.clone()
            },
        ))
    }

    async fn update_database(&self, database: &DatabaseConfig) -> Result<()> {
        let mut state = self.gate()?;
        state
            .writes
            .push(format!("update_database {}", database.name));
        state
            .databases
            .insert(database.name.clone(), database.clone());
        Ok(())
    }

    async fn get_crawler(&self, name: &str) -> Result<Option<CrawlerConfig>> {
        Ok(self.gate()?.crawlers.get(name).cloned())
    }

    async fn create_crawler(&self, crawler: &CrawlerConfig) -> Result<Created> {
        let mut state = self.gate()?;
        state
            .writes
            .push(format!("create_crawler {}", crawler.name));
        let race = state.race_creates;
        Ok(create(
            &mut state.crawlers,
            &crawler.name,
            crawler,
            race,
            |c| c.clone(),
        ))
    }

    async fn update_crawler(&self, crawler: &CrawlerConfig) -> Result<()> {
        let mut state = self.gate()?;
        state
            .writes
            .push(format!("update_crawler {}", crawler.name));
        state.crawlers.insert(crawler.name.clone(), crawler.clone());
        Ok(())
    }

    async fn get_location(&self, resource_arn: &str) -> Result<Option<LocationConfig>> {
        Ok(self.gate()?.locations.get(resource_arn).cloned())
    }

    async fn register_location(&self, location: &LocationConfig) -> Result<Created> {
        let mut state = self.gate()?;
        state
            .writes
            .push(format!("register_location {}", location.resource_arn));
        let race = state.race_creates;
        Ok(create(
            &mut state.locations,
            &location.resource_arn,
            location,
            race,
            |l| l.clone(),
        ))
    }

    async fn update_location(&self, location: &LocationConfig) -> Result<()> {
        let mut state = self.gate()?;
        state
            .writes
            .push(format!("update_location {}", location.resource_arn));
        state
            .locations
            .insert(location.resource_arn.clone(), location.clone());
        Ok(())
    }

    async fn get_workgroup(&self, name: &str) -> Result<Option<WorkgroupConfig>> {
        Ok(self.gate()?.workgroups.get(name).cloned())
    }

    async fn create_workgroup(&self, workgroup: &WorkgroupConfig) -> Result<Created> {
        let mut state = self.gate()?;
        state
            .writes
            .push(format!("create_workgroup {}", workgroup.name));
        let race = state.race_creates;
        Ok(create(
            &mut state.workgroups,
            &workgroup.name,
            workgroup,
            race,
            |w| w.clone(),
        ))
    }

    async fn update_workgroup(&self, workgroup: &WorkgroupConfig) -> Result<()> {
        let mut state = self.gate()?;
        state
            .writes
            .push(format!("update_workgroup {}", workgroup.name));
        state
            .workgroups
            .insert(workgroup.name.clone(), workgroup.clone());
        Ok(())
    }
}
