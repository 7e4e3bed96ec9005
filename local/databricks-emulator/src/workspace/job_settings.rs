//! Job settings as pure functions: validation, the defaults the service fills in,
//! and the `jobs/update` merge. Handlers in `jobs` store what these return.

use std::collections::HashSet;

use serde_json::{json, Map, Value};

/// The settings blocks that start runs on their own; each has a `pause_status`.
pub const TRIGGER_BLOCKS: [&str; 3] = ["schedule", "continuous", "trigger"];

/// Arrays that `jobs/update` merges entry by entry instead of replacing, with the
/// field that identifies an entry (the SDK documents tasks and job clusters; the
/// service treats environments and parameters the same way).
const MERGED_ARRAYS: [(&str, &str); 4] = [
    ("tasks", "task_key"),
    ("job_clusters", "job_cluster_key"),
    ("environments", "environment_key"),
    ("parameters", "name"),
];

/// The first problem the service would refuse these settings for, as the message of
/// a 400 `INVALID_PARAMETER_VALUE`.
pub fn settings_problem(settings: &Value) -> Option<String> {
    tasks_problem(settings)
        .or_else(|| max_concurrent_runs_problem(settings))
        .or_else(|| triggers_problem(settings))
}

fn tasks_problem(settings: &Value) -> Option<String> {
    let tasks = settings.get("tasks").and_then(Value::as_array)?;
    let mut keys = HashSet::new();
    for t in tasks {
        let Some(k) = t["task_key"].as_str().filter(|k| !k.is_empty()) else {
            return Some("Missing required field: tasks.task_key".into());
        };
        if !keys.insert(k.to_string()) {
            return Some(format!("Task key {k} is used more than once"));
        }
    }
    for t in tasks {
        for dep in t["depends_on"].as_array().into_iter().flatten() {
            let d = dep["task_key"].as_str().unwrap_or_default();
            if !keys.contains(d) {
                return Some(format!(
                    "Task {} depends on unknown task {d}",
                    t["task_key"].as_str().unwrap_or_default()
                ));
            }
        }
    }
    None
}

fn max_concurrent_runs_problem(settings: &Value) -> Option<String> {
    let m = settings["max_concurrent_runs"].as_i64()?;
    (!(0..=1000).contains(&m)).then(|| "max_concurrent_runs must be between 0 and 1000".into())
}

/// A job has at most one of schedule, continuous and trigger (the SDK's
/// `JobSettings` documents "Only one of schedule and continuous can be used").
fn triggers_problem(settings: &Value) -> Option<String> {
    let present: Vec<&str> = TRIGGER_BLOCKS
        .iter()
        .copied()
        .filter(|b| settings.get(*b).is_some_and(|v| !v.is_null()))
        .collect();
    if present.len() > 1 {
        return Some(format!(
            "Only one of schedule, continuous and trigger can be set, got {}",
            present.join(" and ")
        ));
    }
    for block in present {
        if let Some(p) = pause_status_problem(block, &settings[block]) {
            return Some(p);
        }
    }
    let schedule = settings.get("schedule").filter(|v| !v.is_null())?;
    let Some(cron) = schedule["quartz_cron_expression"]
        .as_str()
        .filter(|c| !c.trim().is_empty())
    else {
        return Some("Missing required field: schedule.quartz_cron_expression".into());
    };
    let Some(tz) = schedule["timezone_id"].as_str().filter(|t| !t.is_empty()) else {
        return Some("Missing required field: schedule.timezone_id".into());
    };
    if !is_quartz_cron(cron) {
        // The service's own wording (seen in Databricks error reports).
        return Some(format!("Invalid quartz_cron_expression: {cron}. Databricks uses Quartz cron syntax, which is different from the standard cron syntax. See http://www.quartz-scheduler.org/documentation/quartz-2.1.x/tutorials/crontrigger.html for more details."));
    }
    (!is_timezone_id(tz)).then(|| format!("Invalid timezone_id: {tz}"))
}

fn pause_status_problem(block: &str, value: &Value) -> Option<String> {
    if !value.is_object() {
        return Some(format!("Field {block} must be an object"));
    }
    match value.get("pause_status") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s == "PAUSED" || s == "UNPAUSED" => None,
        Some(other) => Some(format!(
            "Invalid {block}.pause_status: {other}; expected PAUSED or UNPAUSED"
        )),
    }
}

