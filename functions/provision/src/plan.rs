//! The plan: given what the spec wants and what exists, what to do. Pure.
//!
//! Each resource a stage manages is described by a [`Desired`] (its
//! deterministic name, the body that creates it and the fields that must
//! match) and, when found by that name, an [`Observed`]. [`decide`] compares
//! the two for the run's [`Mode`]; the stage runner carries the decision out
//! (`apply`), only reports it (`plan`), or removes what lakeops owns (`destroy`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Plan,
    #[default]
    Apply,
    Destroy,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Plan => "plan",
            Mode::Apply => "apply",
            Mode::Destroy => "destroy",
        }
    }
}

/// What a change does, as reported in a stage's response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Delete,
    None,
}

/// One resource's change, made (`apply`, `destroy`) or that would be made (`plan`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub action: Action,
    /// `kind/name`, e.g. `credentials/lakeops-dev-credentials`.
    pub resource: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Fields that differ from the spec (updated, or left alone as drift).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// Why: `adopted`, `drift: cannot be updated in place`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Change {
    pub fn new(action: Action, kind: &str, name: &str) -> Self {
        Self {
            action,
            resource: format!("{kind}/{name}"),
            id: None,
            fields: Vec::new(),
            note: None,
        }
    }

    pub fn with_id(mut self, id: Option<String>) -> Self {
        self.id = id;
        self
    }

    pub fn with_fields(mut self, fields: Vec<String>) -> Self {
        self.fields = fields;
        self
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }
}

/// How an existing resource may be changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Updatable {
    /// The API can update the compared fields in place.
    Yes,
    /// The API cannot: differences are drift, reported and left alone.
    No,
    /// The API can update every compared field except these (top-level keys).
    Except(&'static [&'static str]),
}

impl Updatable {
    fn can_update(self, field: &str) -> bool {
        let top = field.split(['.', '[']).next().unwrap_or(field);
        match self {
            Updatable::Yes => true,
            Updatable::No => false,
            Updatable::Except(fixed) => !fixed.contains(&top),
        }
    }
}

/// What the spec wants of one resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub kind: &'static str,
    pub name: String,
    /// The fields that must match on an existing resource (a subset of its JSON).
    pub compare: Value,
    pub updatable: Updatable,
}

/// A resource found under its deterministic name (or by the id the spec gave).
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub id: String,
    pub value: Value,
    /// Created by lakeops (found under lakeops' own name), as opposed to
    /// adopted (an existing resource the spec told lakeops to use).
    pub owned: bool,
}

/// What to do with one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Create,
    /// Exists and matches.
    Keep,
    /// Exists and differs in `update`, which the API can update; `drift`
    /// lists the differing fields it cannot update (left alone).
    Update {
        update: Vec<String>,
        drift: Vec<String>,
    },
    /// Exists and differs in fields the API cannot update: report, leave alone.
    Drift(Vec<String>),
    /// `destroy`: remove it.
    Delete,
    /// `destroy`: nothing to remove.
    Absent,
    /// `destroy`: adopted, so left alone.
    LeaveAdopted,
}

/// Decide what to do with one resource. Pure.
pub fn decide(
    mode: Mode,
    desired: &Desired,
    observed: Option<&Observed>,
    include_adopted: bool,
) -> Decision {
    match (mode, observed) {
        (Mode::Destroy, None) => Decision::Absent,
        (Mode::Destroy, Some(found)) if found.owned || include_adopted => Decision::Delete,
        (Mode::Destroy, Some(_)) => Decision::LeaveAdopted,
        (_, None) => Decision::Create,
        (_, Some(found)) => {
            let differing = differing_fields(&desired.compare, &found.value);
            let (update, drift): (Vec<String>, Vec<String>) = differing
                .into_iter()
                .partition(|f| desired.updatable.can_update(f));
            match (update.is_empty(), drift.is_empty()) {
                (true, true) => Decision::Keep,
                (true, false) => Decision::Drift(drift),
                (false, _) => Decision::Update { update, drift },
            }
        }
    }
}

/// The change to report for a decision.
pub fn change_for(decision: &Decision, desired: &Desired, observed: Option<&Observed>) -> Change {
    let id = observed.map(|o| o.id.clone());
    let base = |action| Change::new(action, desired.kind, &desired.name).with_id(id.clone());
    let adopted = observed.is_some_and(|o| !o.owned);
    match decision {
        Decision::Create => base(Action::Create),
        Decision::Keep if adopted => base(Action::None).with_note("adopted"),
        Decision::Keep => base(Action::None),
        Decision::Update { update, drift } if drift.is_empty() => {
            base(Action::Update).with_fields(update.clone())
        }
        Decision::Update { update, drift } => base(Action::Update)
            .with_fields(update.clone())
            .with_note(format!(
                "drift left alone (the API cannot update): {}",
                drift.join(", ")
            )),
        Decision::Drift(fields) => base(Action::None)
            .with_fields(fields.clone())
            .with_note("drift: the API cannot update these fields; left alone"),
        Decision::Delete => base(Action::Delete),
        Decision::Absent => base(Action::None).with_note("absent"),
        Decision::LeaveAdopted => {
            base(Action::None).with_note("adopted; left alone (destroy.include_adopted is false)")
        }
    }
}

