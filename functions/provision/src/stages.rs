//! The stages, in dependency order. Each runs in its own invocation, so a
//! failure or a wait between two of them costs no Lambda time.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Parse and validate the spec; nothing is created before it passes.
    Validate,
    /// Account credential configuration (the cross-account role).
    Credentials,
    /// Account storage configuration (the root bucket).
    Storage,
    /// VPC endpoint registrations and private access settings (optional).
    PrivateLink,
    /// Account network configuration (VPC, subnets, security groups).
    Network,
    /// Customer-managed keys for managed services and storage (optional).
    EncryptionKeys,
    /// The workspace.
    Workspace,
    /// Polled by the state machine until the workspace is RUNNING and its API answers.
    WorkspaceReady,
    /// Audit and billable-usage log delivery (optional).
    LogDelivery,
    /// Unity Catalog metastore (created or reused) and its workspace assignment.
    Metastore,
    /// Account groups, the automation service principal and their workspace permissions.
    Identity,
    /// The automation service principal's PAT, in Secrets Manager with rotation (optional).
    Pat,
    /// Instance profile, cluster policy, instance pool and the single-node cluster.
    Compute,
    /// Storage credential, external locations, catalog, schemas, volumes.
    Catalog,
    /// Global init script, sample jobs and repos (each optional).
    Extras,
}

/// Every stage of `plan` and `apply`, in order.
pub const APPLY_ORDER: &[Stage] = &[
    Stage::Validate,
    Stage::Credentials,
    Stage::Storage,
    Stage::PrivateLink,
    Stage::Network,
    Stage::EncryptionKeys,
    Stage::Workspace,
    Stage::WorkspaceReady,
    Stage::LogDelivery,
    Stage::Metastore,
    Stage::Identity,
    Stage::Pat,
    Stage::Compute,
    Stage::Catalog,
    Stage::Extras,
];

/// Every stage of `destroy`, in order: validation first, then the resource
/// stages in reverse (nothing to wait for on the way down).
pub fn destroy_order() -> Vec<Stage> {
    std::iter::once(Stage::Validate)
        .chain(
            APPLY_ORDER
                .iter()
                .rev()
                .copied()
                .filter(|s| !matches!(s, Stage::Validate | Stage::WorkspaceReady)),
        )
        .collect()
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Validate => "validate",
            Stage::Credentials => "credentials",
            Stage::Storage => "storage",
            Stage::PrivateLink => "private_link",
            Stage::Network => "network",
            Stage::EncryptionKeys => "encryption_keys",
            Stage::Workspace => "workspace",
            Stage::WorkspaceReady => "workspace_ready",
            Stage::LogDelivery => "log_delivery",
            Stage::Metastore => "metastore",
            Stage::Identity => "identity",
            Stage::Pat => "pat",
            Stage::Compute => "compute",
            Stage::Catalog => "catalog",
            Stage::Extras => "extras",
        }
    }

    /// Whether the stage calls a workspace's API (so it needs the workspace to answer).
    pub fn needs_workspace_api(self) -> bool {
        matches!(
            self,
            Stage::Pat | Stage::Compute | Stage::Catalog | Stage::Extras
        )
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Stage {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        APPLY_ORDER
            .iter()
            .copied()
            .find(|s| s.as_str() == value)
            .ok_or_else(|| {
                let names: Vec<&str> = APPLY_ORDER.iter().map(|s| s.as_str()).collect();
                format!("unknown stage {value:?}; stages are {}", names.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for stage in APPLY_ORDER {
            assert_eq!(stage.as_str().parse::<Stage>().unwrap(), *stage);
            assert_eq!(
                serde_json::to_value(stage).unwrap(),
                serde_json::json!(stage.as_str())
            );
        }
        assert!("teardown"
            .parse::<Stage>()
            .unwrap_err()
            .contains("credentials"));
    }

    #[test]
    fn order_follows_dependencies() {
        let pos = |s: Stage| APPLY_ORDER.iter().position(|x| *x == s).unwrap();
        assert!(pos(Stage::Credentials) < pos(Stage::Workspace));
        assert!(pos(Stage::PrivateLink) < pos(Stage::Network));
        assert!(pos(Stage::Network) < pos(Stage::Workspace));
        assert!(pos(Stage::EncryptionKeys) < pos(Stage::Workspace));
        assert!(pos(Stage::Workspace) < pos(Stage::WorkspaceReady));
        for s in APPLY_ORDER.iter().filter(|s| s.needs_workspace_api()) {
            assert!(pos(Stage::WorkspaceReady) < pos(*s), "{s}");
        }
        assert!(pos(Stage::Metastore) < pos(Stage::Catalog));
        assert!(pos(Stage::Identity) < pos(Stage::Pat));
        assert_eq!(APPLY_ORDER.len(), 15);
    }

    #[test]
    fn destroy_goes_in_reverse() {
        let order = destroy_order();
        assert_eq!(order[0], Stage::Validate);
        assert_eq!(order[1], Stage::Extras);
        assert_eq!(*order.last().unwrap(), Stage::Credentials);
        assert!(!order.contains(&Stage::WorkspaceReady));
        let pos = |s: Stage| order.iter().position(|x| *x == s).unwrap();
        assert!(pos(Stage::Catalog) < pos(Stage::Metastore));
        assert!(pos(Stage::Workspace) < pos(Stage::Network));
    }
}
