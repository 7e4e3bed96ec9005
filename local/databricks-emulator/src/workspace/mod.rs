//! The workspace API, served under `/ws/{deployment}` (see the README for the host
//! template). Every handler authenticates through `WsCtx`.

pub mod compute;
pub mod job_settings;
pub mod jobs;
pub mod misc;
pub mod pipelines;
pub mod statements;
pub mod tokens;
pub mod warehouses;

use axum::routing::{get, post};
use axum::Router;

use crate::auth;
use crate::sharing;
use crate::sharing_parties as parties;
use crate::state::App;
use crate::uc;
use crate::{uc_functions, uc_grants, uc_tables, uc_tags};

/// Routes relative to a workspace's base URL.
pub fn router() -> Router<App> {
    use compute as c;
    use misc as m;
    let mut r = Router::new()
        .route(
            "/.well-known/databricks-config",
            get(auth::workspace_host_metadata),
        )
        .route(
            "/oidc/.well-known/oauth-authorization-server",
            get(auth::workspace_authorization_server),
        )
        .route("/oidc/v1/token", post(auth::workspace_token))
        .route("/api/2.0/preview/scim/v2/Me", get(tokens::me))
        .route("/api/2.0/token/create", post(tokens::create))
        .route("/api/2.0/token/list", get(tokens::list))
        .route("/api/2.0/token/delete", post(tokens::delete))
        .route("/api/2.0/token-management/tokens", get(tokens::mgmt_list))
        .route(
            "/api/2.0/token-management/tokens/{token_id}",
            get(tokens::mgmt_get).delete(tokens::mgmt_delete),
        )
        .route(
            "/api/2.0/token-management/on-behalf-of/tokens",
            post(tokens::create_obo),
        )
        .route(
            "/api/2.0/workspace-conf",
            get(tokens::get_conf).patch(tokens::set_conf),
        )
        .route("/api/2.1/clusters/create", post(c::create_cluster))
        .route("/api/2.1/clusters/get", get(c::get_cluster))
        .route("/api/2.1/clusters/list", get(c::list_clusters))
        .route("/api/2.1/clusters/start", post(c::start_cluster))
        .route("/api/2.1/clusters/delete", post(c::delete_cluster))
        .route(
            "/api/2.1/clusters/permanent-delete",
            post(c::permanent_delete_cluster),
        )
        .route("/api/2.1/clusters/spark-versions", get(c::spark_versions))
        .route("/api/2.0/policies/clusters/create", post(c::create_policy))
        .route("/api/2.0/policies/clusters/edit", post(c::edit_policy))
        .route("/api/2.0/policies/clusters/get", get(c::get_policy))
        .route("/api/2.0/policies/clusters/list", get(c::list_policies))
        .route("/api/2.0/policies/clusters/delete", post(c::delete_policy))
        .route("/api/2.0/instance-pools/create", post(c::create_pool))
        .route("/api/2.0/instance-pools/edit", post(c::edit_pool))
        .route("/api/2.0/instance-pools/get", get(c::get_pool))
        .route("/api/2.0/instance-pools/list", get(c::list_pools))
        .route("/api/2.0/instance-pools/delete", post(c::delete_pool))
        .route(
            "/api/2.0/instance-profiles/add",
            post(c::add_instance_profile),
        )
        .route(
            "/api/2.0/instance-profiles/edit",
            post(c::edit_instance_profile),
        )
        .route(
            "/api/2.0/instance-profiles/list",
            get(c::list_instance_profiles),
        )
        .route(
            "/api/2.0/instance-profiles/remove",
            post(c::remove_instance_profile),
        )
        .route(
            "/api/2.0/global-init-scripts",
            get(c::list_scripts).post(c::create_script),
        )
        .route(
            "/api/2.0/global-init-scripts/{script_id}",
            get(c::get_script)
                .patch(c::update_script)
                .delete(c::delete_script),
        )
        .route("/api/2.0/repos", get(m::list_repos).post(m::create_repo))
        .route(
            "/api/2.0/repos/{repo_id}",
            get(m::get_repo)
                .patch(m::update_repo)
                .delete(m::delete_repo),
        )
        .route("/api/2.0/secrets/scopes/create", post(m::create_scope))
        .route("/api/2.0/secrets/scopes/list", get(m::list_scopes))
        .route("/api/2.0/secrets/scopes/delete", post(m::delete_scope))
        .route("/api/2.0/secrets/put", post(m::put_secret))
        .route("/api/2.0/secrets/list", get(m::list_secrets))
        .route("/api/2.0/secrets/get", get(m::get_secret))
        .route("/api/2.0/secrets/delete", post(m::delete_secret))
        .route("/api/2.0/secrets/acls/put", post(m::put_acl))
        .route("/api/2.0/secrets/acls/list", get(m::list_acls))
        .route("/api/2.0/secrets/acls/get", get(m::get_acl))
        .route("/api/2.0/secrets/acls/delete", post(m::delete_acl))
        .route(
            "/api/2.0/sql/warehouses",
            get(warehouses::list).post(warehouses::create),
        )
        .route(
            "/api/2.0/sql/warehouses/{id}",
            get(warehouses::get).delete(warehouses::delete),
        )
        .route(
            "/api/2.0/sql/warehouses/{id}/start",
            post(warehouses::start),
        )
        .route("/api/2.0/sql/warehouses/{id}/stop", post(warehouses::stop))
        .route(
            "/api/2.0/pipelines",
            get(pipelines::list).post(pipelines::create),
        )
        .route(
            "/api/2.0/pipelines/{pipeline_id}",
            get(pipelines::get).delete(pipelines::delete),
        )
        .route(
            "/api/2.0/pipelines/{pipeline_id}/updates",
            post(pipelines::start_update),
        )
        .route(
            "/api/2.0/pipelines/{pipeline_id}/stop",
            post(pipelines::stop),
        )
        .route("/api/2.0/sql/statements", post(statements::execute))
        .route(
            "/api/2.0/sql/statements/{statement_id}",
            get(statements::get),
        )
        .route(
            "/api/2.0/sql/statements/{statement_id}/cancel",
            post(statements::cancel),
        )
        .route(
            "/api/2.0/sql/statements/{statement_id}/result/chunks/{chunk_index}",
            get(statements::result_chunk),
        )
        .route("/api/2.0/sql/warehouses/{id}/edit", post(warehouses::edit))
        .route(
            "/api/2.1/unity-catalog/storage-credentials",
            get(uc::list_storage_credentials).post(uc::create_storage_credential),
        )
        .route(
            "/api/2.1/unity-catalog/storage-credentials/{name}",
            get(uc::get_storage_credential)
                .patch(uc::update_storage_credential)
                .delete(uc::delete_storage_credential),
        )
        .route(
            "/api/2.1/unity-catalog/external-locations",
            get(uc::list_external_locations).post(uc::create_external_location),
        )
        .route(
            "/api/2.1/unity-catalog/external-locations/{name}",
            get(uc::get_external_location)
                .patch(uc::update_external_location)
                .delete(uc::delete_external_location),
        )
        .route(
            "/api/2.1/unity-catalog/catalogs",
            get(uc::list_catalogs).post(uc::create_catalog),
        )
        .route(
            "/api/2.1/unity-catalog/catalogs/{name}",
            get(uc::get_catalog)
                .patch(uc::update_catalog)
                .delete(uc::delete_catalog),
        )
        .route(
            "/api/2.1/unity-catalog/schemas",
            get(uc::list_schemas).post(uc::create_schema),
        )
        .route(
            "/api/2.1/unity-catalog/schemas/{full_name}",
            get(uc::get_schema)
                .patch(uc::update_schema)
                .delete(uc::delete_schema),
        )
        .route(
            "/api/2.1/unity-catalog/volumes",
            get(uc::list_volumes).post(uc::create_volume),
        )
        .route(
            "/api/2.1/unity-catalog/volumes/{name}",
            get(uc::get_volume)
                .patch(uc::update_volume)
                .delete(uc::delete_volume),
        )
        .route(
            "/api/2.1/unity-catalog/permissions/{securable_type}/{full_name}",
            get(uc::get_permissions).patch(uc::update_permissions),
        )
        .route(
            "/api/2.1/unity-catalog/effective-permissions/{securable_type}/{full_name}",
            get(uc_grants::get_effective_permissions),
        )
        .route(
            "/api/2.1/unity-catalog/tables",
            get(uc_tables::list_tables).post(uc_tables::create_table),
        )
        .route(
            "/api/2.1/unity-catalog/tables/{full_name}",
            get(uc_tables::get_table)
                .patch(uc_tables::update_table)
                .delete(uc_tables::delete_table),
        )
        .route(
            "/api/2.1/unity-catalog/tables/{full_name}/exists",
            get(uc_tables::table_exists),
        )
        .route(
            "/api/2.1/unity-catalog/table-summaries",
            get(uc_tables::list_table_summaries),
        )
        .route(
            "/api/2.1/unity-catalog/functions",
            get(uc_functions::list_functions).post(uc_functions::create_function),
        )
        .route(
            "/api/2.1/unity-catalog/functions/{name}",
            get(uc_functions::get_function)
                .patch(uc_functions::update_function)
                .delete(uc_functions::delete_function),
        )
        .route(
            "/api/2.1/unity-catalog/entity-tag-assignments",
            post(uc_tags::create_tag_assignment),
        )
        .route(
            "/api/2.1/unity-catalog/entity-tag-assignments/{entity_type}/{entity_name}/tags",
            get(uc_tags::list_tag_assignments),
        )
        .route(
            "/api/2.1/unity-catalog/entity-tag-assignments/{entity_type}/{entity_name}/tags/{tag_key}",
            get(uc_tags::get_tag_assignment)
                .patch(uc_tags::update_tag_assignment)
                .delete(uc_tags::delete_tag_assignment),
        )
        .route(
            "/api/2.1/unity-catalog/shares",
            get(sharing::list_shares).post(sharing::create_share),
        )
        .route(
            "/api/2.1/unity-catalog/shares/{name}",
            get(sharing::get_share)
                .patch(sharing::update_share)
                .delete(sharing::delete_share),
        )
        .route(
            "/api/2.1/unity-catalog/shares/{name}/permissions",
            get(sharing::get_share_permissions).patch(sharing::update_share_permissions),
        )
        .route(
            "/api/2.1/unity-catalog/recipients",
            get(parties::list_recipients).post(parties::create_recipient),
        )
        .route(
            "/api/2.1/unity-catalog/recipients/{name}",
            get(parties::get_recipient)
                .patch(parties::update_recipient)
                .delete(parties::delete_recipient),
        )
        .route(
            "/api/2.1/unity-catalog/recipients/{name}/share-permissions",
            get(parties::recipient_share_permissions),
        )
        .route(
            "/api/2.1/unity-catalog/providers",
            get(parties::list_providers).post(parties::create_provider),
        )
        .route(
            "/api/2.1/unity-catalog/providers/{name}",
            get(parties::get_provider)
                .patch(parties::update_provider)
                .delete(parties::delete_provider),
        )
        .route(
            "/api/2.1/unity-catalog/providers/{name}/shares",
            get(parties::list_provider_shares),
        )
        .route(
            "/api/2.1/data-sharing/providers/{provider_name}/shares/{share_name}",
            get(parties::list_provider_share_assets),
        )
        .route(
            "/api/2.1/unity-catalog/current-metastore-assignment",
            get(uc::current_metastore_assignment),
        )
        .route(
            "/api/2.1/unity-catalog/metastore_summary",
            get(uc::metastore_summary),
        );
    // Jobs 2.1 and 2.2 share request and response shapes; the SDK uses 2.2.
    for v in ["2.1", "2.2"] {
        r = r
            .route(&format!("/api/{v}/jobs/create"), post(jobs::create))
            .route(&format!("/api/{v}/jobs/get"), get(jobs::get))
            .route(&format!("/api/{v}/jobs/list"), get(jobs::list))
            .route(&format!("/api/{v}/jobs/delete"), post(jobs::delete))
            .route(&format!("/api/{v}/jobs/update"), post(jobs::update))
            .route(&format!("/api/{v}/jobs/reset"), post(jobs::reset))
            .route(&format!("/api/{v}/jobs/run-now"), post(jobs::run_now))
            .route(&format!("/api/{v}/jobs/runs/list"), get(jobs::list_runs))
            .route(&format!("/api/{v}/jobs/runs/get"), get(jobs::get_run))
            .route(
                &format!("/api/{v}/jobs/runs/cancel"),
                post(jobs::cancel_run),
            )
            .route(
                &format!("/api/{v}/jobs/runs/cancel-all"),
                post(jobs::cancel_all_runs),
            );
    }
    r
}