/// The fields the service fills in when a job is created or reset: a name, one
/// concurrent run, the multi-task format, and UNPAUSED for a schedule, continuous
/// or trigger block given without a pause status.
pub fn with_defaults(mut settings: Value) -> Value {
    if settings.get("name").is_none_or(Value::is_null) {
        settings["name"] = json!("Untitled");
    }
    if settings
        .get("max_concurrent_runs")
        .is_none_or(Value::is_null)
    {
        settings["max_concurrent_runs"] = json!(1);
    }
    if settings.get("format").is_none_or(Value::is_null) {
        settings["format"] = json!("MULTI_TASK");
    }
    for block in TRIGGER_BLOCKS {
        if let Some(b) = settings.get_mut(block).and_then(Value::as_object_mut) {
            if b.get("pause_status").is_none_or(Value::is_null) {
                b.insert("pause_status".into(), json!("UNPAUSED"));
            }
        }
    }
    settings
}

/// `jobs/update`: top-level fields of `new_settings` replace the stored ones, except
/// the keyed arrays, whose entries replace stored entries with the same key while the
/// others are kept. Then `fields_to_remove` removes top-level fields, or single
/// entries written `tasks/<task_key>` or `job_clusters/<job_cluster_key>`.
pub fn merge_update(
    stored: &Value,
    new_settings: &Value,
    fields_to_remove: &[String],
) -> Result<Value, String> {
    let mut merged = stored.as_object().cloned().unwrap_or_default();
    if let Some(new) = new_settings.as_object() {
        for (field, value) in new {
            match MERGED_ARRAYS.iter().find(|(array, _)| array == field) {
                Some((_, key)) if value.is_array() => {
                    let old = merged.get(field).cloned().unwrap_or_else(|| json!([]));
                    merged.insert(field.clone(), merge_keyed(&old, value, key));
                }
                _ => {
                    merged.insert(field.clone(), value.clone());
                }
            }
        }
    }
    for path in fields_to_remove {
        remove_field(&mut merged, path)?;
    }
    Ok(Value::Object(merged))
}

/// Entries of `new` replace entries of `old` with the same `key`; new keys are
/// appended in their order; entries only in `old` stay where they were.
fn merge_keyed(old: &Value, new: &Value, key: &str) -> Value {
    let mut out: Vec<Value> = old.as_array().cloned().unwrap_or_default();
    for entry in new.as_array().into_iter().flatten() {
        match out.iter_mut().find(|e| e[key] == entry[key]) {
            Some(existing) => *existing = entry.clone(),
            None => out.push(entry.clone()),
        }
    }
    Value::Array(out)
}

fn remove_field(settings: &mut Map<String, Value>, path: &str) -> Result<(), String> {
    match path.split_once('/') {
        None => {
            settings.remove(path);
            Ok(())
        }
        Some((array, entry)) => {
            let Some((_, key)) = MERGED_ARRAYS
                .iter()
                .find(|(a, _)| *a == array && (*a == "tasks" || *a == "job_clusters"))
            else {
                return Err(format!(
                    "Cannot remove {path}: only top-level fields, tasks/<task_key> and job_clusters/<job_cluster_key> can be removed"
                ));
            };
            if let Some(items) = settings.get_mut(array).and_then(Value::as_array_mut) {
                items.retain(|e| e[*key].as_str() != Some(entry));
            }
            Ok(())
        }
    }
}

/// Quartz cron: seconds, minutes, hours, day of month, month, day of week and an
/// optional year; exactly one of the two day fields is `?`. Checks the structure
/// and ranges of each field, as the Quartz parser the service uses does.
pub fn is_quartz_cron(expr: &str) -> bool {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    if fields.len() != 6 && fields.len() != 7 {
        return false;
    }
    let (dom, dow) = (fields[3], fields[5]);
    if (dom == "?") == (dow == "?") {
        return false;
    }
    let months = [
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ];
    let days = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
    cron_field(fields[0], 0, 59, &[], "")
        && cron_field(fields[1], 0, 59, &[], "")
        && cron_field(fields[2], 0, 23, &[], "")
        && (dom == "?" || dom == "LW" || last_day_offset(dom) || cron_field(dom, 1, 31, &[], "W"))
        && cron_field(fields[4], 1, 12, &months, "")
        && (dow == "?" || dow == "L" || cron_field(dow, 1, 7, &days, "L#"))
        && fields
            .get(6)
            .is_none_or(|y| cron_field(y, 1970, 2099, &[], ""))
}

/// `L` (the month's last day) or `L-n`, n days before it.
fn last_day_offset(field: &str) -> bool {
    match field.strip_prefix('L') {
        Some("") => true,
        Some(rest) => rest
            .strip_prefix('-')
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| (1..=30).contains(&n)),
        None => false,
    }
}

