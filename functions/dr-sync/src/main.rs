use lakeops_shared::databricks::{DatabricksConnector, DatabricksSettings};
use lakeops_shared::settings::Env;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lakeops_shared::telemetry::init();
    let clients = lakeops_shared::init_or_exit(async {
        let sdk = lakeops_shared::aws::load_sdk_config().await;
        let mut env = Env::from_process();
        let databricks = DatabricksSettings::read(&mut env);
        let state_bucket: String = env.required("DR_STATE_BUCKET");
        env.finish().map_err(|e| e.to_string())?;
        Ok::<_, String>(dr_sync::handler::Clients {
            s3: lakeops_shared::aws::s3(&sdk),
            ssm: lakeops_shared::aws::ssm(&sdk),
            secrets: lakeops_shared::aws::secretsmanager(&sdk),
            databricks: DatabricksConnector::new(databricks).map_err(|e| e.to_string())?,
            state_bucket,
        })
    })
    .await;
    let clients = &clients;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        dr_sync::handler::handle(clients, event.payload).await
    }))
    .await
}
