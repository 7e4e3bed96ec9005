//! The JSON format of the credentials lakeops keeps in Secrets Manager.
//!
//! Every such secret is a JSON object with a `kind` field. Provisioning writes
//! these secrets, and `rotate-credentials` reads and rewrites them, so both go
//! through this one module.
//!
//! | kind                   | fields                                                                 |
//! |------------------------|------------------------------------------------------------------------|
//! | `databricks-pat`       | `workspace_url`, `token`, `token_id`, `lifetime_days`, optional `admin_secret_id` and `application_id` |
//! | `databricks-sp-secret` | `account_id`, `service_principal_id`, `client_id`, `client_secret`, `secret_id`, optional `lifetime_days` and `admin_secret_id` |
//! | `iam-access-key`       | `user_name`, `access_key_id`, `secret_access_key`                      |
//!
//! Parsing never echoes a value: a secret string that is not what we expect
//! may hold a credential, so problems name fields only.

use crate::secret::Secret;
use crate::validate::Problems;
use serde_json::{json, Map, Value};

pub const KIND_DATABRICKS_PAT: &str = "databricks-pat";
pub const KIND_DATABRICKS_SP_SECRET: &str = "databricks-sp-secret";
pub const KIND_IAM_ACCESS_KEY: &str = "iam-access-key";
pub const KINDS: [&str; 3] = [
    KIND_DATABRICKS_PAT,
    KIND_DATABRICKS_SP_SECRET,
    KIND_IAM_ACCESS_KEY,
];

/// A Databricks personal access token on one workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabricksPat {
    /// Base URL of the workspace, e.g. `https://dbc-1234.cloud.databricks.com`.
    pub workspace_url: String,
    pub token: Secret,
    pub token_id: String,
    /// Lifetime of each new token.
    pub lifetime_days: u32,
    /// Secrets Manager id of a workspace admin credential (`databricks-pat` or
    /// `databricks-sp-secret`). When set, new tokens are created through the
    /// token-management API on behalf of `application_id`; otherwise the token
    /// creates its own successor.
    pub admin_secret_id: Option<String>,
    /// Application id of the service principal that owns the token; required
    /// with `admin_secret_id`.
    pub application_id: Option<String>,
}

/// An OAuth secret of a Databricks service principal (account level).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabricksSpSecret {
    pub account_id: String,
    /// The numeric id of the service principal in the account.
    pub service_principal_id: String,
    /// Its application id, the OAuth client id.
    pub client_id: String,
    pub client_secret: Secret,
    /// The id of the OAuth secret (not the secret itself).
    pub secret_id: String,
    /// Lifetime of each new OAuth secret; Databricks' default (730 days) when unset.
    pub lifetime_days: Option<u32>,
    /// Secrets Manager id of an account admin `databricks-sp-secret`. When
    /// unset, the service principal manages its own secrets.
    pub admin_secret_id: Option<String>,
}

/// An IAM user's access key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamAccessKey {
    pub user_name: String,
    pub access_key_id: String,
    pub secret_access_key: Secret,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    DatabricksPat(DatabricksPat),
    DatabricksSpSecret(DatabricksSpSecret),
    IamAccessKey(IamAccessKey),
}

/// Reads fields of a JSON object and records every problem.
struct Fields<'a> {
    object: &'a Map<String, Value>,
    problems: Problems,
}

impl<'a> Fields<'a> {
    fn string(&mut self, name: &str) -> String {
        match self.object.get(name) {
            None | Some(Value::Null) => {
                self.problems.add(name, "is required");
                String::new()
            }
            Some(Value::String(s)) if s.trim().is_empty() => {
                self.problems.add(name, "must not be blank");
                String::new()
            }
            Some(Value::String(s)) => s.clone(),
            Some(_) => {
                self.problems.add(name, "must be a string");
                String::new()
            }
        }
    }