/// The paths of the fields of `desired` that `observed` lacks or holds with
/// another value. Objects are compared key by key (extra observed keys are
/// fine: the API adds ids and defaults); arrays of scalars as sets (the API
/// may reorder subnet ids); other arrays element by element; numbers by value.
pub fn differing_fields(desired: &Value, observed: &Value) -> Vec<String> {
    let mut out = Vec::new();
    diff_into(desired, observed, "", &mut out);
    out
}

fn diff_into(desired: &Value, observed: &Value, path: &str, out: &mut Vec<String>) {
    let child = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match (desired, observed) {
        (Value::Object(want), Value::Object(have)) => {
            for (key, value) in want {
                match have.get(key) {
                    Some(found) => diff_into(value, found, &child(key), out),
                    // A desired null means "absent"; absent is fine.
                    None if value.is_null() => {}
                    None => out.push(child(key)),
                }
            }
        }
        (Value::Array(want), Value::Array(have))
            if want.iter().all(is_scalar) && have.iter().all(is_scalar) =>
        {
            let same = want.len() == have.len()
                && want.iter().all(|w| have.iter().any(|h| scalar_eq(w, h)))
                && have.iter().all(|h| want.iter().any(|w| scalar_eq(w, h)));
            if !same {
                out.push(path.to_string());
            }
        }
        (Value::Array(want), Value::Array(have)) => {
            if want.len() != have.len() {
                out.push(path.to_string());
            } else {
                for (i, (w, h)) in want.iter().zip(have).enumerate() {
                    diff_into(w, h, &format!("{path}[{i}]"), out);
                }
            }
        }
        (w, h) if is_scalar(w) && is_scalar(h) => {
            if !scalar_eq(w, h) {
                out.push(path.to_string());
            }
        }
        _ => out.push(path.to_string()),
    }
}

fn is_scalar(value: &Value) -> bool {
    !matches!(value, Value::Array(_) | Value::Object(_))
}