/// One comma-separated cron field: `*`, values, ranges `a-b` and steps `x/n`.
/// `names` are accepted for values (1-based); `suffixes` lists the special
/// characters this field allows after a value (`W`, `L`, `#n`).
fn cron_field(field: &str, low: u32, high: u32, names: &[&str], suffixes: &str) -> bool {
    let value = |s: &str| -> Option<u32> {
        let s = if suffixes.contains('#') {
            match s.split_once('#') {
                Some((d, n)) => {
                    let n: u32 = n.parse().ok()?;
                    if !(1..=5).contains(&n) {
                        return None;
                    }
                    d
                }
                None => s,
            }
        } else {
            s
        };
        let s = s
            .strip_suffix(|c: char| suffixes.contains(c) && c != '#')
            .unwrap_or(s);
        let v = match names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            Some(i) => i as u32 + 1,
            None => s.parse().ok()?,
        };
        (low..=high).contains(&v).then_some(v)
    };
    !field.is_empty()
        && field.split(',').all(|part| {
            let (range, step) = match part.split_once('/') {
                Some((r, s)) => (r, Some(s)),
                None => (part, None),
            };
            let step_ok = step.is_none_or(|s| s.parse::<u32>().is_ok_and(|n| n >= 1));
            let range_ok = match range {
                "*" => true,
                r => match r.split_once('-') {
                    Some((a, b)) => value(a).is_some() && value(b).is_some(),
                    None => value(r).is_some(),
                },
            };
            step_ok && range_ok
        })
}

