//! CloudWatch metrics as Embedded Metric Format (EMF) log lines.
//!
//! A Lambda function prints one JSON object per line to stdout; CloudWatch
//! Logs extracts the metrics from the `_aws` block (no API call, no extra
//! latency). Example:
//!
//! ```json
//! {"_aws":{"Timestamp":1700000000000,"CloudWatchMetrics":[{"Namespace":"hubsync",
//!   "Dimensions":[["Function","Reason"]],"Metrics":[{"Name":"DeliveriesRejected","Unit":"Count"}]}]},
//!  "Function":"webhook-intake","Reason":"bad_signature","DeliveriesRejected":1}
//! ```
//!
//! Dimensions carry ids and reasons only, never PII or tokens.

use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{json, Map, Value};

/// The CloudWatch namespace of every hubsync metric.
pub const NAMESPACE: &str = "hubsync";

/// Where EMF lines go: stdout in Lambda, a buffer in tests.
type Sink = Arc<dyn Fn(&str) + Send + Sync>;

fn sink() -> &'static Mutex<Option<Sink>> {
    static SINK: OnceLock<Mutex<Option<Sink>>> = OnceLock::new();
    SINK.get_or_init(|| Mutex::new(None))
}

/// Send every EMF line of this process to `f` instead of stdout (tests).
pub fn capture(f: impl Fn(&str) + Send + Sync + 'static) {
    if let Ok(mut s) = sink().lock() {
        *s = Some(Arc::new(f));
    }
}

fn write_line(line: &str) {
    let custom = sink().lock().ok().and_then(|s| s.clone());
    match custom {
        Some(f) => f(line),
        // `println!` (not a raw stdout handle) so that test harnesses capture
        // the lines of passing tests; in Lambda it is plain stdout.
        None => println!("{line}"),
    }
}

/// One EMF record: a set of dimensions and the metric values for them.
#[derive(Debug, Clone)]
pub struct Metrics {
    dimensions: Vec<(String, String)>,
    values: Vec<(String, f64, &'static str)>,
}

impl Metrics {
    /// Metrics of `function` (the `Function` dimension).
    pub fn new(function: &str) -> Self {
        Self {
            dimensions: vec![("Function".into(), function.into())],
            values: Vec::new(),
        }
    }

    /// Add a dimension (e.g. `Reason`, `PortalId`).
    pub fn dimension(mut self, name: &str, value: impl ToString) -> Self {
        self.dimensions.push((name.into(), value.to_string()));
        self
    }

    /// A count.
    pub fn count(mut self, name: &str, value: u64) -> Self {
        self.values.push((name.into(), value as f64, "Count"));
        self
    }

    /// A duration in milliseconds.
    pub fn millis(mut self, name: &str, value: f64) -> Self {
        self.values.push((name.into(), value, "Milliseconds"));
        self
    }

    /// The EMF JSON line (without emitting it).
    pub fn to_line(&self, timestamp_ms: i64) -> String {
        let mut root = Map::new();
        let dims: Vec<&str> = self.dimensions.iter().map(|(k, _)| k.as_str()).collect();
        let metrics: Vec<Value> = self
            .values
            .iter()
            .map(|(name, _, unit)| json!({"Name": name, "Unit": unit}))
            .collect();
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [dims],
                    "Metrics": metrics,
                }],
            }),
        );
        for (k, v) in &self.dimensions {
            root.insert(k.clone(), Value::String(v.clone()));
        }
        for (name, value, _) in &self.values {
            root.insert(name.clone(), json!(value));
        }
        Value::Object(root).to_string()
    }

    /// Print the line (nothing when no value was added).
    pub fn emit(self) {
        if self.values.is_empty() {
            return;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        write_line(&self.to_line(now));
    }
}

/// Adds the named counter fields of `$from` to `$into` (`+=`): a run's or a
/// batch's counts absorbing a part's, one field list per struct.
#[macro_export]
macro_rules! add_counts {
    ($into:expr, $from:expr; $($field:ident),+ $(,)?) => {
        $( $into.$field += $from.$field; )+
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_is_valid_emf() {
        let line = Metrics::new("webhook-intake")
            .dimension("Reason", "bad_signature")
            .count("DeliveriesRejected", 1)
            .to_line(1_700_000_000_000);
        let v: Value = serde_json::from_str(&line).unwrap();
        let cw = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(cw["Namespace"], "hubsync");
        assert_eq!(cw["Dimensions"], json!([["Function", "Reason"]]));
        assert_eq!(
            cw["Metrics"],
            json!([{"Name": "DeliveriesRejected", "Unit": "Count"}])
        );
        assert_eq!(v["Function"], "webhook-intake");
        assert_eq!(v["Reason"], "bad_signature");
        assert_eq!(v["DeliveriesRejected"], json!(1.0));
        assert_eq!(v["_aws"]["Timestamp"], json!(1_700_000_000_000i64));
    }

    #[test]
    fn nothing_is_emitted_without_values() {
        let seen = Arc::new(Mutex::new(Vec::<String>::new()));
        let s = seen.clone();
        capture(move |l| s.lock().unwrap().push(l.to_string()));
        Metrics::new("x").dimension("Reason", "y").emit();
        assert!(seen
            .lock()
            .unwrap()
            .iter()
            .all(|l| !l.contains("\"Function\":\"x\"")));
    }
}
