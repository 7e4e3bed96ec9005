//! Logs and metrics as Lambda expects them.
//!
//! Logs follow Lambda's advanced logging controls: `AWS_LAMBDA_LOG_FORMAT`
//! (`JSON` or `Text`) and `AWS_LAMBDA_LOG_LEVEL`; `RUST_LOG` is honoured when
//! the Lambda level is unset. Metrics are CloudWatch Embedded Metric Format
//! lines on stdout, which CloudWatch turns into metrics without an API call.

use serde_json::{json, Map, Value};
use tracing_subscriber::EnvFilter;

/// Libraries whose debug output is noise in a function's logs.
const QUIET_TARGETS: &[&str] = &[
    "aws_smithy_runtime",
    "aws_smithy_http_client",
    "aws_config",
    "hyper",
    "hyper_util",
    "h2",
    "rustls",
    "reqwest",
];

/// Build the filter directive from Lambda's level name (`FATAL` counts as `ERROR`).
pub fn filter_directive(lambda_level: Option<&str>, rust_log: Option<&str>) -> String {
    let base = match lambda_level.map(|l| l.trim().to_ascii_uppercase()) {
        Some(level) if !level.is_empty() => match level.as_str() {
            "FATAL" => "error".to_string(),
            "TRACE" | "DEBUG" | "INFO" | "WARN" | "ERROR" => level.to_ascii_lowercase(),
            _ => "info".to_string(),
        },
        _ => match rust_log {
            // An explicit RUST_LOG is the developer's full choice.
            Some(directive) if !directive.trim().is_empty() => return directive.to_string(),
            _ => "info".to_string(),
        },
    };
    let mut directive = base;
    for target in QUIET_TARGETS {
        directive.push_str(&format!(",{target}=warn"));
    }
    directive
}

/// Whether logs should be JSON (`AWS_LAMBDA_LOG_FORMAT=JSON`).
pub fn json_format(lambda_format: Option<&str>) -> bool {
    lambda_format.is_some_and(|f| f.trim().eq_ignore_ascii_case("json"))
}

/// Install the global subscriber once; later calls do nothing.
pub fn init() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL").ok();
    let rust_log = std::env::var("RUST_LOG").ok();
    let filter = EnvFilter::try_new(filter_directive(level.as_deref(), rust_log.as_deref()))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let format = std::env::var("AWS_LAMBDA_LOG_FORMAT").ok();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(true);
    let result = if json_format(format.as_deref()) {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        // CloudWatch adds its own timestamp to text logs.
        builder.with_ansi(false).without_time().try_init()
    };
    let _ = result;
}

/// A metric unit, as EMF names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Seconds,
    Milliseconds,
    Bytes,
    None,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Seconds => "Seconds",
            Unit::Milliseconds => "Milliseconds",
            Unit::Bytes => "Bytes",
            Unit::None => "None",
        }
    }
}

/// One EMF record: metrics of one function, under the namespace `lakeops`.
#[derive(Debug, Clone)]
pub struct Metrics {
    namespace: String,
    dimensions: Vec<(String, String)>,
    values: Vec<(String, f64, Unit)>,
    properties: Map<String, Value>,
}

impl Metrics {
    pub const NAMESPACE: &'static str = "lakeops";

    /// Metrics dimensioned by `Function`.
    pub fn new(function: &str) -> Self {
        Self {
            namespace: Self::NAMESPACE.to_string(),
            dimensions: vec![("Function".to_string(), function.to_string())],
            values: Vec::new(),
            properties: Map::new(),
        }
    }

    pub fn dimension(mut self, name: &str, value: &str) -> Self {
        self.dimensions.push((name.to_string(), value.to_string()));
        self
    }

    pub fn put(&mut self, name: &str, value: f64, unit: Unit) {
        self.values.push((name.to_string(), value, unit));
    }

    /// A searchable property that is not a metric (e.g. a request id).
    pub fn property(&mut self, name: &str, value: Value) {
        self.properties.insert(name.to_string(), value);
    }

    /// The EMF JSON document for the given time.
    pub fn to_emf(&self, timestamp_ms: u64) -> Value {
        let mut root = self.properties.clone();
        for (name, value) in &self.dimensions {
            root.insert(name.clone(), json!(value));
        }
        for (name, value, _) in &self.values {
            root.insert(name.clone(), json!(value));
        }
        let dimension_names: Vec<&str> = self.dimensions.iter().map(|(n, _)| n.as_str()).collect();
        let metric_defs: Vec<Value> = self
            .values
            .iter()
            .map(|(name, _, unit)| json!({"Name": name, "Unit": unit.as_str()}))
            .collect();
        root.insert(
            "_aws".to_string(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [dimension_names],
                    "Metrics": metric_defs,
                }]
            }),
        );
        Value::Object(root)
    }

    /// Print the record on stdout, where the Lambda log agent picks it up.
    pub fn emit(&self) {
        if self.values.is_empty() {
            return;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        println!("{}", self.to_emf(now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_level_wins_and_fatal_is_error() {
        assert!(filter_directive(Some("DEBUG"), Some("trace")).starts_with("debug,"));
        assert!(filter_directive(Some("FATAL"), None).starts_with("error,"));
        assert_eq!(
            filter_directive(None, Some("catalog_ingest=trace")),
            "catalog_ingest=trace"
        );
        assert!(filter_directive(None, None).starts_with("info,"));
        assert!(filter_directive(Some("bogus"), None).starts_with("info,"));
        assert!(json_format(Some("JSON")));
        assert!(!json_format(Some("Text")));
        assert!(!json_format(None));
    }

    #[test]
    fn emf_document_shape() {
        let mut metrics = Metrics::new("network-sleep").dimension("Environment", "dev");
        metrics.put("GatewaysAsleep", 3.0, Unit::Count);
        metrics.property("action", json!("sleep"));
        let doc = metrics.to_emf(1_700_000_000_000);
        assert_eq!(doc["Function"], "network-sleep");
        assert_eq!(doc["GatewaysAsleep"], 3.0);
        assert_eq!(doc["action"], "sleep");
        let cw = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(cw["Namespace"], "lakeops");
        assert_eq!(cw["Dimensions"][0], json!(["Function", "Environment"]));
        assert_eq!(
            cw["Metrics"][0],
            json!({"Name": "GatewaysAsleep", "Unit": "Count"})
        );
        assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_000u64);
    }
}