/// A Java time zone id: `UTC`, `GMT`, a `GMT+hh:mm`-style offset, or a tz database
/// `Area/Location` name. The emulator has no tz database, so a name is checked for
/// its shape and area only.
pub fn is_timezone_id(tz: &str) -> bool {
    const AREAS: [&str; 11] = [
        "Africa",
        "America",
        "Antarctica",
        "Arctic",
        "Asia",
        "Atlantic",
        "Australia",
        "Europe",
        "Indian",
        "Pacific",
        "Etc",
    ];
    if tz == "UTC" || tz == "GMT" {
        return true;
    }
    if let Some(offset) = tz.strip_prefix("GMT").or_else(|| tz.strip_prefix("UTC")) {
        let Some(rest) = offset.strip_prefix(['+', '-']) else {
            return false;
        };
        let (h, m) = rest.split_once(':').unwrap_or((rest, "00"));
        return h.parse::<u32>().is_ok_and(|h| h <= 18) && m.parse::<u32>().is_ok_and(|m| m < 60);
    }
    let mut parts = tz.split('/');
    let area = parts.next().unwrap_or_default();
    let rest: Vec<&str> = parts.collect();
    AREAS.contains(&area)
        && !rest.is_empty()
        && rest.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quartz_cron_needs_one_question_mark_day_and_valid_ranges() {
        assert!(is_quartz_cron("0 0 2 * * ?"));
        assert!(is_quartz_cron("0 15 10 ? * MON-FRI"));
        assert!(is_quartz_cron("0 0/5 14,18 * * ? 2030"));
        assert!(is_quartz_cron("0 15 10 L * ?"));
        assert!(is_quartz_cron("0 15 10 L-3 * ?"));
        assert!(is_quartz_cron("0 15 10 ? * L"));
        assert!(!is_quartz_cron("0 15 10 L-31 * ?"));
        assert!(is_quartz_cron("0 15 10 ? * 6#3"));
        assert!(is_quartz_cron("0 0 12 15W * ?"));
        // Standard cron (5 fields), both day fields set, and out-of-range values.
        assert!(!is_quartz_cron("0 2 * * *"));
        assert!(!is_quartz_cron("0 30 2,7,11,15 * * *"));
        assert!(!is_quartz_cron("0 60 2 * * ?"));
        assert!(!is_quartz_cron("0 0 24 * * ?"));
        assert!(!is_quartz_cron("0 0 2 * 13 ?"));
        assert!(!is_quartz_cron("0 0 2 ? * 8"));
        assert!(!is_quartz_cron("0 0 2 ? * MON#6"));
        assert!(!is_quartz_cron("0 0/0 2 * * ?"));
        assert!(!is_quartz_cron("@daily"));
    }

    #[test]
    fn timezones_are_java_ids() {
        for ok in [
            "UTC",
            "Europe/Berlin",
            "America/Argentina/Buenos_Aires",
            "GMT+02:00",
            "Etc/GMT-3",
        ] {
            assert!(is_timezone_id(ok), "{ok}");
        }
        for bad in ["", "Berlin", "Mars/Olympus", "Europe/", "GMT+25", "CET!"] {
            assert!(!is_timezone_id(bad), "{bad}");
        }
    }

    #[test]
    fn defaults_unpause_given_trigger_blocks_and_keep_explicit_pauses() {
        let s = with_defaults(
            json!({"schedule": {"quartz_cron_expression": "0 0 2 * * ?", "timezone_id": "UTC"}}),
        );
        assert_eq!(s["schedule"]["pause_status"], "UNPAUSED");
        assert_eq!(s["name"], "Untitled");
        assert_eq!(s["max_concurrent_runs"], 1);
        assert!(s.get("continuous").is_none());
        let paused = with_defaults(json!({"continuous": {"pause_status": "PAUSED"}}));
        assert_eq!(paused["continuous"]["pause_status"], "PAUSED");
        assert_eq!(
            with_defaults(json!({"trigger": {}}))["trigger"]["pause_status"],
            "UNPAUSED"
        );
    }

    #[test]
    fn trigger_blocks_are_exclusive_and_validated() {
        let sched = json!({"quartz_cron_expression": "0 0 2 * * ?", "timezone_id": "UTC"});
        assert!(settings_problem(&json!({"schedule": sched})).is_none());
        let both = json!({"schedule": sched, "continuous": {}});
        assert!(settings_problem(&both)
            .unwrap()
            .contains("schedule and continuous"));
        let bad_pause = json!({"trigger": {"pause_status": "STOPPED"}});
        assert!(settings_problem(&bad_pause)
            .unwrap()
            .contains("trigger.pause_status"));
        let bad_cron =
            json!({"schedule": {"quartz_cron_expression": "0 2 * * *", "timezone_id": "UTC"}});
        assert!(settings_problem(&bad_cron)
            .unwrap()
            .starts_with("Invalid quartz_cron_expression: 0 2 * * *."));
        let no_tz = json!({"schedule": {"quartz_cron_expression": "0 0 2 * * ?"}});
        assert_eq!(
            settings_problem(&no_tz).unwrap(),
            "Missing required field: schedule.timezone_id"
        );
        let bad_tz = json!({"schedule": {"quartz_cron_expression": "0 0 2 * * ?", "timezone_id": "Nowhere"}});
        assert_eq!(
            settings_problem(&bad_tz).unwrap(),
            "Invalid timezone_id: Nowhere"
        );
        assert!(
            settings_problem(&json!({"tasks": [{"task_key": "a"}, {"task_key": "a"}]})).is_some()
        );
    }

    #[test]
    fn update_replaces_top_level_fields_and_merges_tasks_by_key() {
        let stored = json!({
            "name": "n",
            "schedule": {"quartz_cron_expression": "0 0 2 * * ?", "timezone_id": "UTC", "pause_status": "UNPAUSED"},
            "tags": {"a": "1", "b": "2"},
            "tasks": [{"task_key": "x", "timeout_seconds": 1}, {"task_key": "y"}],
        });
        let new = json!({
            "schedule": {"quartz_cron_expression": "0 0 3 * * ?", "timezone_id": "UTC", "pause_status": "PAUSED"},
            "tags": {"c": "3"},
            "tasks": [{"task_key": "x", "timeout_seconds": 2}, {"task_key": "z"}],
        });
        let merged = merge_update(&stored, &new, &[]).unwrap();
        assert_eq!(merged["schedule"]["pause_status"], "PAUSED");
        assert_eq!(merged["tags"], json!({"c": "3"}));
        assert_eq!(merged["name"], "n");
        let keys: Vec<&str> = merged["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["task_key"].as_str().unwrap())
            .collect();
        assert_eq!(keys, ["x", "y", "z"]);
        assert_eq!(merged["tasks"][0]["timeout_seconds"], 2);
    }

    #[test]
    fn update_removes_top_level_fields_and_single_tasks() {
        let stored =
            json!({"name": "n", "schedule": {}, "tasks": [{"task_key": "x"}, {"task_key": "y"}]});
        let removed =
            merge_update(&stored, &json!({}), &["schedule".into(), "tasks/x".into()]).unwrap();
        assert!(removed.get("schedule").is_none());
        assert_eq!(removed["tasks"], json!([{"task_key": "y"}]));
        assert!(merge_update(&stored, &json!({}), &["schedule/pause_status".into()]).is_err());
    }
}
