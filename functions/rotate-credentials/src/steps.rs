//! The Secrets Manager rotation contract, as pure decisions.
//!
//! Secrets Manager calls the function four times per rotation, with the same
//! `ClientRequestToken`: the id of the new version, which it has already
//! staged `AWSPENDING` (without a value). It retries whole rotations, so every
//! step must be safe to run again, and a step for a version that is already
//! `AWSCURRENT` has nothing left to do.

use lakeops_shared::validate::Problems;
use lakeops_shared::Error;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

pub const AWSCURRENT: &str = "AWSCURRENT";
pub const AWSPENDING: &str = "AWSPENDING";
pub const AWSPREVIOUS: &str = "AWSPREVIOUS";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    Create,
    Set,
    Test,
    Finish,
}

impl Step {
    pub const ALL: [Step; 4] = [Step::Create, Step::Set, Step::Test, Step::Finish];

    pub fn parse(name: &str) -> Option<Step> {
        match name {
            "createSecret" => Some(Step::Create),
            "setSecret" => Some(Step::Set),
            "testSecret" => Some(Step::Test),
            "finishSecret" => Some(Step::Finish),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Step::Create => "createSecret",
            Step::Set => "setSecret",
            Step::Test => "testSecret",
            Step::Finish => "finishSecret",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The event Secrets Manager sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationEvent {
    pub step: Step,
    pub secret_id: String,
    pub client_request_token: String,
}

impl RotationEvent {
    /// Read `Step`, `SecretId` and `ClientRequestToken`, naming every problem.
    pub fn from_json(value: &Value) -> Result<RotationEvent, Problems> {
        let mut problems = Problems::new();
        let mut text = |name: &str| match value.get(name) {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            Some(Value::String(_)) | None | Some(Value::Null) => {
                problems.add(name, "is required");
                String::new()
            }
            Some(_) => {
                problems.add(name, "must be a string");
                String::new()
            }
        };
        let step_name = text("Step");
        let secret_id = text("SecretId");
        let client_request_token = text("ClientRequestToken");
        let step = Step::parse(&step_name);
        if step.is_none() && !step_name.is_empty() {
            let shown: String = step_name.chars().take(40).collect();
            problems.add(
                "Step",
                format!("unknown step `{shown}` (expected createSecret, setSecret, testSecret or finishSecret)"),
            );
        }
        problems.into_result()?;
        Ok(RotationEvent {
            step: step.expect("checked above"),
            secret_id,
            client_request_token,
        })
    }
}

/// What `DescribeSecret` says about a secret.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretMetadata {
    pub rotation_enabled: bool,
    /// Version id -> staging labels.
    pub versions: BTreeMap<String, Vec<String>>,
}

impl SecretMetadata {
    /// The version that carries `stage`, if any.
    pub fn version_with(&self, stage: &str) -> Option<&str> {
        self.versions
            .iter()
            .find(|(_, stages)| stages.iter().any(|s| s == stage))
            .map(|(id, _)| id.as_str())
    }

    pub fn has_stage(&self, version: &str, stage: &str) -> bool {
        self.versions
            .get(version)
            .is_some_and(|stages| stages.iter().any(|s| s == stage))
    }
}

/// What a step has to do, decided from the version stages alone (plus, for the
/// first three steps, whether the pending version already has a value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// createSecret: issue a new credential and store it as the pending value.
    CreatePending,
    /// setSecret: check the stored pending value. The issuer (Databricks,
    /// IAM) made the credential in createSecret, so there is nothing to push.
    CheckPending,
    /// testSecret: prove the pending credential works.
    TestPending,
    /// finishSecret: move `AWSCURRENT` from `current_version` to the token,
    /// drop `AWSPENDING`, then retire the previous credential.
    Finish { current_version: String },
    /// finishSecret of a version that is already current: a retry of a finish
    /// that may have stopped before retiring the previous credential. Retiring
    /// is idempotent, so it is done again.
    RetirePrevious { remove_pending_label: bool },
    /// Nothing to do; the reason is logged.
    Nothing(&'static str),
}

/// Decide what `step` does for version `token`, following the official
/// rotation rules. Errors change nothing and say what is wrong.
pub fn decide(
    step: Step,
    token: &str,
    metadata: &SecretMetadata,
    pending_has_value: bool,
) -> Result<Action, Error> {
    if !metadata.rotation_enabled {
        return Err(Error::invalid_input(
            "rotation is not enabled for this secret",
        ));
    }
    let Some(stages) = metadata.versions.get(token) else {
        return Err(Error::invalid_input(format!(
            "ClientRequestToken {token} is not a version of this secret"
        )));
    };
    let current = stages.iter().any(|s| s == AWSCURRENT);
    let pending = stages.iter().any(|s| s == AWSPENDING);
    if current {
        return Ok(match step {
            Step::Finish => Action::RetirePrevious {
                remove_pending_label: pending,
            },
            _ => Action::Nothing("the version is already AWSCURRENT"),
        });
    }
    if !pending {
        return Err(Error::invalid_input(format!(
            "version {token} is not staged AWSPENDING for rotation"
        )));
    }
    let Some(current_version) = metadata.version_with(AWSCURRENT) else {
        return Err(Error::terminal(
            "the secret has no AWSCURRENT version to rotate from",
        ));
    };
    Ok(match step {
        Step::Create if pending_has_value => {
            Action::Nothing("the pending version already has a value")
        }
        Step::Create => Action::CreatePending,
        Step::Set | Step::Test | Step::Finish if !pending_has_value => {
            return Err(Error::terminal(format!(
                "{step}: the pending version {token} has no value yet; createSecret must run first"
            )))
        }
        Step::Set => Action::CheckPending,
        Step::Test => Action::TestPending,
        Step::Finish => Action::Finish {
            current_version: current_version.to_string(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn metadata(enabled: bool, versions: &[(&str, &[&str])]) -> SecretMetadata {
        SecretMetadata {
            rotation_enabled: enabled,
            versions: versions
                .iter()
                .map(|(id, stages)| {
                    (
                        id.to_string(),
                        stages.iter().map(|s| s.to_string()).collect(),
                    )
                })
                .collect(),
        }
    }

    fn rotating() -> SecretMetadata {
        metadata(
            true,
            &[
                ("old", &[AWSPREVIOUS]),
                ("cur", &[AWSCURRENT]),
                ("tok", &[AWSPENDING]),
            ],
        )
    }

    #[test]
    fn parses_events_and_names_bad_fields() {
        let event = RotationEvent::from_json(
            &json!({"Step": "createSecret", "SecretId": "arn:aws:secretsmanager:x", "ClientRequestToken": "tok"}),
        )
        .unwrap();
        assert_eq!(event.step, Step::Create);
        let error = RotationEvent::from_json(&json!({"Step": "rotate", "SecretId": 3}))
            .unwrap_err()
            .to_string();
        assert!(error.contains("Step: unknown step `rotate`"), "{error}");
        assert!(error.contains("SecretId: must be a string"), "{error}");
        assert!(error.contains("ClientRequestToken: is required"), "{error}");
        for step in Step::ALL {
            assert_eq!(Step::parse(step.as_str()), Some(step));
        }
    }

    #[test]
    fn a_normal_rotation() {
        let m = rotating();
        assert_eq!(
            decide(Step::Create, "tok", &m, false).unwrap(),
            Action::CreatePending
        );
        assert_eq!(
            decide(Step::Set, "tok", &m, true).unwrap(),
            Action::CheckPending
        );
        assert_eq!(
            decide(Step::Test, "tok", &m, true).unwrap(),
            Action::TestPending
        );
        assert_eq!(
            decide(Step::Finish, "tok", &m, true).unwrap(),
            Action::Finish {
                current_version: "cur".into()
            }
        );
    }

    #[test]
    fn repeated_steps_do_not_repeat_work() {
        let m = rotating();
        assert!(matches!(
            decide(Step::Create, "tok", &m, true).unwrap(),
            Action::Nothing(_)
        ));
        // Finish moved AWSCURRENT but stopped before dropping AWSPENDING.
        let half = metadata(
            true,
            &[("cur", &[AWSPREVIOUS]), ("tok", &[AWSPENDING, AWSCURRENT])],
        );
        for step in [Step::Create, Step::Set, Step::Test] {
            assert!(matches!(
                decide(step, "tok", &half, true).unwrap(),
                Action::Nothing(_)
            ));
        }
        assert_eq!(
            decide(Step::Finish, "tok", &half, true).unwrap(),
            Action::RetirePrevious {
                remove_pending_label: true
            }
        );
        let done = metadata(true, &[("cur", &[AWSPREVIOUS]), ("tok", &[AWSCURRENT])]);
        assert_eq!(
            decide(Step::Finish, "tok", &done, false).unwrap(),
            Action::RetirePrevious {
                remove_pending_label: false
            }
        );
    }

    #[test]
    fn refuses_bad_states() {
        let error = decide(
            Step::Create,
            "tok",
            &metadata(false, &[("tok", &[AWSPENDING])]),
            false,
        )
        .unwrap_err();
        assert!(error.message.contains("rotation is not enabled"));
        let error = decide(Step::Create, "nope", &rotating(), false).unwrap_err();
        assert_eq!(error.error_name(), "Lakeops.InvalidInput");
        assert!(
            error.message.contains("nope is not a version"),
            "{}",
            error.message
        );
        let error = decide(Step::Finish, "old", &rotating(), true).unwrap_err();
        assert!(
            error.message.contains("not staged AWSPENDING"),
            "{}",
            error.message
        );
        let error = decide(Step::Test, "tok", &rotating(), false).unwrap_err();
        assert!(
            error.message.contains("createSecret must run first"),
            "{}",
            error.message
        );
        let no_current = metadata(true, &[("tok", &[AWSPENDING])]);
        assert!(decide(Step::Create, "tok", &no_current, false).is_err());
    }

    fn any_metadata() -> impl Strategy<Value = SecretMetadata> {
        let stage = prop_oneof![
            Just(AWSCURRENT),
            Just(AWSPENDING),
            Just(AWSPREVIOUS),
            Just("custom")
        ];
        (
            any::<bool>(),
            proptest::collection::btree_map("[a-d]", proptest::collection::vec(stage, 0..3), 0..5),
        )
            .prop_map(|(enabled, versions)| SecretMetadata {
                rotation_enabled: enabled,
                versions: versions
                    .into_iter()
                    .map(|(k, v)| (k, v.into_iter().map(String::from).collect()))
                    .collect(),
            })
    }

    proptest! {
        /// Whatever the stages, a step only ever does work on a version that is
        /// staged AWSPENDING and not AWSCURRENT, of a secret with rotation on.
        #[test]
        fn work_only_on_a_pending_version(m in any_metadata(), token in "[a-e]", has_value in any::<bool>(), step_index in 0usize..4) {
            let step = Step::ALL[step_index];
            match decide(step, &token, &m, has_value) {
                Ok(Action::CreatePending) => {
                    prop_assert!(m.rotation_enabled && m.has_stage(&token, AWSPENDING) && !m.has_stage(&token, AWSCURRENT) && !has_value);
                }
                Ok(Action::CheckPending) | Ok(Action::TestPending) => {
                    prop_assert!(m.has_stage(&token, AWSPENDING) && !m.has_stage(&token, AWSCURRENT) && has_value);
                }
                Ok(Action::Finish { current_version }) => {
                    prop_assert!(m.has_stage(&token, AWSPENDING) && !m.has_stage(&token, AWSCURRENT) && has_value);
                    prop_assert!(m.has_stage(&current_version, AWSCURRENT));
                    prop_assert_ne!(current_version, token);
                }
                Ok(Action::RetirePrevious { remove_pending_label }) => {
                    prop_assert_eq!(step, Step::Finish);
                    prop_assert!(m.has_stage(&token, AWSCURRENT));
                    prop_assert_eq!(remove_pending_label, m.has_stage(&token, AWSPENDING));
                }
                Ok(Action::Nothing(_)) => {
                    prop_assert!(m.has_stage(&token, AWSCURRENT) || (step == Step::Create && has_value));
                }
                Err(_) => {
                    prop_assert!(!m.rotation_enabled || !m.has_stage(&token, AWSCURRENT));
                }
            }
        }
    }
}
