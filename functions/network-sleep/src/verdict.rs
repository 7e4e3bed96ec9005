//! The Databricks verdict before a sleep: why the network must stay up, and
//! which idle clusters the sleep terminates.

use crate::activity::assess;
use crate::config::Settings;
use crate::workspaces::WorkspaceApi;

/// What the workspaces say about sleeping.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    pub blockers: Vec<String>,
    /// (index in `Settings::workspaces`, cluster id) of idle clusters.
    pub idle: Vec<(usize, String)>,
    /// Said in the report of a sleep that goes ahead.
    pub warnings: Vec<String>,
}

/// The setting that lets a sleep go ahead with no workspace to check.
pub const WITHOUT_CHECK_SETTING: &str = "SLEEP_WITHOUT_WORKSPACE_CHECK";

/// With no workspace configured, nothing can say whether work is running:
/// the sleep is refused, unless `without_check` says that is known and
/// wanted. Pure; `None` when the workspaces decide.
pub fn unchecked(workspace_count: usize, without_check: bool) -> Option<Verdict> {
    if workspace_count > 0 {
        return None;
    }
    let mut verdict = Verdict::default();
    if without_check {
        verdict.warnings.push(format!(
            "no Databricks workspace is checked for running work ({WITHOUT_CHECK_SETTING}=true)"
        ));
    } else {
        verdict.blockers.push(format!(
            "no Databricks workspace is configured (WORKSPACES, template parameter NetworkSleepWorkspaces), \
             so running work cannot be checked; list the workspaces, or set {WITHOUT_CHECK_SETTING}=true \
             (template parameter NetworkSleepWithoutWorkspaceCheck) to sleep without the check"
        ));
    }
    Some(verdict)
}

/// Read every configured workspace and assess it. A workspace that cannot be
/// read blocks.
pub async fn check<W: WorkspaceApi>(api: &W, settings: &Settings, now_ms: i64) -> Verdict {
    if let Some(verdict) = unchecked(
        settings.workspaces.len(),
        settings.sleep_without_workspace_check,
    ) {
        return verdict;
    }
    let mut verdict = Verdict::default();
    for (i, workspace) in settings.workspaces.iter().enumerate() {
        match api.inspect(workspace).await {
            Ok(activity) => {
                let assessment = assess(&workspace.name, &activity, now_ms, settings.idle_minutes);
                verdict.blockers.extend(assessment.blockers);
                verdict
                    .idle
                    .extend(assessment.idle_clusters.into_iter().map(|c| (i, c)));
            }
            Err(error) => verdict.blockers.push(format!(
                "workspace {} could not be checked: {error}",
                workspace.name
            )),
        }
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn no_workspace_refuses_unless_the_check_is_knowingly_off() {
        let refused = unchecked(0, false).unwrap();
        assert_eq!(refused.blockers.len(), 1);
        let reason = &refused.blockers[0];
        for name in [
            "WORKSPACES",
            "NetworkSleepWorkspaces",
            WITHOUT_CHECK_SETTING,
            "NetworkSleepWithoutWorkspaceCheck",
        ] {
            assert!(reason.contains(name), "{name} missing from: {reason}");
        }
        assert!(refused.warnings.is_empty());

        let allowed = unchecked(0, true).unwrap();
        assert!(allowed.blockers.is_empty());
        assert!(allowed.warnings[0].contains(WITHOUT_CHECK_SETTING));
    }

    proptest! {
        /// Configured workspaces are always checked, whatever the flag.
        #[test]
        fn configured_workspaces_are_always_checked(count in 1usize..10, without_check in any::<bool>()) {
            prop_assert_eq!(unchecked(count, without_check), None);
        }
    }
}
