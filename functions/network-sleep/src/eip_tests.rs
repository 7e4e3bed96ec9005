//! Elastic IPs through the handler and the network fake: only EIPs opted in
//! to the schedule are released, and the ones a wake allocates are opted in.

use crate::fakes::app;
use crate::model::{SCHEDULE_TAG, SLOT_TAG};
use serde_json::json;

fn allocation_of(app: &crate::fakes::App, subnet: &str) -> String {
    app.network
        .gateways
        .lock()
        .unwrap()
        .iter()
        .find(|g| g.subnet_id == subnet && g.tag(SCHEDULE_TAG).is_some())
        .and_then(|g| g.allocation_id.clone())
        .unwrap()
}

#[tokio::test]
async fn an_eip_that_is_not_opted_in_is_kept_and_the_report_says_how_to_opt_it_in() {
    let app = app();
    let foreign = allocation_of(&app, "subnet-b");
    app.network.untag_address(&foreign);
    let slept = app
        .handle(json!({"action": "sleep", "release_eips": true}))
        .await
        .unwrap();
    assert_eq!(slept["outcome"], "slept", "{slept:#}");
    assert_eq!(
        slept["released_eips"].as_array().unwrap().len(),
        2,
        "{slept:#}"
    );
    assert!(!slept["released_eips"].to_string().contains(&foreign));
    let warnings = slept["warnings"].to_string();
    assert!(
        warnings.contains(&foreign) && warnings.contains("lakeops:sleep-schedule=nightly"),
        "{warnings}"
    );
    let kept = app.network.address_now(&foreign).expect("not released");
    assert!(
        kept.association_id.is_none(),
        "freed by the gateway's deletion, not by us"
    );

    // The wake puts the kept EIP back on its slot's new gateway.
    let woke = app.handle(json!({"action": "wake"})).await.unwrap();
    assert_eq!(woke["outcome"], "woke", "{woke:#}");
    let on_b = app
        .network
        .live()
        .into_iter()
        .find(|g| g.subnet_id == "subnet-b")
        .unwrap();
    assert_eq!(on_b.allocation_id.as_deref(), Some(foreign.as_str()));
}

#[tokio::test]
async fn eips_a_wake_allocates_are_opted_in_and_a_later_sleep_releases_them() {
    let app = app();
    let slept = app
        .handle(json!({"action": "sleep", "release_eips": true}))
        .await
        .unwrap();
    assert_eq!(
        slept["released_eips"].as_array().unwrap().len(),
        3,
        "{slept:#}"
    );
    let woke = app.handle(json!({"action": "wake"})).await.unwrap();
    assert_eq!(woke["outcome"], "woke", "{woke:#}");
    let new_allocations: Vec<String> = app
        .network
        .live()
        .iter()
        .filter(|g| g.tag(SCHEDULE_TAG).is_some())
        .filter_map(|g| g.allocation_id.clone())
        .collect();
    assert_eq!(new_allocations.len(), 3);
    for allocation in &new_allocations {
        let address = app.network.address_now(allocation).unwrap();
        assert!(address.is_opted_in("nightly"), "{address:?}");
        assert!(address.tags.contains_key(SLOT_TAG), "{address:?}");
    }
    let again = app
        .handle(json!({"action": "sleep", "release_eips": true}))
        .await
        .unwrap();
    assert_eq!(
        again["released_eips"].as_array().unwrap().len(),
        3,
        "{again:#}"
    );
    assert!(again.get("warnings").is_none(), "{again:#}");
}
