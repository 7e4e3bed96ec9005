//! How a primary object's name, storage location, storage credential and principals
//! become the secondary's: pure, total functions of the spec.

use crate::spec::{CatalogMapping, DrSpec};

/// `*` matches any run of characters, `?` one; everything else itself, case-insensitively
/// (Unity Catalog names are case-insensitive).
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let n: Vec<char> = name.to_lowercase().chars().collect();
    // Iterative matcher with one backtrack point: linear in practice, never exponential.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

impl CatalogMapping {
    /// Whether the schema is synced: included (or no include rule) and not excluded.
    /// `information_schema` is the system's own and never synced.
    pub fn includes_schema(&self, schema: &str) -> bool {
        if schema.eq_ignore_ascii_case("information_schema") {
            return false;
        }
        (self.include_schemas.is_empty()
            || self.include_schemas.iter().any(|p| glob_matches(p, schema)))
            && !self.exclude_schemas.iter().any(|p| glob_matches(p, schema))
    }

    /// Whether `schema.name` (a table, view, volume or function) is synced.
    pub fn includes_object(&self, schema: &str, name: &str) -> bool {
        let qualified = format!("{schema}.{name}");
        self.includes_schema(schema)
            && (self.include_tables.is_empty()
                || self
                    .include_tables
                    .iter()
                    .any(|p| glob_matches(p, &qualified)))
            && !self
                .exclude_tables
                .iter()
                .any(|p| glob_matches(p, &qualified))
    }
}

/// A three-part name, lower case.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FullName {
    pub catalog: String,
    pub schema: String,
    pub name: String,
}

impl FullName {
    pub fn parse(full: &str) -> Option<FullName> {
        let mut parts = full.split('.');
        let (c, s, n) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || [c, s, n].iter().any(|p| p.is_empty()) {
            return None;
        }
        Some(FullName {
            catalog: c.to_lowercase(),
            schema: s.to_lowercase(),
            name: n.to_lowercase(),
        })
    }

    pub fn with_catalog(&self, catalog: &str) -> FullName {
        FullName {
            catalog: catalog.to_lowercase(),
            ..self.clone()
        }
    }
}

/// Serialised as its dotted text, so it can key a JSON object.
impl serde::Serialize for FullName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for FullName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        FullName::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!("`{text}` is not a catalog.schema.name"))
        })
    }
}

impl std::fmt::Display for FullName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.catalog, self.schema, self.name)
    }
}

impl DrSpec {
    /// The mapping of a source catalog, if it is synced.
    pub fn mapping_of(&self, source_catalog: &str) -> Option<&CatalogMapping> {
        self.catalogs
            .iter()
            .find(|c| c.source.eq_ignore_ascii_case(source_catalog))
    }

    /// The mapping whose target is this secondary catalog.
    pub fn mapping_into(&self, target_catalog: &str) -> Option<&CatalogMapping> {
        self.catalogs
            .iter()
            .find(|c| c.target_name().eq_ignore_ascii_case(target_catalog))
    }

    /// The secondary's name of a synced primary object, or None when it is not synced.
    pub fn target_of(&self, source: &FullName) -> Option<FullName> {
        let m = self.mapping_of(&source.catalog)?;
        m.includes_object(&source.schema, &source.name)
            .then(|| source.with_catalog(m.target_name()))
    }

    /// The share on the primary (and the share catalog on the secondary) of a source catalog.
    pub fn share_name(&self, source_catalog: &str) -> String {
        format!("{}{}", self.sharing.share_prefix, source_catalog).to_lowercase()
    }

    /// Where a primary object reads from on the secondary: the same schema and name in
    /// the share catalog of its source catalog.
    pub fn shared_name(&self, source: &FullName) -> FullName {
        source.with_catalog(&self.share_name(&source.catalog))
    }

    /// The secondary's URL of a primary storage URL, by the longest matching prefix.
    pub fn map_location(&self, url: &str) -> Result<String, String> {
        self.locations
            .iter()
            .filter(|m| is_under(url, &m.primary))
            .max_by_key(|m| m.primary.trim_end_matches('/').len())
            .map(|m| {
                let rest = &url[m.primary.trim_end_matches('/').len()..];
                format!("{}{rest}", m.secondary.trim_end_matches('/'))
            })
            .ok_or_else(|| format!("location {url} is outside every mapping in locations[]"))
    }

    /// The secondary's principal for a primary principal.
    pub fn map_principal<'a>(&'a self, principal: &'a str) -> &'a str {
        self.principals
            .get(principal)
            .map(String::as_str)
            .unwrap_or(principal)
    }

