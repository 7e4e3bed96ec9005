//! What a warm container remembers of the Glue catalog between batches: the
//! definitions of tables, so that a batch that brings no new column to a
//! known table needs no `GetTable`.
//!
//! Only what Glue confirmed is remembered: a table as `GetTable` returned it
//! or as `CreateTable`/`UpdateTable` accepted it. A failed or unanswered call
//! teaches nothing, and a failed write makes the table unknown again. A table
//! is trusted for `ttl` after Glue last confirmed it; a TTL of zero turns the
//! cache off. lakeops never drops a table, so staleness only matters for a
//! table dropped or changed out of band: the partitions of the next batch then
//! fail with `EntityNotFoundException` (their objects are redelivered and the
//! table is learnt again), and a column another writer added is found on the
//! fresh `GetTable` that precedes every `UpdateTable`.
//!
//! Partitions are deliberately NOT remembered. catalog-ingest drops a
//! partition whose prefix became empty, and up to `MaximumConcurrency`
//! instances run at once, each with its own memory: an instance that
//! remembered partition P as existing would skip registering a new object's
//! P after another instance dropped it (a delete-then-rewrite of a partition
//! is a common write pattern), and a partition written once would stay
//! missing for good. So every batch registers all its partitions with
//! `BatchCreatePartition`, where `AlreadyExistsException` is success — one
//! call per table per 100 distinct partitions of the batch.
//!
//! Pure: time is passed in, nothing here calls AWS.

use crate::table::TableDefinition;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// `(database, table)`
pub type TableId = (String, String);

/// How long what Glue confirmed is trusted, unless configured otherwise.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);

#[derive(Debug, Clone)]
struct KnownTable {
    definition: TableDefinition,
    confirmed_at: Instant,
}

/// The tables as this container last saw them.
#[derive(Debug, Clone)]
pub struct CatalogCache {
    ttl: Duration,
    tables: HashMap<TableId, KnownTable>,
}

impl Default for CatalogCache {
    fn default() -> Self {
        Self::new(DEFAULT_TTL)
    }
}

impl CatalogCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            tables: HashMap::new(),
        }
    }

    /// A cache that remembers nothing: every batch starts from Glue.
    pub fn disabled() -> Self {
        Self::new(Duration::ZERO)
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn fresh(&self, confirmed_at: Instant, now: Instant) -> bool {
        now.saturating_duration_since(confirmed_at) < self.ttl
    }

    /// The table as Glue last confirmed it, if that was less than `ttl` ago.
    pub fn table(&self, id: &TableId, now: Instant) -> Option<&TableDefinition> {
        self.tables
            .get(id)
            .filter(|known| self.fresh(known.confirmed_at, now))
            .map(|known| &known.definition)
    }

    /// Glue returned or accepted this definition of the table just now.
    pub fn confirm_table(&mut self, definition: TableDefinition, now: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        let id = (definition.database.clone(), definition.name.clone());
        self.tables.insert(
            id,
            KnownTable {
                definition,
                confirmed_at: now,
            },
        );
    }

    /// The table does not exist, or a write to it failed and its state is
    /// unknown: forget it.
    pub fn forget_table(&mut self, id: &TableId) {
        self.tables.remove(id);
    }

    /// Drop everything that has expired, so memory follows what is in use.
    pub fn prune(&mut self, now: Instant) {
        let ttl = self.ttl;
        self.tables
            .retain(|_, known| now.saturating_duration_since(known.confirmed_at) < ttl);
    }

    pub fn table_count(&self) -> usize {
        self.tables.len()
    }
}