fn scalar_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn desired(compare: Value, updatable: Updatable) -> Desired {
        Desired {
            kind: "network",
            name: "lakeops-dev-network".into(),
            compare,
            updatable,
        }
    }

    fn observed(value: Value, owned: bool) -> Observed {
        Observed {
            id: "n-1".into(),
            value,
            owned,
        }
    }

    #[test]
    fn creates_what_is_missing_and_keeps_what_matches() {
        let d = desired(
            json!({"vpc_id": "vpc-1", "subnet_ids": ["a", "b"]}),
            Updatable::No,
        );
        assert_eq!(decide(Mode::Apply, &d, None, false), Decision::Create);
        assert_eq!(decide(Mode::Plan, &d, None, false), Decision::Create);
        let same = observed(
            json!({"vpc_id": "vpc-1", "subnet_ids": ["b", "a"], "network_id": "n-1"}),
            true,
        );
        assert_eq!(decide(Mode::Apply, &d, Some(&same), false), Decision::Keep);
        let change = change_for(&Decision::Keep, &d, Some(&same));
        assert_eq!(change.action, Action::None);
        assert_eq!(change.resource, "network/lakeops-dev-network");
        assert_eq!(change.id.as_deref(), Some("n-1"));
    }

    #[test]
    fn updates_or_reports_drift() {
        let found = observed(json!({"vpc_id": "vpc-2", "subnet_ids": ["a", "b"]}), true);
        let d = desired(
            json!({"vpc_id": "vpc-1", "subnet_ids": ["a", "b"]}),
            Updatable::No,
        );
        let decision = decide(Mode::Apply, &d, Some(&found), false);
        assert_eq!(decision, Decision::Drift(vec!["vpc_id".into()]));
        let change = change_for(&decision, &d, Some(&found));
        assert_eq!(change.action, Action::None);
        assert!(change.note.unwrap().starts_with("drift"));
        let d = desired(json!({"vpc_id": "vpc-1"}), Updatable::Yes);
        assert_eq!(
            decide(Mode::Apply, &d, Some(&found), false),
            Decision::Update {
                update: vec!["vpc_id".into()],
                drift: vec![]
            }
        );
        let found = observed(json!({"region": "eu-west-1", "network_id": "n-2"}), true);
        let d = desired(
            json!({"region": "us-east-1", "network_id": "n-1"}),
            Updatable::Except(&["region"]),
        );
        let decision = decide(Mode::Apply, &d, Some(&found), false);
        assert_eq!(
            decision,
            Decision::Update {
                update: vec!["network_id".into()],
                drift: vec!["region".into()]
            }
        );
        let change = change_for(&decision, &d, Some(&found));
        assert_eq!(change.action, Action::Update);
        assert!(change.note.unwrap().contains("region"));
        let found = observed(json!({"region": "eu-west-1", "network_id": "n-1"}), true);
        assert_eq!(
            decide(Mode::Apply, &d, Some(&found), false),
            Decision::Drift(vec!["region".into()])
        );
    }

    #[test]
    fn destroy_removes_only_what_lakeops_owns() {
        let d = desired(json!({}), Updatable::No);
        assert_eq!(decide(Mode::Destroy, &d, None, false), Decision::Absent);
        assert_eq!(
            decide(Mode::Destroy, &d, Some(&observed(json!({}), true)), false),
            Decision::Delete
        );
        assert_eq!(
            decide(Mode::Destroy, &d, Some(&observed(json!({}), false)), false),
            Decision::LeaveAdopted
        );
        assert_eq!(
            decide(Mode::Destroy, &d, Some(&observed(json!({}), false)), true),
            Decision::Delete
        );
    }

    #[test]
    fn field_paths_are_nested() {
        let want = json!({"aws_key_info": {"key_arn": "k1", "reuse": true}, "use_cases": ["STORAGE"], "n": 20});
        let have = json!({"aws_key_info": {"key_arn": "k2"}, "use_cases": ["STORAGE"], "n": 20.0});
        assert_eq!(
            differing_fields(&want, &have),
            vec!["aws_key_info.key_arn", "aws_key_info.reuse"]
        );
        assert_eq!(
            differing_fields(&json!({"a": null}), &json!({})),
            Vec::<String>::new()
        );
        assert_eq!(
            differing_fields(&json!({"a": [{"x": 1}]}), &json!({"a": [{"x": 2}]})),
            vec!["a[0].x"]
        );
        assert_eq!(
            differing_fields(&json!({"a": {"x": 1}}), &json!({"a": "text"})),
            vec!["a"]
        );
    }

    #[test]
    fn changes_serialise_compactly() {
        let change = Change::new(Action::Create, "workspace", "lakeops-dev");
        assert_eq!(
            serde_json::to_value(&change).unwrap(),
            json!({"action": "create", "resource": "workspace/lakeops-dev"})
        );
        let mode: Mode = serde_json::from_value(json!("destroy")).unwrap();
        assert_eq!(mode, Mode::Destroy);
        assert!(serde_json::from_value::<Mode>(json!("teardown")).is_err());
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(|n| json!(n)),
            "[a-z0-9]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map("[a-z]{1,4}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn a_value_never_differs_from_itself(value in json_value()) {
            prop_assert!(differing_fields(&value, &value).is_empty());
        }

        #[test]
        fn extra_observed_fields_never_count(
            want in proptest::collection::btree_map("[a-m]{1,3}", json_value(), 0..5),
            extra in proptest::collection::btree_map("[n-z]{1,3}", json_value(), 0..5),
        ) {
            let desired = Value::Object(want.clone().into_iter().collect());
            let mut have = want;
            have.extend(extra);
            prop_assert!(differing_fields(&desired, &Value::Object(have.into_iter().collect())).is_empty());
        }

        #[test]
        fn a_changed_field_is_reported_by_its_path(
            want in proptest::collection::btree_map("[a-z]{1,3}", "[a-z]{1,4}", 1..6),
            pick in any::<prop::sample::Index>(),
        ) {
            let key = pick.get(&want.keys().cloned().collect::<Vec<_>>()).clone();
            let desired = json!({"outer": want.clone()});
            let mut changed = want.clone();
            changed.insert(key.clone(), "CHANGED".to_string());
            let observed = json!({"outer": changed});
            prop_assert_eq!(differing_fields(&desired, &observed), vec![format!("outer.{key}")]);
        }

        #[test]
        fn apply_then_plan_again_is_a_no_op(compare in json_value(), updatable in any::<bool>()) {
            // After a create, the API returns at least what was asked for: the
            // next run must decide Keep.
            let d = Desired {
                kind: "k",
                name: "n".into(),
                compare: compare.clone(),
                updatable: if updatable { Updatable::Yes } else { Updatable::Except(&["a"]) },
            };
            let found = Observed { id: "1".into(), value: compare, owned: true };
            prop_assert_eq!(decide(Mode::Apply, &d, Some(&found), false), Decision::Keep);
            prop_assert_eq!(decide(Mode::Plan, &d, Some(&found), false), Decision::Keep);
        }
    }
}
