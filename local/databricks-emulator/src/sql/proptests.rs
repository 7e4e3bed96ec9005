//! Properties of the engine against a simple model: whatever rows are written, counts,
//! filters, deletes and clones agree with what a list of rows says they must be.

use proptest::prelude::*;
use serde_json::json;

use super::params::{bind, Param};
use super::*;

fn session() -> Session {
    Session {
        metastore_id: "m".into(),
        user: "u".into(),
        catalog: "main".into(),
        schema: "s".into(),
        now_ms: 0,
    }
}

fn state() -> State {
    let mut s = State::default();
    let d = s.metastore_data.entry("m".into()).or_default();
    d.catalogs.insert("main".into(), json!({"name": "main"}));
    d.schemas.insert("main.s".into(), json!({}));
    s
}

fn run(s: &mut State, sql: &str, params: &[Param]) -> ResultSet {
    let bound = bind(sql, params).unwrap();
    let stmt = parse::parse(&bound).unwrap_or_else(|e| panic!("{bound}: {}", e.message()));
    execute(s, &session(), &stmt).unwrap_or_else(|e| panic!("{bound}: {}", e.message()))
}

fn count(s: &mut State, sql: &str) -> i64 {
    run(s, sql, &[]).rows[0][0].as_i64().unwrap()
}

fn insert(s: &mut State, id: i64, name: &str) {
    let params = [
        Param {
            name: "id".into(),
            value: Some(id.to_string()),
            type_name: Some("BIGINT".into()),
        },
        Param {
            name: "name".into(),
            value: Some(name.to_string()),
            type_name: None,
        },
    ];
    run(s, "INSERT INTO t VALUES (:id, :name)", &params);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn counts_filters_and_deletes_match_the_model(
        rows in proptest::collection::vec((-50i64..50, "[a-z' \\\\%_]{0,8}"), 0..20),
        k in -50i64..50,
    ) {
        let mut s = state();
        run(&mut s, "CREATE TABLE t (id BIGINT, name STRING)", &[]);
        for (id, name) in &rows {
            insert(&mut s, *id, name);
        }
        prop_assert_eq!(count(&mut s, "SELECT count(*) FROM t"), rows.len() as i64);
        let at_least = rows.iter().filter(|(id, _)| *id >= k).count() as i64;
        prop_assert_eq!(count(&mut s, &format!("SELECT count(*) FROM t WHERE id >= {k}")), at_least);
        // Names written through parameters read back exactly.
        let names: Vec<String> = run(&mut s, "SELECT name FROM t", &[]).rows.iter().map(|r| r[0].as_str().unwrap().to_string()).collect();
        prop_assert_eq!(names, rows.iter().map(|(_, n)| n.clone()).collect::<Vec<_>>());
        let deleted = run(&mut s, &format!("DELETE FROM t WHERE id < {k}"), &[]).rows[0][0].as_i64().unwrap();
        prop_assert_eq!(deleted, rows.len() as i64 - at_least);
        prop_assert_eq!(count(&mut s, "SELECT count(*) FROM t"), at_least);
        let t = &s.metastore_data["m"].tables["main.s.t"];
        // One commit for the CREATE, one per INSERT, one for a DELETE that deleted.
        prop_assert_eq!(t.version, rows.len() as i64 + i64::from(deleted > 0));
        prop_assert_eq!(t.history.len() as i64, t.version + 1);
    }

    #[test]
    fn a_deep_clone_always_ends_equal_to_its_source(
        first in proptest::collection::vec(-20i64..20, 0..6),
        then in proptest::collection::vec(-20i64..20, 0..6),
        cut in -20i64..20,
    ) {
        let mut s = state();
        run(&mut s, "CREATE TABLE t (id BIGINT, name STRING)", &[]);
        for id in &first {
            insert(&mut s, *id, "a");
        }
        run(&mut s, "CREATE TABLE c DEEP CLONE t", &[]);
        for id in &then {
            insert(&mut s, *id, "b");
        }
        run(&mut s, &format!("DELETE FROM t WHERE id < {cut}"), &[]);
        let (src_ids, dst_ids): (Vec<String>, Vec<String>) = {
            let d = &s.metastore_data["m"];
            (
                d.tables["main.s.t"].files.iter().map(|f| f.id.clone()).collect(),
                d.tables["main.s.c"].files.iter().map(|f| f.id.clone()).collect(),
            )
        };
        let r = run(&mut s, "CREATE OR REPLACE TABLE c DEEP CLONE t", &[]);
        let copied = r.rows[0][3].as_i64().unwrap();
        let removed = r.rows[0][2].as_i64().unwrap();
        prop_assert_eq!(copied, src_ids.iter().filter(|f| !dst_ids.contains(f)).count() as i64);
        prop_assert_eq!(removed, dst_ids.iter().filter(|f| !src_ids.contains(f)).count() as i64);
        let d = &s.metastore_data["m"];
        prop_assert_eq!(&d.tables["main.s.c"].files, &d.tables["main.s.t"].files);
    }
}