    fn optional_string(&mut self, name: &str) -> Option<String> {
        match self.object.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                self.problems.add(name, "must be a string");
                None
            }
        }
    }

    fn secret(&mut self, name: &str) -> Secret {
        Secret::new(self.string(name))
    }

    /// A whole number of days, 1 to 3650. Strings of digits are accepted
    /// because people write `"90"` in the console.
    fn optional_days(&mut self, name: &str) -> Option<u32> {
        let value = self.object.get(name)?;
        let days = match value {
            Value::Null => return None,
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse::<u64>().ok(),
            _ => None,
        };
        match days {
            Some(d) if (1..=3650).contains(&d) => Some(d as u32),
            _ => {
                self.problems
                    .add(name, "must be a whole number of days from 1 to 3650");
                None
            }
        }
    }

    fn days(&mut self, name: &str) -> u32 {
        if !self.object.contains_key(name) || self.object[name].is_null() {
            self.problems.add(name, "is required");
            return 0;
        }
        self.optional_days(name).unwrap_or_default()
    }
}

fn is_http_url(value: &str) -> bool {
    url::Url::parse(value)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

impl Credential {
    /// Parse a secret string. The problems name every missing or malformed
    /// field, never a value.
    pub fn parse(text: &str) -> Result<Credential, Problems> {
        let mut problems = Problems::new();
        let value: Value = match serde_json::from_str(text) {
            Ok(value) => value,
            Err(_) => {
                problems.add("", "the secret string is not JSON");
                return Err(problems);
            }
        };
        let Some(object) = value.as_object() else {
            problems.add("", "the secret string is not a JSON object");
            return Err(problems);
        };
        let mut fields = Fields { object, problems };
        let kind = fields.string("kind");
        let credential = match kind.as_str() {
            KIND_DATABRICKS_PAT => {
                let pat = DatabricksPat {
                    workspace_url: fields
                        .string("workspace_url")
                        .trim_end_matches('/')
                        .to_string(),
                    token: fields.secret("token"),
                    token_id: fields.string("token_id"),
                    lifetime_days: fields.days("lifetime_days"),
                    admin_secret_id: fields.optional_string("admin_secret_id"),
                    application_id: fields.optional_string("application_id"),
                };
                if !pat.workspace_url.is_empty() && !is_http_url(&pat.workspace_url) {
                    fields
                        .problems
                        .add("workspace_url", "must be an http(s) URL");
                }
                if pat.admin_secret_id.is_some() && pat.application_id.is_none() {
                    fields.problems.add(
                        "application_id",
                        "is required with admin_secret_id (the token owner's application id)",
                    );
                }
                Credential::DatabricksPat(pat)
            }
            KIND_DATABRICKS_SP_SECRET => Credential::DatabricksSpSecret(DatabricksSpSecret {
                account_id: fields.string("account_id"),
                service_principal_id: fields.string("service_principal_id"),
                client_id: fields.string("client_id"),
                client_secret: fields.secret("client_secret"),
                secret_id: fields.string("secret_id"),
                lifetime_days: fields.optional_days("lifetime_days"),
                admin_secret_id: fields.optional_string("admin_secret_id"),
            }),
            KIND_IAM_ACCESS_KEY => Credential::IamAccessKey(IamAccessKey {
                user_name: fields.string("user_name"),
                access_key_id: fields.string("access_key_id"),
                secret_access_key: fields.secret("secret_access_key"),
            }),
            "" => Credential::IamAccessKey(IamAccessKey {
                // Placeholder: "kind is required" is already recorded.
                user_name: String::new(),
                access_key_id: String::new(),
                secret_access_key: Secret::new(""),
            }),
            other => {
                // A kind is a label, not a credential, but keep it short anyway.
                let shown: String = other.chars().take(40).collect();
                fields.problems.add(
                    "kind",
                    format!(
                        "unknown kind `{shown}` (expected one of {})",
                        KINDS.join(", ")
                    ),
                );
                return Err(fields.problems);
            }
        };
        fields.problems.into_result().map(|()| credential)
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Credential::DatabricksPat(_) => KIND_DATABRICKS_PAT,
            Credential::DatabricksSpSecret(_) => KIND_DATABRICKS_SP_SECRET,
            Credential::IamAccessKey(_) => KIND_IAM_ACCESS_KEY,
        }
    }

    /// The id of the credential at the issuer (token id, OAuth secret id,
    /// access key id): not secret, safe to log.
    pub fn credential_id(&self) -> &str {
        match self {
            Credential::DatabricksPat(pat) => &pat.token_id,
            Credential::DatabricksSpSecret(sp) => &sp.secret_id,
            Credential::IamAccessKey(key) => &key.access_key_id,
        }
    }

    /// The secret string to store in Secrets Manager. It holds the credential,
    /// so it is itself a [`Secret`].
    pub fn to_secret_string(&self) -> Secret {
        let mut object = match self {
            Credential::DatabricksPat(pat) => json!({
                "kind": KIND_DATABRICKS_PAT,
                "workspace_url": pat.workspace_url,
                "token": pat.token.expose(),
                "token_id": pat.token_id,
                "lifetime_days": pat.lifetime_days,
            }),
            Credential::DatabricksSpSecret(sp) => json!({
                "kind": KIND_DATABRICKS_SP_SECRET,
                "account_id": sp.account_id,
                "service_principal_id": sp.service_principal_id,
                "client_id": sp.client_id,
                "client_secret": sp.client_secret.expose(),
                "secret_id": sp.secret_id,
            }),
            Credential::IamAccessKey(key) => json!({
                "kind": KIND_IAM_ACCESS_KEY,
                "user_name": key.user_name,
                "access_key_id": key.access_key_id,
                "secret_access_key": key.secret_access_key.expose(),
            }),
        };
        let map = object.as_object_mut().expect("a JSON object literal");
        match self {
            Credential::DatabricksPat(pat) => {
                if let Some(admin) = &pat.admin_secret_id {
                    map.insert("admin_secret_id".into(), json!(admin));
                }
                if let Some(application_id) = &pat.application_id {
                    map.insert("application_id".into(), json!(application_id));
                }
            }
            Credential::DatabricksSpSecret(sp) => {
                if let Some(days) = sp.lifetime_days {
                    map.insert("lifetime_days".into(), json!(days));
                }
                if let Some(admin) = &sp.admin_secret_id {
                    map.insert("admin_secret_id".into(), json!(admin));
                }
            }
            Credential::IamAccessKey(_) => {}
        }
        Secret::new(object.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pat_json() -> Value {
        json!({
            "kind": "databricks-pat",
            "workspace_url": "https://dbc-1.cloud.databricks.com/",
            "token": "dapiSECRET",
            "token_id": "tok-1",
            "lifetime_days": 90
        })
    }

    #[test]
    fn parses_each_kind() {
        let pat = Credential::parse(&pat_json().to_string()).unwrap();
        let Credential::DatabricksPat(p) = &pat else {
            panic!()
        };
        assert_eq!(p.workspace_url, "https://dbc-1.cloud.databricks.com");
        assert_eq!(p.token.expose(), "dapiSECRET");
        assert_eq!(pat.credential_id(), "tok-1");
        assert_eq!(pat.kind(), "databricks-pat");

        let sp = Credential::parse(
            r#"{"kind":"databricks-sp-secret","account_id":"a","service_principal_id":"12","client_id":"c",
                "client_secret":"doseSECRET","secret_id":"s1","lifetime_days":"30"}"#,
        )
        .unwrap();
        let Credential::DatabricksSpSecret(s) = &sp else {
            panic!()
        };
        assert_eq!(s.lifetime_days, Some(30));
        assert_eq!(s.admin_secret_id, None);

        let key = Credential::parse(
            r#"{"kind":"iam-access-key","user_name":"edge","access_key_id":"AKIA1","secret_access_key":"SECRET"}"#,
        )
        .unwrap();
        assert_eq!(key.credential_id(), "AKIA1");
    }

    #[test]
    fn names_every_missing_field_and_never_a_value() {
        let error = Credential::parse(
            r#"{"kind":"databricks-sp-secret","client_secret":"doseSECRET","account_id":7}"#,
        )
        .unwrap_err()
        .to_string();
        for field in ["service_principal_id", "client_id", "secret_id"] {
            assert!(error.contains(&format!("{field}: is required")), "{error}");
        }
        assert!(error.contains("account_id: must be a string"), "{error}");
        assert!(!error.contains("doseSECRET"), "{error}");

        let error = Credential::parse(r#"{"token":"dapiSECRET"}"#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("kind: is required"), "{error}");
        assert!(!error.contains("dapiSECRET"), "{error}");

        let error = Credential::parse("dapiSECRET").unwrap_err().to_string();
        assert!(
            error.contains("not JSON") && !error.contains("dapiSECRET"),
            "{error}"
        );
        let error = Credential::parse(r#""dapiSECRET""#)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("not a JSON object") && !error.contains("dapiSECRET"),
            "{error}"
        );
    }

    #[test]
    fn rejects_unknown_kinds_bad_urls_days_and_admin_without_owner() {
        let error = Credential::parse(r#"{"kind":"github-token"}"#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("unknown kind `github-token`"), "{error}");
        assert!(
            error.contains("databricks-pat, databricks-sp-secret, iam-access-key"),
            "{error}"
        );

        let mut pat = pat_json();
        pat["workspace_url"] = json!("dbc-1.cloud.databricks.com");
        pat["lifetime_days"] = json!(0);
        pat["admin_secret_id"] = json!("lakeops/dev/admin");
        let error = Credential::parse(&pat.to_string()).unwrap_err().to_string();
        assert!(
            error.contains("workspace_url: must be an http(s) URL"),
            "{error}"
        );
        assert!(
            error.contains("lifetime_days: must be a whole number"),
            "{error}"
        );
        assert!(
            error.contains("application_id: is required with admin_secret_id"),
            "{error}"
        );

        let mut pat = pat_json();
        pat.as_object_mut().unwrap().remove("lifetime_days");
        let error = Credential::parse(&pat.to_string()).unwrap_err().to_string();
        assert!(error.contains("lifetime_days: is required"), "{error}");
    }

    fn any_credential() -> impl Strategy<Value = Credential> {
        let id = "[A-Za-z0-9-]{1,20}";
        let secret = "[ -~]{1,40}";
        prop_oneof![
            (id, secret, id, 1u32..3650, proptest::option::of(id)).prop_map(
                |(host, token, token_id, days, admin)| {
                    Credential::DatabricksPat(DatabricksPat {
                        workspace_url: format!("https://{host}.example.com"),
                        token: Secret::new(token),
                        token_id,
                        lifetime_days: days,
                        application_id: admin.clone().map(|a| format!("app-{a}")),
                        admin_secret_id: admin,
                    })
                }
            ),
            (
                id,
                id,
                id,
                secret,
                id,
                proptest::option::of(1u32..3650),
                proptest::option::of(id)
            )
                .prop_map(
                    |(
                        account_id,
                        service_principal_id,
                        client_id,
                        client_secret,
                        secret_id,
                        lifetime_days,
                        admin_secret_id,
                    )| {
                        Credential::DatabricksSpSecret(DatabricksSpSecret {
                            account_id,
                            service_principal_id,
                            client_id,
                            client_secret: Secret::new(client_secret),
                            secret_id,
                            lifetime_days,
                            admin_secret_id,
                        })
                    }
                ),
            (id, id, secret).prop_map(|(user_name, access_key_id, secret_access_key)| {
                Credential::IamAccessKey(IamAccessKey {
                    user_name,
                    access_key_id,
                    secret_access_key: Secret::new(secret_access_key),
                })
            }),
        ]
    }

    proptest! {
        #[test]
        fn round_trips_through_the_secret_string(credential in any_credential()) {
            // Blank secrets are not valid input; the strategy's secrets are
            // printable and may be all spaces.
            let blank = match &credential {
                Credential::DatabricksPat(p) => p.token.expose().trim().is_empty(),
                Credential::DatabricksSpSecret(s) => s.client_secret.expose().trim().is_empty(),
                Credential::IamAccessKey(k) => k.secret_access_key.expose().trim().is_empty(),
            };
            prop_assume!(!blank);
            let text = credential.to_secret_string();
            let parsed = Credential::parse(text.expose()).unwrap();
            prop_assert_eq!(parsed, credential);
        }

        #[test]
        fn parse_errors_never_echo_the_input(noise in "[a-zA-Z0-9]{12,40}") {
            for text in [
                noise.clone(),
                format!("{{\"kind\":\"iam-access-key\",\"secret_access_key\":{}}}", 5),
                format!("{{\"kind\":\"databricks-pat\",\"token\":\"{noise}\",\"workspace_url\":\"{noise}\"}}"),
            ] {
                if let Err(problems) = Credential::parse(&text) {
                    prop_assert!(!problems.to_string().contains(&noise), "{}", problems);
                }
            }
        }
    }
}