/// Whether to ask Glue which of a batch's partitions exist before creating
/// them. `BatchCreatePartition` answers `AlreadyExistsException` per entry for
/// those that exist, which is success, so it is the probe and the write in one
/// call — as long as one call holds them all. Beyond that, one
/// `BatchGetPartition` (1000 per call) can save the creations of the ones that
/// exist (100 per call), at the price of one call when none does.
pub fn probe_before_create(partitions: usize, table_created_now: bool) -> bool {
    !table_created_now && partitions > crate::api::MAX_CREATE_PARTITIONS
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Column;
    use crate::glue_type::GlueType;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn table(name: &str, columns: &[&str]) -> TableDefinition {
        TableDefinition {
            database: "db".into(),
            name: name.into(),
            location: format!("s3://b/{name}/"),
            columns: columns
                .iter()
                .map(|c| Column::new(*c, GlueType::String))
                .collect(),
            partition_keys: vec!["dt".into()],
            input_format: String::new(),
            output_format: String::new(),
            serde_library: String::new(),
            serde_parameters: BTreeMap::new(),
            parameters: BTreeMap::new(),
            version_id: Some("1".into()),
        }
    }

    fn id(name: &str) -> TableId {
        ("db".into(), name.into())
    }

    const TTL: Duration = Duration::from_secs(300);
    const S: Duration = Duration::from_secs(1);

    #[test]
    fn a_confirmed_table_is_known_until_its_ttl() {
        let t0 = Instant::now();
        let mut cache = CatalogCache::new(TTL);
        assert!(cache.table(&id("t"), t0).is_none());
        cache.confirm_table(table("t", &["a"]), t0);
        assert_eq!(cache.table(&id("t"), t0).unwrap().columns.len(), 1);
        assert!(cache.table(&id("t"), t0 + TTL - S).is_some());
        assert!(cache.table(&id("t"), t0 + TTL).is_none(), "expired at ttl");
        assert!(cache.table(&id("u"), t0).is_none());
    }

    #[test]
    fn a_table_confirmed_again_is_trusted_from_then() {
        let t0 = Instant::now();
        let mut cache = CatalogCache::new(TTL);
        cache.confirm_table(table("t", &["a"]), t0);
        cache.confirm_table(table("t", &["a", "b"]), t0 + 200 * S);
        let known = cache.table(&id("t"), t0 + TTL).unwrap();
        assert_eq!(known.columns.len(), 2);
        assert!(cache.table(&id("t"), t0 + 200 * S + TTL).is_none());
    }

    #[test]
    fn forgetting_a_table() {
        let t0 = Instant::now();
        let mut cache = CatalogCache::new(TTL);
        cache.confirm_table(table("t", &["a"]), t0);
        cache.forget_table(&id("t"));
        assert!(cache.table(&id("t"), t0).is_none());
    }

    #[test]
    fn a_zero_ttl_remembers_nothing() {
        let t0 = Instant::now();
        let mut cache = CatalogCache::disabled();
        cache.confirm_table(table("t", &["a"]), t0);
        assert!(cache.table(&id("t"), t0).is_none());
        assert_eq!(cache.table_count(), 0);
    }

    #[test]
    fn pruning_drops_what_expired() {
        let t0 = Instant::now();
        let mut cache = CatalogCache::new(TTL);
        cache.confirm_table(table("old", &["a"]), t0);
        cache.confirm_table(table("new", &["a"]), t0 + 100 * S);
        cache.prune(t0 + 350 * S);
        assert_eq!(cache.table_count(), 1);
        assert!(cache.table(&id("new"), t0 + 350 * S).is_some());
    }

    #[test]
    fn probing_pays_only_beyond_one_create_call() {
        assert!(!probe_before_create(0, false));
        assert!(!probe_before_create(100, false));
        assert!(probe_before_create(101, false));
        assert!(
            !probe_before_create(5000, true),
            "a new table has no partitions"
        );
    }

    #[derive(Debug, Clone)]
    enum Op {
        ConfirmTable(u8, u8),
        ForgetTable(u8),
        Prune,
        Wait(u16),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..3, 0u8..3).prop_map(|(t, c)| Op::ConfirmTable(t, c)),
            (0u8..3).prop_map(Op::ForgetTable),
            Just(Op::Prune),
            (0u16..400).prop_map(Op::Wait),
        ]
    }

    proptest! {
        /// Against a model that records when each table was last confirmed:
        /// the cache never claims a table Glue did not confirm within the TTL,
        /// and always returns the definition confirmed last.
        #[test]
        fn never_trusts_what_was_not_confirmed_within_the_ttl(
            ops in proptest::collection::vec(op(), 1..60),
            ttl_secs in 0u64..400,
        ) {
            let ttl = Duration::from_secs(ttl_secs);
            let t0 = Instant::now();
            let mut now = t0;
            let mut cache = CatalogCache::new(ttl);
            let mut model: HashMap<u8, (Instant, u8)> = HashMap::new();
            let fresh = |at: Instant, now: Instant| now.saturating_duration_since(at) < ttl;
            let name = |t: u8| format!("t{t}");
            for op in ops {
                match op {
                    Op::ConfirmTable(t, c) => {
                        let columns: Vec<String> = (0..=c).map(|i| format!("c{i}")).collect();
                        let refs: Vec<&str> = columns.iter().map(String::as_str).collect();
                        cache.confirm_table(table(&name(t), &refs), now);
                        if !ttl.is_zero() {
                            model.insert(t, (now, c));
                        }
                    }
                    Op::ForgetTable(t) => {
                        cache.forget_table(&id(&name(t)));
                        model.remove(&t);
                    }
                    Op::Prune => cache.prune(now),
                    Op::Wait(secs) => now += Duration::from_secs(u64::from(secs)),
                }
                for t in 0u8..3 {
                    let expected = model.get(&t).filter(|(at, _)| fresh(*at, now));
                    let got = cache.table(&id(&name(t)), now);
                    prop_assert_eq!(got.map(|d| d.columns.len()), expected.map(|(_, c)| usize::from(*c) + 1));
                }
            }
        }
    }
}
