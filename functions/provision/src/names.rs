//! Deterministic names. Every resource lakeops creates is found again by its
//! name, so a re-run (or a run after a stage was killed) adopts it instead of
//! creating a second one. Every name includes the environment.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    env: String,
}

impl Names {
    pub fn new(environment: &str) -> Self {
        Self {
            env: environment.to_string(),
        }
    }

    fn dashed(&self, what: &str) -> String {
        format!("lakeops-{}-{what}", self.env)
    }

    /// Unity Catalog names: underscores, no dashes.
    fn underscored(&self, what: &str) -> String {
        format!("lakeops_{}_{what}", self.env.replace('-', "_"))
    }

    pub fn credentials(&self) -> String {
        self.dashed("credentials")
    }
    pub fn storage(&self) -> String {
        self.dashed("storage")
    }
    pub fn network(&self) -> String {
        self.dashed("network")
    }
    pub fn rest_vpc_endpoint(&self) -> String {
        self.dashed("vpce-rest")
    }
    pub fn relay_vpc_endpoint(&self) -> String {
        self.dashed("vpce-relay")
    }
    pub fn private_access_settings(&self) -> String {
        self.dashed("private-access")
    }
    pub fn log_credentials(&self) -> String {
        self.dashed("log-credentials")
    }
    pub fn log_storage(&self) -> String {
        self.dashed("log-storage")
    }
    pub fn audit_log_delivery(&self) -> String {
        self.dashed("audit-logs")
    }
    pub fn billable_usage_delivery(&self) -> String {
        self.dashed("billable-usage")
    }
    pub fn metastore(&self) -> String {
        self.dashed("metastore")
    }
    pub fn group(&self, name: &str) -> String {
        self.dashed(name)
    }
    pub fn service_principal(&self) -> String {
        self.dashed("automation")
    }
    /// Secrets Manager name of the automation service principal's OAuth secret.
    pub fn service_principal_secret(&self) -> String {
        format!("lakeops/{}/databricks/automation-sp", self.env)
    }
    /// Secrets Manager name of the automation PAT.
    pub fn pat_secret(&self) -> String {
        format!("lakeops/{}/databricks/pat", self.env)
    }
    /// The PAT's comment, by which it is found in the token list.
    pub fn pat_comment(&self) -> String {
        self.dashed("pat")
    }
    pub fn cluster(&self) -> String {
        self.dashed("single-node")
    }
    pub fn cluster_policy(&self) -> String {
        self.dashed("policy")
    }
    pub fn instance_pool(&self) -> String {
        self.dashed("pool")
    }
    pub fn storage_credential(&self) -> String {
        self.underscored("credential")
    }
    pub fn external_location(&self, name: &str) -> String {
        self.underscored(name)
    }
    pub fn init_script(&self) -> String {
        self.dashed("cse-core-site")
    }
    pub fn job(&self, name: &str) -> String {
        self.dashed(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names() {
        let n = Names::new("qa-eu");
        assert_eq!(n.credentials(), "lakeops-qa-eu-credentials");
        assert_eq!(n.group("DE"), "lakeops-qa-eu-DE");
        assert_eq!(n.storage_credential(), "lakeops_qa_eu_credential");
        assert_eq!(n.pat_secret(), "lakeops/qa-eu/databricks/pat");
    }

    proptest! {
        #[test]
        fn environments_never_share_a_name(a in "[a-z][a-z0-9]{0,8}", b in "[a-z][a-z0-9]{0,8}") {
            prop_assume!(a != b);
            let (x, y) = (Names::new(&a), Names::new(&b));
            prop_assert_ne!(x.credentials(), y.credentials());
            prop_assert_ne!(x.storage_credential(), y.storage_credential());
            prop_assert_ne!(x.pat_secret(), y.pat_secret());
            prop_assert!(x.network().contains(&a));
        }
    }
}
