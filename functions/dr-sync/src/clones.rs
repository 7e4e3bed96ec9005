//! The clone stages run many DEEP CLONEs at once on the secondary's warehouse without
//! ever waiting inside a Lambda: each invocation polls the statements in flight,
//! records the finished ones, submits more up to `concurrency`, and returns; the
//! state machine waits and calls again until the queue is empty. This module is that
//! decision, pure, so its guarantees are tested exhaustively: never more than
//! `concurrency` in flight, each clone submitted once per run and settled exactly once,
//! and a failed clone fails only itself.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

/// What the Statement Execution API says about a submitted statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StatementState {
    Pending,
    Running,
    Succeeded,
    Failed { error: String },
    Canceled,
    Closed,
}

impl StatementState {
    pub fn is_terminal(&self) -> bool {
        !matches!(self, StatementState::Pending | StatementState::Running)
    }
}

/// The progress of one clone stage, carried between invocations (in the run's state
/// object in S3: a 1,000-table queue does not fit a Step Functions payload).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloneQueue {
    /// Objects not submitted yet, in plan order.
    pub pending: VecDeque<String>,
    /// object -> objects of this queue that must succeed before it is submitted (a
    /// view after the views it reads). Empty for clones, which are independent.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub after: BTreeMap<String, Vec<String>>,
    /// object -> statement id
    pub in_flight: BTreeMap<String, String>,
    pub succeeded: Vec<String>,
    /// object -> error
    pub failed: BTreeMap<String, String>,
}

/// One invocation's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Objects to submit now, in order.
    pub submit: Vec<String>,
    /// True when nothing is pending or in flight: the stage is done.
    pub done: bool,
}

impl CloneQueue {
    pub fn new(objects: impl IntoIterator<Item = String>) -> CloneQueue {
        CloneQueue {
            pending: objects.into_iter().collect(),
            ..CloneQueue::default()
        }
    }

    /// Settles the statements that finished (`states` has what polling returned; an
    /// in-flight statement missing from it is still running, e.g. a poll that failed),
    /// then takes from `pending` up to `concurrency` in flight.
    pub fn step(&mut self, states: &BTreeMap<String, StatementState>, concurrency: usize) -> Step {
        let finished: Vec<(String, StatementState)> = self
            .in_flight
            .iter()
            .filter_map(|(object, id)| {
                states
                    .get(id)
                    .filter(|s| s.is_terminal())
                    .map(|s| (object.clone(), s.clone()))
            })
            .collect();
        for (object, state) in finished {
            self.in_flight.remove(&object);
            match state {
                // CLOSED: "execution successful, and statement closed; result no
                // longer available" (the SDK's StatementState) — polled late, it ran.
                StatementState::Succeeded | StatementState::Closed => self.succeeded.push(object),
                StatementState::Failed { error } => {
                    self.failed.insert(object, error);
                }
                // Cancelled (by a person, or by the warehouse stopping): the
                // statement did not happen.
                other => {
                    self.failed
                        .insert(object, format!("the clone statement ended {other:?}"));
                }
            }
        }
        self.fail_orphans();
        let room = concurrency.max(1).saturating_sub(self.in_flight.len());
        let members = self.members();
        let mut submit = Vec::new();
        let mut waiting = VecDeque::new();
        while let Some(object) = self.pending.pop_front() {
            if submit.len() < room && self.deps_succeeded(&object, &members) {
                submit.push(object);
            } else {
                waiting.push_back(object);
            }
        }
        self.pending = waiting;
        Step {
            done: submit.is_empty() && self.in_flight.is_empty() && self.pending.is_empty(),
            submit,
        }
    }

    /// A queue whose items depend on each other, in an order that respects `after`.
    pub fn ordered(
        objects: impl IntoIterator<Item = String>,
        after: BTreeMap<String, Vec<String>>,
    ) -> CloneQueue {
        CloneQueue {
            after,
            ..CloneQueue::new(objects)
        }
    }

    /// A dependency outside this queue (a table, or a view that is already there) does
    /// not hold an item back.
    fn deps_succeeded(&self, object: &str, members: &BTreeSet<String>) -> bool {
        self.after.get(object).is_none_or(|deps| {
            deps.iter()
                .all(|d| self.succeeded.contains(d) || !members.contains(d))
        })
    }

    /// Every item of this queue, whatever its state.
    fn members(&self) -> BTreeSet<String> {
        self.pending
            .iter()
            .chain(self.in_flight.keys())
            .chain(self.failed.keys())
            .chain(self.succeeded.iter())
            .cloned()
            .collect()
    }

    /// Pending items that depend on a failed one can never run: they fail too, naming it.
    fn fail_orphans(&mut self) {
        loop {
            let orphan = self.pending.iter().enumerate().find_map(|(i, object)| {
                let failed_dep = self
                    .after
                    .get(object)?
                    .iter()
                    .find(|d| self.failed.contains_key(*d))?;
                Some((i, object.clone(), failed_dep.clone()))
            });
            let Some((i, object, dep)) = orphan else {
                return;
            };
            self.pending.remove(i);
            self.failed.insert(
                object,
                format!("not created: it depends on {dep}, which failed"),
            );
        }
    }

