//! Static checks of `template.yaml`'s alarms and dashboard: every alarm of
//! issue #7 exists, notifies the alarm topic and links its runbook entry in
//! `docs/OPERATIONS.md`; every `hubsync` metric an alarm or the dashboard
//! reads is one the code emits (found in the functions' and shared crates'
//! sources).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::{json, Value};

use super::template::*;

// ------------------------------------------------------------------ metrics the code emits

/// One EMF line the code can print: a `Metrics::new(<function>)` chain up to
/// its `.emit()`, with its dimensions (`Function` and each `.dimension("…"`)
/// and metrics (`.count("…"`, `.millis("…"`). CloudWatch keeps a metric per
/// exact dimension set, so alarms and widgets must name one of these sets.
#[derive(Debug, Clone, PartialEq)]
struct Emission {
    function: String,
    dimensions: BTreeSet<String>,
    metrics: BTreeSet<String>,
    file: String,
}

/// The string literals that follow each `marker` (whitespace allowed
/// between them, as rustfmt breaks long calls).
fn literals_after(text: &str, marker: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find(marker) {
        rest = rest[i + marker.len()..].trim_start();
        if let Some(literal) = rest.strip_prefix('"') {
            if let Some(end) = literal.find('"') {
                out.insert(literal[..end].to_string());
            }
        }
    }
    out
}

fn rust_files(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `const NAME: &str = "value";` of a crate's sources.
fn string_consts(texts: &[String]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for text in texts {
        for line in text.lines() {
            let Some(rest) = line
                .trim()
                .strip_prefix("pub const ")
                .or_else(|| line.trim().strip_prefix("const "))
            else {
                continue;
            };
            let Some((name, value)) = rest.split_once(": &str =") else {
                continue;
            };
            if let Some(v) = value
                .trim()
                .strip_prefix('"')
                .and_then(|v| v.split('"').next())
            {
                out.insert(name.trim().to_string(), v.to_string());
            }
        }
    }
    out
}

/// Every `Metrics::new(…)…emit()` chain of the functions' and the shared
/// crates' sources (tests excluded: `src/` only).
fn emissions() -> Vec<Emission> {
    let mut out = Vec::new();
    for group in ["functions", "shared"] {
        let dir = workspace_root().join(group);
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let mut files = Vec::new();
            rust_files(
                &entry.expect("directory entry").path().join("src"),
                &mut files,
            );
            let texts: Vec<String> = files
                .iter()
                .map(|f| std::fs::read_to_string(f).expect("read a source file"))
                .collect();
            let consts = string_consts(&texts);
            for (file, text) in files.iter().zip(&texts) {
                let mut rest = text.as_str();
                while let Some(i) = rest.find("Metrics::new(") {
                    rest = &rest[i + "Metrics::new(".len()..];
                    let Some(close) = rest.find(')') else { break };
                    let argument = rest[..close].trim();
                    let function = match argument.strip_prefix('"') {
                        Some(literal) => literal.trim_end_matches('"').to_string(),
                        None => {
                            let ident = argument.rsplit("::").next().unwrap_or(argument);
                            match consts.get(ident) {
                                Some(v) => v.clone(),
                                // A parameter (the helper itself, tests).
                                None => continue,
                            }
                        }
                    };
                    let chain = &rest[..rest.find(".emit()").unwrap_or(rest.len())];
                    let mut dimensions = literals_after(chain, ".dimension(");
                    dimensions.insert("Function".into());
                    let mut metrics = literals_after(chain, ".count(");
                    metrics.extend(literals_after(chain, ".millis("));
                    if !metrics.is_empty() {
                        out.push(Emission {
                            function,
                            dimensions,
                            metrics,
                            file: file.display().to_string(),
                        });
                    }
                }
            }
        }
    }
    assert!(
        out.iter().any(|e| e.metrics.contains("RecordsWritten")),
        "the source scan found none of the worker's metrics"
    );
    out
}

/// A metric an alarm or a dashboard widget reads.
#[derive(Debug, Clone)]
struct MetricRef {
    namespace: String,
    name: String,
    /// (dimension, value); values may be intrinsics in alarms.
    dimensions: Vec<(String, Value)>,
}