    /// The secondary's IAM role for a primary storage credential.
    pub fn map_credential_role(&self, credential: &str) -> Option<&str> {
        self.storage_credentials
            .iter()
            .find(|c| c.primary.eq_ignore_ascii_case(credential))
            .map(|c| c.secondary_role_arn.as_str())
    }
}

/// `s3://bucket` or `s3://bucket/prefix[/]`, with a valid bucket name.
pub fn is_s3_prefix(v: &str) -> bool {
    v.strip_prefix("s3://").is_some_and(|rest| {
        let bucket = rest.split('/').next().unwrap_or_default();
        lakeops_shared::validate::is_bucket_name(bucket) && !rest.contains("//")
    })
}

/// Whether `url` is `base` or below it, by whole path segments.
pub fn is_under(url: &str, base: &str) -> bool {
    let base = base.trim_end_matches('/');
    let url = url.trim_end_matches('/');
    url == base || url.starts_with(&format!("{base}/"))
}

pub fn overlaps(a: &str, b: &str) -> bool {
    is_under(a, b) || is_under(b, a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn spec() -> DrSpec {
        crate::spec::parse(&crate::spec::tests::sample()).unwrap()
    }

    #[test]
    fn globs_match_whole_names_case_insensitively() {
        assert!(glob_matches("tmp_*", "TMP_scratch"));
        assert!(glob_matches("*", ""));
        assert!(glob_matches("a?c", "abc"));
        assert!(!glob_matches("a?c", "abbc"));
        assert!(glob_matches("*.fact_*", "sales.fact_orders"));
        assert!(!glob_matches("sales", "sales2"));
        assert!(glob_matches("a*b*c", "axxbyyc"));
        assert!(!glob_matches("a*b*c", "axxbyy"));
    }

    #[test]
    fn names_map_through_their_catalog_and_filters() {
        let s = spec();
        let t = FullName::parse("Sales.core.Orders").unwrap();
        assert_eq!(s.target_of(&t).unwrap().to_string(), "sales_dr.core.orders");
        assert!(s
            .target_of(&FullName::parse("sales.tmp_x.o").unwrap())
            .is_none());
        assert!(s
            .target_of(&FullName::parse("other.a.b").unwrap())
            .is_none());
        assert!(s
            .target_of(&FullName::parse("main.information_schema.tables").unwrap())
            .is_none());
        assert_eq!(
            s.shared_name(&t).to_string(),
            "lakeops_dr_sales.core.orders"
        );
    }

    #[test]
    fn locations_map_by_the_longest_prefix_and_whole_segments() {
        let mut s = spec();
        s.locations.push(crate::spec::LocationMapping {
            primary: "s3://lake-use1/raw".into(),
            secondary: "s3://raw-usw2/r".into(),
        });
        assert_eq!(
            s.map_location("s3://lake-use1/x/y").unwrap(),
            "s3://lake-usw2/x/y"
        );
        assert_eq!(
            s.map_location("s3://lake-use1/raw/t").unwrap(),
            "s3://raw-usw2/r/t"
        );
        assert_eq!(
            s.map_location("s3://lake-use1/rawer").unwrap(),
            "s3://lake-usw2/rawer"
        );
        assert!(s.map_location("s3://lake-use10/x").is_err());
        assert!(s
            .map_location("s3://elsewhere/x")
            .unwrap_err()
            .contains("locations[]"));
    }

    #[test]
    fn principals_map_or_keep_their_name() {
        let s = spec();
        assert_eq!(s.map_principal("data-eng-use1"), "data-eng-usw2");
        assert_eq!(s.map_principal("analysts"), "analysts");
    }

    proptest! {
        #[test]
        fn a_star_matches_everything_and_a_literal_itself(name in "[a-z0-9_]{0,20}") {
            prop_assert!(glob_matches("*", &name));
            prop_assert!(glob_matches(&name, &name));
            let (pattern, longer) = (format!("{name}*"), format!("{name}tail"));
            prop_assert!(glob_matches(&pattern, &longer));
        }

        #[test]
        fn mapped_locations_keep_their_suffix(suffix in "[a-z0-9/]{0,30}") {
            let s = spec();
            let url = format!("s3://lake-use1/{suffix}");
            let mapped = s.map_location(&url).unwrap();
            prop_assert_eq!(mapped, format!("s3://lake-usw2/{suffix}"));
        }
    }
}
