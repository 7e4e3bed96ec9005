use super::*;

#[test]
fn wait_timeouts_are_0_or_5_to_50_seconds() {
    assert_eq!(wait_seconds(None).unwrap(), 10);
    assert_eq!(wait_seconds(Some("0s")).unwrap(), 0);
    assert_eq!(wait_seconds(Some("50s")).unwrap(), 50);
    for bad in ["4s", "51s", "10", "s", "-5s"] {
        assert!(wait_seconds(Some(bad)).is_err(), "{bad}");
    }
}

#[test]
fn results_are_paged_in_chunks() {
    let rows: Vec<Vec<Option<String>>> =
        (0..250).map(|i| vec![Some(i.to_string()), None]).collect();
    let cols = vec![
        ("id".to_string(), "bigint".to_string()),
        ("n".to_string(), "string".to_string()),
    ];
    let m = manifest("s1", &cols, &rows, false);
    assert_eq!(m["total_chunk_count"], 3);
    assert_eq!(m["total_row_count"], 250);
    assert_eq!(
        m["schema"]["columns"][0],
        json!({"name": "id", "type_text": "BIGINT", "type_name": "LONG", "position": 0})
    );
    assert_eq!(m["chunks"][2]["row_offset"], 200);
    let dec = manifest(
        "s2",
        &[("d".to_string(), "decimal(12,3)".to_string())],
        &[],
        false,
    );
    assert_eq!(dec["schema"]["columns"][0]["type_precision"], 12);
    assert_eq!(dec["schema"]["columns"][0]["type_scale"], 3);
    assert_eq!(m["chunks"][2]["row_count"], 50);
    let first = chunk("s1", &rows, 0);
    assert_eq!(first["next_chunk_index"], 1);
    assert_eq!(
        first["next_chunk_internal_link"],
        "/api/2.0/sql/statements/s1/result/chunks/1"
    );
    assert_eq!(first["data_array"][0], json!(["0", null]));
    let last = chunk("s1", &rows, 2);
    assert!(last.get("next_chunk_index").is_none());
    assert_eq!(last["data_array"][49][0], "249");
}

fn record(phase: StatementPhase, outcome: Option<Outcome>) -> StatementRecord {
    StatementRecord {
        statement_id: "s".into(),
        seq: 0,
        statement: "SELECT 1".into(),
        warehouse_id: "w".into(),
        metastore_id: Some("m".into()),
        catalog: "main".into(),
        schema: "default".into(),
        user: "u".into(),
        phase,
        kind: "SELECT".into(),
        mutating: false,
        row_limit: None,
        failure: None,
        outcome,
    }
}

#[test]
fn responses_follow_the_statement_state() {
    let phase = StatementPhase {
        submitted_ms: 0,
        running_ms: 100,
        run_ms: 100,
        canceled_ms: None,
    };
    assert_eq!(
        render(&record(phase, None), 50)["status"]["state"],
        "PENDING"
    );
    assert_eq!(
        render(&record(phase, None), 150)["status"]["state"],
        "RUNNING"
    );
    let failed = Outcome::Failed {
        error_class: "TABLE_OR_VIEW_NOT_FOUND".into(),
        sql_state: "42P01".into(),
        message: "[TABLE_OR_VIEW_NOT_FOUND] x SQLSTATE: 42P01".into(),
    };
    let v = render(&record(phase, Some(failed)), 300);
    assert_eq!(v["status"]["state"], "FAILED");
    assert_eq!(v["status"]["sql_state"], "42P01");
    assert_eq!(v["status"]["error"]["error_code"], "BAD_REQUEST");
    let cancelled = StatementPhase {
        canceled_ms: Some(120),
        ..phase
    };
    assert_eq!(
        render(&record(cancelled, None), 500)["status"]["state"],
        "CANCELED"
    );
    let empty = Outcome::Succeeded {
        columns: vec![],
        rows: vec![],
        truncated: false,
    };
    let v = render(&record(phase, Some(empty)), 300);
    assert_eq!(v["manifest"]["total_chunk_count"], 0);
    assert!(v.get("result").is_none());
}

fn state_with_statements() -> EmuState {
    let mut s = EmuState::default();
    let d = s.metastore_data.entry("m".into()).or_default();
    d.catalogs.insert("main".into(), json!({"name": "main"}));
    d.schemas.insert("main.default".into(), json!({}));
    let phase = |running_ms| StatementPhase {
        submitted_ms: 0,
        running_ms,
        run_ms: 10,
        canceled_ms: None,
    };
    let statements = [
        ("a", 0, "CREATE TABLE t (id INT)", phase(0)),
        ("b", 1, "INSERT INTO t VALUES (1), (2)", phase(0)),
        ("c", 2, "SELECT count(*) FROM t", phase(0)),
        ("late", 3, "INSERT INTO t VALUES (3)", phase(1000)),
    ];
    for (id, seq, sql, p) in statements {
        let mut r = record(p, None);
        r.statement_id = id.into();
        r.seq = seq;
        r.statement = sql.into();
        s.ws_data(1).sql_statements.insert(id.into(), r);
    }
    s
}

#[test]
fn due_statements_settle_in_submission_order_and_later_ones_wait() {
    let mut s = state_with_statements();
    settle_due(&mut s, 500);
    let d = &s.workspace_data[&1];
    match &d.sql_statements["c"].outcome {
        Some(Outcome::Succeeded { rows, .. }) => {
            assert_eq!(rows, &vec![vec![Some("2".to_string())]])
        }
        other => panic!("{other:?}"),
    }
    assert!(d.sql_statements["late"].outcome.is_none());
    assert_eq!(
        s.metastore_data["m"].tables["main.default.t"].row_count(),
        2
    );
    // The commit time is when the statement finished, not when it was settled.
    assert_eq!(
        s.metastore_data["m"].tables["main.default.t"].history[1].timestamp_ms,
        10
    );
    settle_due(&mut s, 2000);
    assert_eq!(
        s.metastore_data["m"].tables["main.default.t"].row_count(),
        3
    );
}

#[test]
fn failures_decided_at_submission_fail_without_executing() {
    let mut s = state_with_statements();
    s.ws_data(1).sql_statements.get_mut("a").unwrap().failure = Some(StatementFault {
        error_class: "INTERNAL_ERROR".into(),
        sql_state: "XX000".into(),
        message: "boom".into(),
    });
    settle_due(&mut s, 500);
    let d = &s.workspace_data[&1];
    assert!(
        matches!(&d.sql_statements["a"].outcome, Some(Outcome::Failed { message, .. }) if message == "boom")
    );
    assert!(
        matches!(&d.sql_statements["b"].outcome, Some(Outcome::Failed { sql_state, .. }) if sql_state == "42P01")
    );
}

#[test]
fn statements_are_classified_for_the_request_log() {
    let (bound, kind, mutating, failure) = classify(
        "SELECT * FROM t WHERE id = :id",
        &[Param {
            name: "id".into(),
            value: Some("7".into()),
            type_name: Some("INT".into()),
        }],
    );
    assert_eq!(
        (bound.as_str(), kind.as_str(), mutating),
        ("SELECT * FROM t WHERE id = 7", "SELECT", false)
    );
    assert!(failure.is_none());
    let (_, kind, mutating, _) = classify("CREATE TABLE a DEEP CLONE b", &[]);
    assert_eq!((kind.as_str(), mutating), ("DEEP CLONE", true));
    let (_, kind, mutating, failure) = classify("SELEC 1", &[]);
    assert_eq!((kind.as_str(), mutating), ("INVALID", false));
    assert_eq!(failure.unwrap().sql_state, "42601");
}