    /// Records a submitted statement; a submission that failed outright (the API
    /// refused it) fails its object at once.
    pub fn submitted(&mut self, object: String, result: Result<String, String>) {
        match result {
            Ok(statement_id) => {
                self.in_flight.insert(object, statement_id);
            }
            Err(error) => {
                self.failed.insert(object, error);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn dependent_items_wait_for_their_dependencies_and_fail_with_them() {
        let after = BTreeMap::from([
            ("top".to_string(), vec!["mid".to_string()]),
            (
                "mid".to_string(),
                vec!["base".to_string(), "outside".to_string()],
            ),
            ("other".to_string(), vec!["bad".to_string()]),
        ]);
        let order = ["base", "mid", "top", "bad", "other"].map(String::from);
        let mut q = CloneQueue::ordered(order, after);
        let s = q.step(&BTreeMap::new(), 10);
        assert_eq!(s.submit, ["base", "bad"]);
        q.submitted("base".into(), Ok("1".into()));
        q.submitted("bad".into(), Ok("2".into()));
        let states = BTreeMap::from([
            ("1".to_string(), StatementState::Succeeded),
            (
                "2".to_string(),
                StatementState::Failed { error: "x".into() },
            ),
        ]);
        let s = q.step(&states, 10);
        assert_eq!(s.submit, ["mid"]);
        assert_eq!(
            q.failed["other"],
            "not created: it depends on bad, which failed"
        );
    }

    #[test]
    fn fills_to_concurrency_then_refills_as_clones_finish() {
        let mut q = CloneQueue::new((0..5).map(|i| format!("t{i}")));
        let s = q.step(&BTreeMap::new(), 2);
        assert_eq!(s.submit, ["t0", "t1"]);
        for o in s.submit {
            let id = format!("id-{o}");
            q.submitted(o, Ok(id));
        }
        let states = BTreeMap::from([
            ("id-t0".to_string(), StatementState::Succeeded),
            ("id-t1".to_string(), StatementState::Running),
        ]);
        let s = q.step(&states, 2);
        assert_eq!(s.submit, ["t2"]);
        assert!(!s.done);
        q.submitted("t2".into(), Err("warehouse refused".into()));
        let s = q.step(&BTreeMap::new(), 2);
        assert_eq!(s.submit, ["t3"]);
        assert_eq!(q.failed["t2"], "warehouse refused");
    }

    /// A simulated warehouse: each statement finishes after `ticks[i]` polls, failing
    /// when `fails[i]`.
    fn run(
        n: usize,
        concurrency: usize,
        ticks: &[u8],
        fails: &[bool],
    ) -> (CloneQueue, usize, usize) {
        run_with(
            CloneQueue::new((0..n).map(|i| format!("t{i}"))),
            concurrency,
            ticks,
            fails,
        )
    }

    fn run_with(
        mut q: CloneQueue,
        concurrency: usize,
        ticks: &[u8],
        fails: &[bool],
    ) -> (CloneQueue, usize, usize) {
        let after = q.after.clone();
        let mut age: BTreeMap<String, u8> = BTreeMap::new();
        let mut submissions = 0;
        let mut max_in_flight = 0;
        for _round in 0..10_000 {
            let states: BTreeMap<String, StatementState> = age
                .iter()
                .map(|(id, a)| {
                    let i: usize = id[1..].parse().unwrap();
                    let state = if *a < ticks[i % ticks.len()] {
                        StatementState::Running
                    } else if fails[i % fails.len()] {
                        StatementState::Failed {
                            error: format!("boom {i}"),
                        }
                    } else {
                        StatementState::Succeeded
                    };
                    (id.clone(), state)
                })
                .collect();
            let step = q.step(&states, concurrency);
            if step.done {
                return (q, submissions, max_in_flight);
            }
            for o in step.submit {
                for dep in after.get(&o).into_iter().flatten() {
                    assert!(
                        q.succeeded.contains(dep),
                        "{o} submitted before {dep} succeeded"
                    );
                }
                submissions += 1;
                age.insert(o.clone(), 0);
                q.submitted(o.clone(), Ok(o));
            }
            max_in_flight = max_in_flight.max(q.in_flight.len());
            for a in age.values_mut() {
                *a = a.saturating_add(1);
            }
        }
        panic!("the queue never finished");
    }

    proptest! {
        #[test]
        fn every_clone_is_submitted_once_and_settled_once(
            n in 0usize..60,
            concurrency in 1usize..10,
            ticks in prop::collection::vec(0u8..5, 1..8),
            fails in prop::collection::vec(any::<bool>(), 1..8),
        ) {
            let (q, submissions, max_in_flight) = run(n, concurrency, &ticks, &fails);
            prop_assert_eq!(submissions, n);
            prop_assert!(max_in_flight <= concurrency);
            prop_assert!(q.in_flight.is_empty() && q.pending.is_empty());
            prop_assert_eq!(q.succeeded.len() + q.failed.len(), n);
            for object in q.failed.keys() {
                let i: usize = object[1..].parse().unwrap();
                prop_assert!(fails[i % fails.len()], "{} failed but should not", object);
                prop_assert!(!q.succeeded.contains(object));
            }
        }
    }

    proptest! {
        #[test]
        fn dependent_items_run_after_their_dependencies_or_fail_with_them(
            n in 1usize..30,
            concurrency in 1usize..6,
            edges in prop::collection::vec((0usize..30, 0usize..30), 0..40),
            fails in prop::collection::vec(any::<bool>(), 1..5),
        ) {
            // Only edges to earlier items: a DAG, as views::creation_order guarantees.
            let mut after: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for (a, b) in edges {
                let (a, b) = (a % n, b % n);
                if b < a {
                    after.entry(format!("t{a}")).or_default().push(format!("t{b}"));
                }
            }
            let q = CloneQueue::ordered((0..n).map(|i| format!("t{i}")), after.clone());
            let (q, submissions, _) = run_with(q, concurrency, &[1, 0, 2], &fails);
            prop_assert_eq!(q.succeeded.len() + q.failed.len(), n);
            prop_assert!(submissions <= n);
            for (object, deps) in &after {
                if q.succeeded.contains(object) {
                    for d in deps {
                        prop_assert!(q.succeeded.contains(d));
                    }
                }
            }
        }
    }
}
