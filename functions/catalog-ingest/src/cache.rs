//! What a warm container remembers of the Glue catalog between batches, so
//! that a batch that brings nothing new to a table makes no Glue call for it.
//!
//! Only what Glue confirmed is remembered: a table as `GetTable` returned it
//! or as `CreateTable`/`UpdateTable` accepted it, and partitions that
//! `BatchGetPartition` found or `BatchCreatePartition` created (or answered
//! `AlreadyExistsException` for). A failed or unanswered call teaches nothing,
//! and a failed write makes the table unknown again.
//!
//! Staleness is bounded by the TTL: a table is trusted for `ttl` after Glue
//! last confirmed it, and a partition for `ttl` after it was confirmed, and
//! never longer than its table: when the table expires, everything known of it
//! goes. So a table or partition deleted out of band (by an operator, or by
//! another Lambda instance dropping an emptied partition: each instance has
//! its own cache) is seen again at most `ttl` later. Within that window an
//! object of a partition that another writer dropped is reported cataloged
//! while its partition is missing; the next object of that partition after the
//! window registers it again. A TTL of zero turns the cache off.
//!
//! This instance's own removals update the cache before the call is made, so
//! they are never stale here.
//!
//! Pure: time is passed in, nothing here calls AWS.

use crate::table::TableDefinition;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// `(database, table)`
pub type TableId = (String, String);

/// How long what Glue confirmed is trusted, unless configured otherwise.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);

/// At most this many partitions are remembered in all; past it they are all
/// forgotten (which costs Glue calls, never correctness). About 150 bytes each.
pub const MAX_KNOWN_PARTITIONS: usize = 50_000;

#[derive(Debug, Clone)]
struct KnownTable {
    definition: TableDefinition,
    confirmed_at: Instant,
    partitions: HashMap<Vec<String>, Instant>,
}

/// The catalog as this container last saw it.
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

    fn known_table(&self, id: &TableId, now: Instant) -> Option<&KnownTable> {
        self.tables
            .get(id)
            .filter(|known| self.fresh(known.confirmed_at, now))
    }

    /// The table as Glue last confirmed it, if that was less than `ttl` ago.
    pub fn table(&self, id: &TableId, now: Instant) -> Option<&TableDefinition> {
        self.known_table(id, now).map(|known| &known.definition)
    }

    /// Glue returned or accepted this definition of the table just now. The
    /// partitions known of it stay, each until its own expiry; those of an
    /// expired entry are dropped with it.
    pub fn confirm_table(&mut self, definition: TableDefinition, now: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        let id = (definition.database.clone(), definition.name.clone());
        let keep = self.known_table(&id, now).is_some();
        match self.tables.get_mut(&id) {
            Some(known) if keep => {
                known.definition = definition;
                known.confirmed_at = now;
            }
            _ => {
                self.tables.insert(
                    id,
                    KnownTable {
                        definition,
                        confirmed_at: now,
                        partitions: HashMap::new(),
                    },
                );
            }
        }
    }

    /// The table does not exist, or a write to it failed and its state is
    /// unknown: forget it and its partitions.
    pub fn forget_table(&mut self, id: &TableId) {
        self.tables.remove(id);
    }

    /// Whether the partition was confirmed to exist less than `ttl` ago (and
    /// its table too).
    pub fn partition_known(&self, id: &TableId, values: &[String], now: Instant) -> bool {
        self.known_table(id, now).is_some_and(|known| {
            known
                .partitions
                .get(values)
                .is_some_and(|&at| self.fresh(at, now))
        })
    }

    /// Glue confirmed these partitions exist. Ignored while the table itself
    /// is not known: a partition is never trusted longer than its table.
    pub fn confirm_partitions<'a>(
        &mut self,
        id: &TableId,
        values: impl IntoIterator<Item = &'a Vec<String>>,
        now: Instant,
    ) {
        if self.known_table(id, now).is_none() {
            return;
        }
        let known = self.tables.get_mut(id).expect("checked above");
        for v in values {
            known.partitions.insert(v.clone(), now);
        }
        if self.partition_count() > MAX_KNOWN_PARTITIONS {
            for known in self.tables.values_mut() {
                known.partitions.clear();
            }
        }
    }

    /// These partitions are being dropped (or their state is unknown).
    pub fn forget_partitions<'a>(
        &mut self,
        id: &TableId,
        values: impl IntoIterator<Item = &'a Vec<String>>,
    ) {
        if let Some(known) = self.tables.get_mut(id) {
            for v in values {
                known.partitions.remove(v);
            }
        }
    }

    /// Drop everything that has expired, so memory follows what is in use.
    pub fn prune(&mut self, now: Instant) {
        let ttl = self.ttl;
        let fresh = |at: Instant| now.saturating_duration_since(at) < ttl;
        self.tables.retain(|_, known| fresh(known.confirmed_at));
        for known in self.tables.values_mut() {
            known.partitions.retain(|_, &mut at| fresh(at));
        }
    }

    pub fn table_count(&self) -> usize {
        self.tables.len()
    }

    pub fn partition_count(&self) -> usize {
        self.tables.values().map(|t| t.partitions.len()).sum()
    }
}

