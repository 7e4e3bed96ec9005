//! The account API under `/api/2.0/accounts/{account_id}/`.

pub mod identity;
pub mod log_delivery;
pub mod metastores;
pub mod provisioning;
pub mod workspaces;

use axum::routing::{get, post};
use axum::Router;

use crate::state::App;

pub fn router() -> Router<App> {
    use identity as id;
    use provisioning as pv;
    let r = |p: &str| format!("/api/2.0/accounts/{{account_id}}{p}");
    Router::new()
        .route(
            &r("/credentials"),
            get(pv::list_credentials).post(pv::create_credentials),
        )
        .route(
            &r("/credentials/{id}"),
            get(pv::get_credentials).delete(pv::delete_credentials),
        )
        .route(
            &r("/storage-configurations"),
            get(pv::list_storage).post(pv::create_storage),
        )
        .route(
            &r("/storage-configurations/{id}"),
            get(pv::get_storage).delete(pv::delete_storage),
        )
        .route(
            &r("/networks"),
            get(pv::list_networks).post(pv::create_network),
        )
        .route(
            &r("/networks/{id}"),
            get(pv::get_network).delete(pv::delete_network),
        )
        .route(
            &r("/vpc-endpoints"),
            get(pv::list_vpc_endpoints).post(pv::create_vpc_endpoint),
        )
        .route(
            &r("/vpc-endpoints/{id}"),
            get(pv::get_vpc_endpoint).delete(pv::delete_vpc_endpoint),
        )
        .route(
            &r("/private-access-settings"),
            get(pv::list_pas).post(pv::create_pas),
        )
        .route(
            &r("/private-access-settings/{id}"),
            get(pv::get_pas).put(pv::replace_pas).delete(pv::delete_pas),
        )
        .route(
            &r("/customer-managed-keys"),
            get(pv::list_cmks).post(pv::create_cmk),
        )
        .route(
            &r("/customer-managed-keys/{id}"),
            get(pv::get_cmk).delete(pv::delete_cmk),
        )
        .route(
            &r("/workspaces"),
            get(workspaces::list).post(workspaces::create),
        )
        .route(
            &r("/workspaces/{workspace_id}"),
            get(workspaces::get)
                .patch(workspaces::update)
                .delete(workspaces::delete),
        )
        .route(
            &r("/log-delivery"),
            get(log_delivery::list).post(log_delivery::create),
        )
        .route(
            &r("/log-delivery/{id}"),
            get(log_delivery::get).patch(log_delivery::patch_status),
        )
        .route(
            &r("/scim/v2/Groups"),
            get(id::list_groups).post(id::create_group),
        )
        .route(
            &r("/scim/v2/Groups/{id}"),
            get(id::get_group)
                .put(id::replace_group)
                .patch(id::patch_group)
                .delete(id::delete_group),
        )
        .route(
            &r("/scim/v2/ServicePrincipals"),
            get(id::list_sps).post(id::create_sp),
        )
        .route(
            &r("/scim/v2/ServicePrincipals/{id}"),
            get(id::get_sp)
                .put(id::replace_sp)
                .patch(id::patch_sp)
                .delete(id::delete_sp),
        )
        .route(
            &r("/servicePrincipals/{sp_id}/credentials/secrets"),
            get(id::list_secrets).post(id::create_secret),
        )
        .route(
            &r("/servicePrincipals/{sp_id}/credentials/secrets/{secret_id}"),
            axum::routing::delete(id::delete_secret),
        )
        .route(
            &r("/workspaces/{workspace_id}/permissionassignments"),
            get(id::list_assignments),
        )
        .route(
            &r("/workspaces/{workspace_id}/permissionassignments/permissions"),
            get(id::assignment_permissions),
        )
        .route(
            &r("/workspaces/{workspace_id}/permissionassignments/principals/{principal_id}"),
            axum::routing::put(id::put_assignment).delete(id::delete_assignment),
        )
        .route(
            &r("/metastores"),
            get(metastores::list).post(metastores::create),
        )
        .route(
            &r("/metastores/{metastore_id}"),
            get(metastores::get)
                .put(metastores::update)
                .delete(metastores::delete),
        )
        .route(
            &r("/metastores/{metastore_id}/workspaces"),
            get(metastores::list_assigned_workspaces),
        )
        .route(
            &r("/workspaces/{workspace_id}/metastore"),
            get(metastores::get_assignment),
        )
        .route(
            &r("/workspaces/{workspace_id}/metastores/{metastore_id}"),
            post(metastores::create_assignment)
                .put(metastores::update_assignment)
                .delete(metastores::delete_assignment),
        )
}