impl MetricRef {
    fn dimension(&self, name: &str) -> Option<&Value> {
        self.dimensions
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    fn is(&self, namespace: &str, name: &str) -> bool {
        self.namespace == namespace && self.name == name
    }
}

/// A `hubsync` metric must be one some emission prints: its `Function`,
/// its name, and exactly its dimension set.
fn check_emitted(emitted: &[Emission], m: &MetricRef) -> Result<(), String> {
    if m.namespace != "hubsync" {
        return Ok(());
    }
    let function = m
        .dimension("Function")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{m:?}: every hubsync metric has a literal Function dimension"))?;
    let dimensions: BTreeSet<String> = m.dimensions.iter().map(|(k, _)| k.clone()).collect();
    if emitted.iter().any(|e| {
        e.function == function && e.metrics.contains(&m.name) && e.dimensions == dimensions
    }) {
        return Ok(());
    }
    let near: Vec<String> = emitted
        .iter()
        .filter(|e| e.metrics.contains(&m.name))
        .map(|e| format!("Function={} by {:?} ({})", e.function, e.dimensions, e.file))
        .collect();
    Err(format!(
        "{} by {dimensions:?} (Function={function}) is not emitted; the code emits it as: {near:?}",
        m.name
    ))
}

fn alarms(t: &Value) -> Vec<(&String, &Value)> {
    resources_of_type(t, "AWS::CloudWatch::Alarm")
}

fn metric_ref(metric: &Value) -> MetricRef {
    MetricRef {
        namespace: metric["Namespace"].as_str().unwrap_or_default().to_string(),
        name: metric["MetricName"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        dimensions: metric["Dimensions"]
            .as_array()
            .map(|ds| {
                ds.iter()
                    .map(|d| {
                        (
                            d["Name"].as_str().unwrap_or_default().to_string(),
                            d["Value"].clone(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// The metrics an alarm reads: its single metric, or every `MetricStat`
/// of its metric-math `Metrics`.
fn alarm_metrics(alarm: &Value) -> Vec<MetricRef> {
    let p = &alarm["Properties"];
    match p["Metrics"].as_array() {
        Some(queries) => queries
            .iter()
            .filter(|q| !q["MetricStat"].is_null())
            .map(|q| metric_ref(&q["MetricStat"]["Metric"]))
            .collect(),
        None => vec![metric_ref(p)],
    }
}

/// The expression an alarm watches (`ReturnData: true`), `Fn::Sub` text
/// included.
fn alarm_expressions(alarm: &Value) -> String {
    alarm["Properties"]["Metrics"]
        .as_array()
        .map(|qs| {
            qs.iter()
                .filter(|q| !q["Expression"].is_null())
                .map(|q| q["Expression"].to_string())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// The one alarm that reads a metric matching `pred`.
fn alarm_reading<'a>(
    t: &'a Value,
    what: &str,
    pred: impl Fn(&MetricRef) -> bool,
) -> (&'a String, &'a Value) {
    let found: Vec<_> = alarms(t)
        .into_iter()
        .filter(|(_, a)| alarm_metrics(a).iter().any(&pred))
        .collect();
    assert!(!found.is_empty(), "no alarm on {what}");
    found[0]
}

fn is_ref(v: &Value, name: &str) -> bool {
    ref_name(v) == Some(name)
}

#[test]
fn the_alarms_ops_need_exist() {
    let t = template();
    // Intake 5xx: the handler's answered 5xx, its crashes, and the API's.
    let (id, _) = alarm_reading(&t, "the intake's 5xx answers", |m| {
        m.is("hubsync", "IntakeErrors") && m.dimension("Function") == Some(&json!("webhook-intake"))
    });
    let intake = &resources(&t)[id.as_str()];
    assert!(
        alarm_metrics(intake)
            .iter()
            .any(|m| m.is("AWS/Lambda", "Errors")
                && m.dimension("FunctionName")
                    .is_some_and(|v| is_ref(v, "WebhookIntakeFunction"))),
        "{id} also counts the intake's crashes"
    );
    alarm_reading(&t, "the HTTP API's 5xx", |m| {
        m.is("AWS/ApiGateway", "5xx") && m.dimension("ApiId").is_some_and(|v| is_ref(v, "HttpApi"))
    });
    // Worker and reconcile errors and throttles.
    for function in ["RecordUpsertFunction", "ReconcileFunction"] {
        for metric in ["Errors", "Throttles"] {
            alarm_reading(&t, &format!("{function} {metric}"), |m| {
                m.is("AWS/Lambda", metric)
                    && m.dimension("FunctionName")
                        .is_some_and(|v| is_ref(v, function))
            });
        }
    }
    // The webhook path falling behind.
    alarm_reading(&t, "the age of the events queue's oldest message", |m| {
        m.is("AWS/SQS", "ApproximateAgeOfOldestMessage")
            && m.dimension("QueueName")
                == Some(&json!({"Fn::GetAtt": ["EventsQueue", "QueueName"]}))
    });
    // A connection flipped to needs_reauth.
    let (id, a) = alarm_reading(&t, "connections flipping to needs_reauth", |m| {
        m.is("hubsync", "ConnectionsNeedsReauth")
    });
    assert_eq!(
        as_u64(&a["Properties"]["Threshold"]),
        Some(0),
        "{id}: any flip"
    );
    // Nightly drift over the configured threshold (initial syncs excluded).
    let (id, a) = alarm_reading(&t, "nightly drift", |m| {
        m.is("hubsync", "ReconcileDrift") && m.dimension("Kind") == Some(&json!("nightly"))
    });
    let p = &a["Properties"];
    assert!(
        is_ref(&p["Threshold"], "DriftAlertThreshold"),
        "{id}: the threshold parameter"
    );
    assert_eq!(
        p["Statistic"], "Maximum",
        "{id}: one portal and type over the threshold"
    );
    assert_eq!(p["ComparisonOperator"], "GreaterThanThreshold", "{id}");
    // Not finished by the deadline: nightly activity after the deadline hour.
    let (id, a) = alarm_reading(&t, "nightly hand-overs", |m| {
        m.is("hubsync", "ReconcileHandovers") && m.dimension("Kind") == Some(&json!("nightly"))
    });
    assert!(
        alarm_metrics(a)
            .iter()
            .any(|m| m.is("hubsync", "ReconcileRunsFinished")
                && m.dimension("Kind") == Some(&json!("nightly"))),
        "{id}: a nightly run finishing after the deadline is late too"
    );
    let expression = alarm_expressions(a);
    assert!(
        expression.contains("HOUR(") && expression.contains("${ReconcileDeadlineHourUtc}"),
        "{id}: gated on the deadline parameter: {expression}"
    );
    // Not started: a daily heartbeat, missing data breaching.
    let (id, a) = alarm_reading(&t, "the nightly fan-out", |m| {
        m.is("hubsync", "NightlyJobsQueued")
    });
    let p = &a["Properties"];
    assert_eq!(p["TreatMissingData"], "breaching", "{id}: a heartbeat");
    let period = as_u64(&p["Period"]).unwrap_or(0);
    let periods = as_u64(&p["EvaluationPeriods"]).unwrap_or(0);
    assert_eq!(period * periods, 86_400, "{id}: 24 hours without a fan-out");
    assert_eq!(
        as_u64(&p["DatapointsToAlarm"]),
        Some(periods),
        "{id}: all of them missing"
    );
}

#[test]
fn every_alarm_notifies_the_topic_and_links_its_runbook() {
    let t = template();
    let res = resources(&t);
    let runbook = std::fs::read_to_string(workspace_root().join("docs/OPERATIONS.md"))
        .expect("docs/OPERATIONS.md");
    let anchors: BTreeSet<String> = runbook
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| {
            l.trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
                .map(|c| if c == ' ' { '-' } else { c })
                .collect()
        })
        .collect();
    let all = alarms(&t);
    assert!(all.len() >= 10, "found only {} alarms", all.len());
    for (id, a) in all {
        let p = &a["Properties"];
        for actions in ["AlarmActions", "OKActions"] {
            let topic = p[actions]
                .as_array()
                .and_then(|a| a.first())
                .and_then(ref_name)
                .unwrap_or_else(|| panic!("{id}: no {actions}"));
            assert_eq!(res[topic]["Type"], "AWS::SNS::Topic", "{id}.{actions}");
        }
        assert!(
            matches!(
                p["TreatMissingData"].as_str(),
                Some("breaching" | "notBreaching" | "ignore" | "missing")
            ),
            "{id}: choose TreatMissingData deliberately"
        );
        let description = match &p["AlarmDescription"] {
            Value::String(s) => s.clone(),
            other => other["Fn::Sub"].as_str().unwrap_or_default().to_string(),
        };
        assert!(
            description.len() <= 1024,
            "{id}: CloudWatch takes at most 1024 characters of description"
        );
        let link = description
            .split("docs/OPERATIONS.md#")
            .nth(1)
            .map(|rest| {
                rest.chars()
                    .take_while(|c| c.is_alphanumeric() || matches!(c, '-' | '_'))
                    .collect::<String>()
            })
            .unwrap_or_else(|| panic!("{id}: the description links no runbook entry"));
        assert!(
            anchors.contains(&link),
            "{id}: docs/OPERATIONS.md has no heading for #{link}"
        );
    }
}

#[test]
fn metric_math_alarms_are_well_formed() {
    // What PutMetricAlarm refuses only at deploy time.
    let t = template();
    let mut math = 0;
    for (id, a) in alarms(&t) {
        let Some(queries) = a["Properties"]["Metrics"].as_array() else {
            continue;
        };
        math += 1;
        assert!(
            a["Properties"]["MetricName"].is_null() && a["Properties"]["Period"].is_null(),
            "{id}: Metrics excludes MetricName/Period"
        );
        let ids: Vec<&str> = queries.iter().filter_map(|q| q["Id"].as_str()).collect();
        assert_eq!(ids.len(), queries.len(), "{id}: every query has an Id");
        for q in &ids {
            assert!(
                q.starts_with(|c: char| c.is_ascii_lowercase())
                    && q.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{id}: Id {q} must start lowercase"
            );
        }
        let returned = queries.iter().filter(|q| q["ReturnData"] == true).count();
        assert_eq!(returned, 1, "{id}: exactly one query returns data");
        let periods: BTreeSet<u64> = queries
            .iter()
            .filter_map(|q| as_u64(&q["MetricStat"]["Period"]))
            .collect();
        assert_eq!(periods.len(), 1, "{id}: one period for all metrics");
        for q in queries {
            let expression = match &q["Expression"] {
                Value::String(e) => e.clone(),
                Value::Null => continue,
                other => other["Fn::Sub"].as_str().unwrap_or_default().to_string(),
            };
            // Every identifier that is not a function, a number or a
            // substitution is a query of this alarm.
            let words = expression
                .split(|c: char| {
                    !(c.is_ascii_alphanumeric() || c == '_' || c == '$' || c == '{' || c == '}')
                })
                .filter(|w| !w.is_empty() && !w.starts_with('$'));
            for w in words {
                let function = w.chars().all(|c| c.is_ascii_uppercase() || c == '_');
                let number = w.chars().all(|c| c.is_ascii_digit());
                assert!(
                    function || number || ids.contains(&w),
                    "{id}: {w} in `{expression}` is not a query of the alarm"
                );
            }
        }
    }
    assert!(math >= 4, "the metric-math alarms");
}

// ------------------------------------------------------------------ dashboard

/// `${Name}` / `${Name.Attribute}` of a `Fn::Sub` text.
fn sub_names(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        rest = &rest[i + 2..];
        if let Some(end) = rest.find('}') {
            out.push(rest[..end].to_string());
            rest = &rest[end..];
        }
    }
    out
}

/// The dashboard's body: the `Fn::Sub` text.
fn dashboard_text(t: &Value) -> &str {
    let dashboards = resources_of_type(t, "AWS::CloudWatch::Dashboard");
    assert_eq!(dashboards.len(), 1, "one dashboard");
    dashboards[0].1["Properties"]["DashboardBody"]["Fn::Sub"]
        .as_str()
        .expect("DashboardBody is a !Sub text")
}

/// The dashboard's body as JSON, each `${name}` replaced by
/// `placeholder(name)` (it must keep the text JSON).
fn dashboard_json(t: &Value, placeholder: impl Fn(&str) -> String) -> Value {
    let mut text = dashboard_text(t).to_string();
    for n in sub_names(dashboard_text(t)) {
        text = text.replace(&format!("${{{n}}}"), &placeholder(&n));
    }
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("the dashboard body is not JSON: {e}\n{text}"))
}

/// With numbers for the substitutions (some stand where JSON has a number).
fn dashboard(t: &Value) -> Value {
    dashboard_json(t, |_| "1".into())
}

/// `SEARCH('{ns,Dim,…} Dim="v" MetricName="M"', …)` → the metric it finds.
fn search_ref(expression: &str) -> Option<MetricRef> {
    let inner = expression.split("SEARCH('{").nth(1)?;
    let (schema, query) = inner.split_once('}')?;
    let mut schema = schema.split(',').map(str::trim);
    let namespace = schema.next()?.to_string();
    let value_of = |key: &str| {
        query
            .split(&format!("{key}=\""))
            .nth(1)
            .and_then(|v| v.split('"').next())
            .map(str::to_string)
    };
    Some(MetricRef {
        namespace,
        name: value_of("MetricName")?,
        dimensions: schema
            .map(|d| {
                (
                    d.to_string(),
                    value_of(d).map(Value::String).unwrap_or(Value::Null),
                )
            })
            .collect(),
    })
}

/// Every metric of every metric widget.
fn dashboard_metrics(body: &Value) -> Vec<MetricRef> {
    let mut out = Vec::new();
    for w in body["widgets"].as_array().expect("widgets") {
        let Some(metrics) = w["properties"]["metrics"].as_array() else {
            continue;
        };
        for m in metrics {
            let items = m.as_array().expect("a metric is an array");
            if let Some(expression) = items.first().and_then(|i| i["expression"].as_str()) {
                out.push(
                    search_ref(expression)
                        .unwrap_or_else(|| panic!("not a SEARCH expression: {expression}")),
                );
                continue;
            }
            let strings: Vec<&str> = items.iter().map_while(Value::as_str).collect();
            assert!(
                strings.len() >= 2 && strings.len() % 2 == 0,
                "[namespace, name, dim, value, …]: {m}"
            );
            out.push(MetricRef {
                namespace: strings[0].to_string(),
                name: strings[1].to_string(),
                dimensions: strings[2..]
                    .chunks(2)
                    .map(|kv| (kv[0].to_string(), json!(kv[1])))
                    .collect(),
            });
        }
    }
    out
}

#[test]
fn dashboard_is_json_over_template_resources_and_every_alarm() {
    let t = template();
    let text = dashboard_text(&t);
    for n in sub_names(text) {
        let base = n.split('.').next().unwrap_or_default();
        assert!(
            base.starts_with("AWS::")
                || resources(&t).contains_key(base)
                || !t["Parameters"][base].is_null(),
            "the dashboard substitutes ${{{n}}}, which the template does not define"
        );
    }
    let body = dashboard(&t);
    let widgets = body["widgets"].as_array().expect("widgets");
    assert!(widgets.len() >= 10, "{} widgets", widgets.len());
    let listed: Vec<&str> = widgets
        .iter()
        .filter(|w| w["type"] == "alarm")
        .filter_map(|w| w["properties"]["alarms"].as_array())
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    assert!(!listed.is_empty(), "an alarm status widget");
    for (id, _) in alarms(&t) {
        assert!(
            text.contains(&format!("\"${{{id}.Arn}}\"")),
            "the dashboard's alarm widget does not show {id}"
        );
    }
    // Metrics of AWS services are tied to this stack's resources: read the
    // body again with each substitution as a `<name>` string.
    let named = dashboard_metrics(&dashboard_json(&t, |n| {
        if t["Parameters"][n].is_object() {
            "1".into()
        } else {
            format!("<{n}>")
        }
    }));
    for m in named.iter().filter(|m| m.namespace.starts_with("AWS/")) {
        assert!(
            m.dimensions
                .iter()
                .any(|(_, v)| v.as_str().is_some_and(|v| v.starts_with('<'))),
            "{m:?} is not tied to a resource of the stack"
        );
    }
    let shows = |namespace: &str, name: &str, value: &str| {
        named.iter().any(|m| {
            m.is(namespace, name) && m.dimensions.iter().any(|(_, v)| v.as_str() == Some(value))
        })
    };
    for (id, _) in functions(&t) {
        for metric in ["Errors", "Throttles", "Duration"] {
            assert!(
                shows("AWS/Lambda", metric, &format!("<{id}>")),
                "the dashboard lacks {id}'s {metric}"
            );
        }
    }
    for (id, _) in resources_of_type(&t, "AWS::SQS::Queue") {
        assert!(
            shows(
                "AWS/SQS",
                "ApproximateNumberOfMessagesVisible",
                &format!("<{id}.QueueName>")
            ),
            "the dashboard lacks {id}'s depth"
        );
    }
}

#[test]
fn alarms_and_dashboard_read_only_metrics_the_code_emits() {
    let t = template();
    let emitted = emissions();
    let mut problems = Vec::new();
    let mut read = BTreeSet::new();
    for (id, a) in alarms(&t) {
        for m in alarm_metrics(a) {
            if let Err(e) = check_emitted(&emitted, &m) {
                problems.push(format!("alarm {id}: {e}"));
            }
            read.insert(m.name.clone());
        }
    }
    for m in dashboard_metrics(&dashboard(&t)) {
        if let Err(e) = check_emitted(&emitted, &m) {
            problems.push(format!("dashboard: {e}"));
        }
        read.insert(m.name.clone());
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // What issue #7 asks the dashboard and alarms to show.
    for name in [
        "EventsReceived",
        "DeliveriesRejected",
        "EventsSkipped",
        "RecordsWritten",
        "RecordsSkipped",
        "RecordsArchived",
        "HubSpotCalls",
        "HubSpot429s",
        "TokenRefreshFailures",
        "ConnectionsNeedsReauth",
        "ReconcileDrift",
        "ReconcileDuration",
        "ApproximateNumberOfMessagesVisible",
    ] {
        assert!(
            read.contains(name),
            "neither an alarm nor the dashboard shows {name}"
        );
    }
}

#[test]
fn the_emitted_metric_check_rejects_what_the_code_does_not_emit() {
    let emitted = emissions();
    let m = |name: &str, dims: &[(&str, &str)]| MetricRef {
        namespace: "hubsync".into(),
        name: name.into(),
        dimensions: dims
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect(),
    };
    let worker = ("Function", "record-upsert");
    assert!(check_emitted(&emitted, &m("RecordsWritten", &[worker])).is_ok());
    assert!(check_emitted(&emitted, &m("RecordsWriten", &[worker])).is_err());
    assert!(check_emitted(
        &emitted,
        &m("RecordsWritten", &[("Function", "recordupsert")])
    )
    .is_err());
    assert!(check_emitted(&emitted, &m("RecordsWritten", &[])).is_err());
    // Exact dimension sets: per portal, or not at all.
    assert!(check_emitted(&emitted, &m("HubSpotCalls", &[worker, ("PortalId", "1")])).is_ok());
    assert!(check_emitted(&emitted, &m("HubSpotCalls", &[worker])).is_err());
    assert!(check_emitted(&emitted, &m("RecordsWritten", &[worker, ("PortalId", "1")])).is_err());
    // Constants resolved through paths (`crate::handler::FUNCTION`).
    assert!(check_emitted(
        &emitted,
        &m("NightlyJobsQueued", &[("Function", "reconcile")])
    )
    .is_ok());
    let search = search_ref(
        "SEARCH('{hubsync,Function,Reason} Function=\"webhook-intake\" MetricName=\"DeliveriesRejected\"', 'Sum', 300)",
    )
    .expect("a SEARCH");
    assert_eq!(search.name, "DeliveriesRejected");
    assert_eq!(search.dimension("Function"), Some(&json!("webhook-intake")));
    assert!(check_emitted(&emitted, &search).is_ok());
}