/// Whether to ask Glue which of `unknown` partitions exist before creating
/// them. `BatchCreatePartition` answers `AlreadyExistsException` per entry for
/// those that exist, which is success, so it is the probe and the write in one
/// call — as long as one call holds them all. Beyond that, one
/// `BatchGetPartition` (1000 per call) can save the creations of the ones that
/// exist (100 per call), at the price of one call when none does.
pub fn probe_before_create(unknown: usize, table_created_now: bool) -> bool {
    !table_created_now && unknown > crate::api::MAX_CREATE_PARTITIONS
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

    fn p(v: &str) -> Vec<String> {
        vec![v.to_string()]
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
    fn partitions_are_known_only_with_their_table() {
        let t0 = Instant::now();
        let mut cache = CatalogCache::new(TTL);
        // No table known: nothing can be attached to it.
        cache.confirm_partitions(&id("t"), [&p("1")], t0);
        assert!(!cache.partition_known(&id("t"), &p("1"), t0));

        cache.confirm_table(table("t", &["a"]), t0);
        cache.confirm_partitions(&id("t"), [&p("1"), &p("2")], t0 + 10 * S);
        assert!(cache.partition_known(&id("t"), &p("1"), t0 + 10 * S));
        assert!(!cache.partition_known(&id("t"), &p("3"), t0 + 10 * S));
        assert!(!cache.partition_known(&id("u"), &p("1"), t0 + 10 * S));
        // The table expires first: its partitions go with it, although they
        // were confirmed later.
        assert!(!cache.partition_known(&id("t"), &p("1"), t0 + TTL));
    }

    #[test]
    fn a_table_read_again_keeps_partitions_until_their_own_expiry() {
        let t0 = Instant::now();
        let mut cache = CatalogCache::new(TTL);
        cache.confirm_table(table("t", &["a"]), t0);
        cache.confirm_partitions(&id("t"), [&p("1")], t0);
        // A new column made us read the table again later.
        cache.confirm_table(table("t", &["a", "b"]), t0 + 200 * S);
        assert_eq!(
            cache.table(&id("t"), t0 + 200 * S).unwrap().columns.len(),
            2
        );
        assert!(cache.partition_known(&id("t"), &p("1"), t0 + 250 * S));
        // The table is trusted until t0+500s, the partition only until t0+300s.
        assert!(cache.table(&id("t"), t0 + TTL).is_some());
        assert!(!cache.partition_known(&id("t"), &p("1"), t0 + TTL));
    }

    #[test]
    fn an_expired_table_confirmed_again_starts_without_partitions() {
        let t0 = Instant::now();
        let mut cache = CatalogCache::new(TTL);
        cache.confirm_table(table("t", &["a"]), t0);
        cache.confirm_partitions(&id("t"), [&p("1")], t0 + 100 * S);
        // Expired, then read again (it may have been dropped and recreated).
        cache.confirm_table(table("t", &["a"]), t0 + TTL + S);
        assert!(!cache.partition_known(&id("t"), &p("1"), t0 + TTL + S));
    }

    #[test]
    fn forgetting_tables_and_partitions() {
        let t0 = Instant::now();
        let mut cache = CatalogCache::new(TTL);
        cache.confirm_table(table("t", &["a"]), t0);
        cache.confirm_partitions(&id("t"), [&p("1"), &p("2")], t0);
        cache.forget_partitions(&id("t"), [&p("1")]);
        assert!(!cache.partition_known(&id("t"), &p("1"), t0));
        assert!(cache.partition_known(&id("t"), &p("2"), t0));
        cache.forget_table(&id("t"));
        assert!(cache.table(&id("t"), t0).is_none());
        assert!(!cache.partition_known(&id("t"), &p("2"), t0));
        // Confirmed again, it does not come back with old partitions.
        cache.confirm_table(table("t", &["a"]), t0);
        assert!(!cache.partition_known(&id("t"), &p("2"), t0));
    }

    #[test]
    fn a_zero_ttl_remembers_nothing() {
        let t0 = Instant::now();
        let mut cache = CatalogCache::disabled();
        cache.confirm_table(table("t", &["a"]), t0);
        cache.confirm_partitions(&id("t"), [&p("1")], t0);
        assert!(cache.table(&id("t"), t0).is_none());
        assert!(!cache.partition_known(&id("t"), &p("1"), t0));
        assert_eq!(cache.table_count(), 0);
    }

    #[test]
    fn pruning_drops_what_expired() {
        let t0 = Instant::now();
        let mut cache = CatalogCache::new(TTL);
        cache.confirm_table(table("old", &["a"]), t0);
        cache.confirm_table(table("new", &["a"]), t0 + 100 * S);
        cache.confirm_partitions(&id("new"), [&p("1")], t0 + 100 * S);
        cache.confirm_table(table("new", &["a"]), t0 + 250 * S);
        cache.confirm_partitions(&id("new"), [&p("2")], t0 + 250 * S);
        cache.prune(t0 + 450 * S);
        assert_eq!(cache.table_count(), 1);
        assert_eq!(cache.partition_count(), 1);
        assert!(cache.partition_known(&id("new"), &p("2"), t0 + 450 * S));
    }

    #[test]
    fn the_partition_count_is_bounded() {
        let t0 = Instant::now();
        let mut cache = CatalogCache::new(TTL);
        cache.confirm_table(table("t", &["a"]), t0);
        let many: Vec<Vec<String>> = (0..MAX_KNOWN_PARTITIONS)
            .map(|i| p(&i.to_string()))
            .collect();
        cache.confirm_partitions(&id("t"), &many, t0);
        assert_eq!(cache.partition_count(), MAX_KNOWN_PARTITIONS);
        cache.confirm_partitions(&id("t"), [&p("one more")], t0);
        assert_eq!(
            cache.partition_count(),
            0,
            "over the bound, all are forgotten"
        );
        assert!(cache.table(&id("t"), t0).is_some(), "tables stay");
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
        ConfirmPartition(u8, u8),
        ForgetPartition(u8, u8),
        Prune,
        Wait(u16),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..3, 0u8..3).prop_map(|(t, c)| Op::ConfirmTable(t, c)),
            (0u8..3).prop_map(Op::ForgetTable),
            (0u8..3, 0u8..4).prop_map(|(t, v)| Op::ConfirmPartition(t, v)),
            (0u8..3, 0u8..4).prop_map(|(t, v)| Op::ForgetPartition(t, v)),
            Just(Op::Prune),
            (0u16..400).prop_map(Op::Wait),
        ]
    }

    proptest! {
        /// Against a model that records when each fact was last confirmed (and
        /// when it was invalidated): the cache never claims what Glue did not
        /// confirm within the TTL, nor a partition confirmed before its
        /// table's current confirmation run started.
        #[test]
        fn never_trusts_what_was_not_confirmed_within_the_ttl(
            ops in proptest::collection::vec(op(), 1..60),
            ttl_secs in 0u64..400,
        ) {
            let ttl = Duration::from_secs(ttl_secs);
            let t0 = Instant::now();
            let mut now = t0;
            let mut cache = CatalogCache::new(ttl);
            // Model: table → (confirmed at, columns, partitions → confirmed at).
            type Model = HashMap<u8, (Instant, u8, HashMap<u8, Instant>)>;
            let mut model: Model = HashMap::new();
            let fresh = |at: Instant, now: Instant| now.saturating_duration_since(at) < ttl;
            let name = |t: u8| format!("t{t}");
            for op in ops {
                match op {
                    Op::ConfirmTable(t, c) => {
                        let columns: Vec<String> = (0..=c).map(|i| format!("c{i}")).collect();
                        let refs: Vec<&str> = columns.iter().map(String::as_str).collect();
                        cache.confirm_table(table(&name(t), &refs), now);
                        let keep = model.get(&t).is_some_and(|(at, _, _)| fresh(*at, now));
                        let partitions = if keep { model.remove(&t).unwrap().2 } else { HashMap::new() };
                        if !ttl.is_zero() {
                            model.insert(t, (now, c, partitions));
                        }
                    }
                    Op::ForgetTable(t) => {
                        cache.forget_table(&id(&name(t)));
                        model.remove(&t);
                    }
                    Op::ConfirmPartition(t, v) => {
                        cache.confirm_partitions(&id(&name(t)), [&p(&v.to_string())], now);
                        if let Some((at, _, parts)) = model.get_mut(&t) {
                            if fresh(*at, now) {
                                parts.insert(v, now);
                            }
                        }
                    }
                    Op::ForgetPartition(t, v) => {
                        cache.forget_partitions(&id(&name(t)), [&p(&v.to_string())]);
                        if let Some((_, _, parts)) = model.get_mut(&t) {
                            parts.remove(&v);
                        }
                    }
                    Op::Prune => cache.prune(now),
                    Op::Wait(secs) => now += Duration::from_secs(u64::from(secs)),
                }
                for t in 0u8..3 {
                    let expected = model.get(&t).filter(|(at, _, _)| fresh(*at, now));
                    let got = cache.table(&id(&name(t)), now);
                    prop_assert_eq!(got.map(|d| d.columns.len()), expected.map(|(_, c, _)| usize::from(*c) + 1));
                    for v in 0u8..4 {
                        let expected_known = expected
                            .and_then(|(_, _, parts)| parts.get(&v))
                            .is_some_and(|at| fresh(*at, now));
                        prop_assert_eq!(
                            cache.partition_known(&id(&name(t)), &p(&v.to_string()), now),
                            expected_known,
                            "table {} partition {}", t, v
                        );
                    }
                }
            }
        }
    }
}
