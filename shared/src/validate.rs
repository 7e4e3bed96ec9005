//! Collects every problem of an input at once, each under the path of its field,
//! so a user fixes a spec in one round instead of one error per run.

use std::fmt;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems {
    items: Vec<(String, String)>,
}

impl Problems {
    pub fn new() -> Self {
        Self::default()
    }

    /// Record that the field at `path` (e.g. `workspace.subnets[1]`) is wrong.
    pub fn add(&mut self, path: impl Into<String>, problem: impl Into<String>) {
        self.items.push((path.into(), problem.into()));
    }

    /// Record a problem when `ok` is false.
    pub fn check(&mut self, ok: bool, path: impl Into<String>, problem: impl Into<String>) {
        if !ok {
            self.add(path, problem);
        }
    }

    /// Require a non-blank string.
    pub fn require(&mut self, value: &str, path: impl Into<String>) {
        if value.trim().is_empty() {
            self.add(path, "is required");
        }
    }

    /// Merge the problems of a nested value, prefixing their paths.
    pub fn extend_under(&mut self, prefix: &str, other: Problems) {
        for (path, problem) in other.items {
            let path = if path.is_empty() {
                prefix.to_string()
            } else if path.starts_with('[') {
                format!("{prefix}{path}")
            } else {
                format!("{prefix}.{path}")
            };
            self.items.push((path, problem));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.items.iter().map(|(p, m)| (p.as_str(), m.as_str()))
    }

    /// `Ok(())` when nothing was recorded.
    pub fn into_result(self) -> Result<(), Problems> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} invalid field(s): ", self.items.len())?;
        for (i, (path, problem)) in self.items.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{path}: {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// True for an ARN of the given service (`arn:aws:iam::123456789012:role/x`).
pub fn is_arn(value: &str, service: &str) -> bool {
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == service
        && !parts[5].is_empty()
}

/// True for an IAM role ARN (`arn:aws:iam::123456789012:role/etl`), the only
/// kind of principal a service can be told to assume.
pub fn is_role_arn(value: &str) -> bool {
    is_arn(value, "iam") && value.contains(":role/")
}

/// True for a UUID in its 8-4-4-4-12 hex form, as Databricks writes account
/// and metastore ids (`00000000-0000-0000-0000-000000000001`).
pub fn is_uuid(value: &str) -> bool {
    let groups: Vec<&str> = value.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// True for an S3 URL, `s3://bucket` or `s3://bucket/path`: a valid bucket
/// name after the scheme; the path is not checked.
pub fn is_s3_url(value: &str) -> bool {
    value
        .strip_prefix("s3://")
        .map(|rest| rest.split('/').next().unwrap_or_default())
        .is_some_and(is_bucket_name)
}

/// True for a valid S3 bucket name (3–63 chars, lowercase, digits, dots, hyphens).
pub fn is_bucket_name(value: &str) -> bool {
    let len_ok = (3..=63).contains(&value.len());
    let chars_ok = value
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    let ends_ok = value
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && value
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    len_ok && chars_ok && ends_ok && !value.contains("..")
}

/// A lakeops environment name (`dev`, `qa`, `prod`, `prodeu`): 2-16 lowercase
/// letters or digits, starting with a letter, as template.yaml's
/// `EnvironmentName` allows. No `-` or `_`: IAM patterns such as
/// `lakeops-<env>-*` and `lakeops_<env>_*` end with the separator, so with none
/// inside a name no environment's patterns match another environment's names
/// (with `-` allowed, `lakeops-dev-*` matched `lakeops-dev-eu-raw`).
pub fn is_environment_name(value: &str) -> bool {
    (2..=16).contains(&value.len())
        && value.starts_with(|c: char| c.is_ascii_lowercase())
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// What [`is_environment_name`] requires, for error messages.
pub const ENVIRONMENT_NAME_RULE: &str =
    "must be 2-16 lowercase letters or digits, starting with a letter (e.g. dev; no '-' or '_')";

/// True for an AWS region name (`us-east-1`, `ap-southeast-2`, `us-gov-west-1`).
pub fn is_region(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts[parts.len() - 1].chars().all(|c| c.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty()
}

/// A serde_json error message without its " at line L column C": meaningless for
/// a JSON value that was parsed already (the problem's path says where it is).
pub fn serde_message(message: &str) -> &str {
    message
        .find(" at line ")
        .map_or(message, |at| &message[..at])
}

/// `text` cut to at most `max` bytes on a character boundary, with "…" when cut:
/// for third-party text (an API's error body, a caught cause) inside our messages.
pub fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_messages_and_truncation() {
        for ok in [
            "us-east-1",
            "eu-central-2",
            "us-gov-west-1",
            "ap-southeast-4",
        ] {
            assert!(is_region(ok), "{ok}");
        }
        for bad in [
            "",
            "us-east",
            "useast1",
            "US-EAST-1",
            "us--1",
            "u-east-1",
            "us-east-x",
        ] {
            assert!(!is_region(bad), "{bad}");
        }
        assert_eq!(
            serde_message("invalid type: string, expected u32 at line 1 column 5"),
            "invalid type: string, expected u32"
        );
        assert_eq!(
            serde_message("missing field `name`"),
            "missing field `name`"
        );
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcd", 3), "abc…");
        assert_eq!(truncate("aé", 2), "a…", "never inside a character");
    }

    #[test]
    fn environment_names_have_no_separators() {
        for ok in ["dev", "qa", "prod", "prodeu", "dev2", "a1234567890abcde"] {
            assert!(is_environment_name(ok), "{ok}");
        }
        for bad in [
            "dev-eu",
            "dev_eu",
            "d",
            "Dev",
            "2dev",
            "dev.eu",
            "",
            "a1234567890abcdef",
        ] {
            assert!(!is_environment_name(bad), "{bad}");
        }
    }

    #[test]
    fn lists_every_problem_with_its_path() {
        let mut problems = Problems::new();
        problems.require("", "account_id");
        let mut nested = Problems::new();
        nested.add("name", "is required");
        nested.add("[2]", "is not a subnet id");
        problems.extend_under("network", nested);
        let text = problems.to_string();
        assert_eq!(problems.len(), 3);
        assert!(text.contains("account_id: is required"), "{text}");
        assert!(text.contains("network.name: is required"), "{text}");
        assert!(text.contains("network[2]: is not a subnet id"), "{text}");
    }

    #[test]
    fn role_arns_uuids_and_s3_urls() {
        assert!(is_role_arn("arn:aws:iam::123456789012:role/lakeops-dev-uc"));
        assert!(is_role_arn(
            "arn:aws-us-gov:iam::123456789012:role/path/etl"
        ));
        assert!(!is_role_arn("arn:aws:iam::123456789012:user/alice"));
        assert!(!is_role_arn("arn:aws:iam::123456789012:instance-profile/x"));
        assert!(!is_role_arn("arn:aws:sts::123456789012:role/etl"));
        assert!(is_uuid("00000000-0000-0000-0000-000000000001"));
        assert!(is_uuid("ABCDEF01-2345-6789-abcd-ef0123456789"));
        assert!(!is_uuid("00000000-0000-0000-0000-00000000000"));
        assert!(!is_uuid("00000000-0000-0000-0000-00000000000g"));
        assert!(!is_uuid("000000000000-0000-0000-0000-00000000"));
        assert!(!is_uuid(""));
        assert!(is_s3_url("s3://bucket/a/b"));
        assert!(is_s3_url("s3://bucket"));
        assert!(is_s3_url("s3://bucket/"));
        assert!(!is_s3_url("https://bucket"));
        assert!(!is_s3_url("s3://Bucket/x"));
        assert!(!is_s3_url("s3://"));
    }

    #[test]
    fn arns_and_buckets() {
        assert!(is_arn("arn:aws:iam::123456789012:role/etl", "iam"));
        assert!(is_arn(
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:x-AbC",
            "secretsmanager"
        ));
        assert!(!is_arn("arn:aws:iam::123456789012", "iam"));
        assert!(!is_arn("role/etl", "iam"));
        assert!(is_bucket_name("lakeops-dev-raw"));
        assert!(!is_bucket_name("Lakeops"));
        assert!(!is_bucket_name("ab"));
        assert!(!is_bucket_name("-abc"));
        assert!(!is_bucket_name("a..b"));
    }
}
