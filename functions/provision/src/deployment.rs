//! What this deployment's own role may reach, checked against a spec before
//! anything is called. template.yaml gives provision's role the secrets of its
//! own environment only (`lakeops/<LAKEOPS_ENVIRONMENT>/...`): a spec for
//! another environment must name the role chain that reaches that
//! environment's secrets. Without it every Secrets Manager call would be denied
//! in a real account (moto does not enforce IAM, so only this check says so),
//! which validation turns into `Lakeops.InvalidInput` naming the field.

use crate::spec::PlatformSpec;
use lakeops_shared::validate::Problems;

/// The deployment provision runs in (template.yaml's `EnvironmentName`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    pub environment: String,
}

/// The secret name in a Secrets Manager ARN (`...:secret:lakeops/dev/x-AbCdEf`
/// → `lakeops/dev/x-AbCdEf`). Pure.
fn secret_name(arn: &str) -> Option<&str> {
    arn.split_once(":secret:").map(|(_, name)| name)
}

impl Deployment {
    /// The secrets prefix provision's own role may use.
    pub fn secrets_prefix(&self) -> String {
        format!("lakeops/{}/", self.environment)
    }

    /// Every way in which `spec` needs more than this deployment's role may do.
    pub fn check(&self, spec: &PlatformSpec) -> Problems {
        let mut p = Problems::new();
        let own = self.secrets_prefix();
        if spec.environment != self.environment && spec.aws.environment_role_arn.is_none() {
            p.add(
                "aws.environment_role_arn",
                format!(
                    "is required for environment {:?}: this deployment ({:?}) may reach only the secrets {own}..., \
                     so another environment's secrets need the role (in that environment's account) that manages them",
                    spec.environment, self.environment
                ),
            );
        }
        let chain = spec.aws.admin_role_arn.is_some() || spec.aws.environment_role_arn.is_some();
        let readable = secret_name(&spec.account.credentials_secret_arn)
            .is_some_and(|name| name.starts_with(&own));
        if !chain && !readable {
            p.add(
                "account.credentials_secret_arn",
                format!(
                    "must name a secret under {own} (this deployment's role reads no other), \
                     or give aws.environment_role_arn to read it in its own account"
                ),
            );
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::tests::minimal;
    use serde_json::json;

    fn dev() -> Deployment {
        Deployment {
            environment: "dev".into(),
        }
    }

    fn paths(spec: &serde_json::Value) -> Vec<String> {
        let spec = crate::spec::parse(spec).unwrap();
        dev()
            .check(&spec)
            .iter()
            .map(|(path, _)| path.to_string())
            .collect()
    }

    #[test]
    fn a_spec_of_this_environment_needs_no_role_chain() {
        assert!(paths(&minimal()).is_empty());
    }

    #[test]
    fn another_environment_needs_its_own_role() {
        let mut spec = minimal();
        spec["environment"] = json!("prod");
        spec["workspace"]["name"] = json!("lakeops-prod");
        spec["account"]["credentials_secret_arn"] = json!(
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:lakeops/prod/account-sp-AbCdEf"
        );
        assert_eq!(
            paths(&spec),
            vec!["aws.environment_role_arn", "account.credentials_secret_arn"]
        );

        // The admin role alone does not reach the environment's account.
        spec["aws"]["admin_role_arn"] = json!("arn:aws:iam::123456789012:role/lakeops/admin");
        assert_eq!(paths(&spec), vec!["aws.environment_role_arn"]);

        spec["aws"]["environment_role_arn"] =
            json!("arn:aws:iam::210987654321:role/lakeops/provisioner");
        assert!(paths(&spec).is_empty());
    }

    #[test]
    fn without_a_chain_the_account_secret_must_be_this_environments() {
        let mut spec = minimal();
        for other in [
            "lakeops/prod/account-sp-AbCdEf",
            "lakeops/devx/account-sp-AbCdEf",
            "shared/account-sp-AbCdEf",
        ] {
            spec["account"]["credentials_secret_arn"] = json!(format!(
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:{other}"
            ));
            assert_eq!(
                paths(&spec),
                vec!["account.credentials_secret_arn"],
                "{other}"
            );
        }
        let problems = dev().check(&crate::spec::parse(&spec).unwrap()).to_string();
        assert!(problems.contains("lakeops/dev/"), "{problems}");
    }
}
