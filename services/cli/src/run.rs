//! `leadbus run` (everything in one process, servers started where none run), and the
//! single-service commands `leadbus inference` and `leadbus gateway`.

use std::sync::Arc;

use anyhow::Context;
use leadbus_gateway::Gateway;
use leadbus_inference::Inference;
use leadbus_inference::models::Models;
use leadbus_shared::Config;
use tracing::info;

use crate::servers::{ensure_nats, ensure_redis};
use crate::signals::shutdown_token;

/// Which parts to run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Parts {
    /// Start nats-server and redis-server when unreachable.
    pub(crate) servers: bool,
    /// Run the inference service.
    pub(crate) inference: bool,
    /// Run the gateway.
    pub(crate) gateway: bool,
}

/// Runs the chosen parts until SIGINT or SIGTERM.
pub(crate) async fn run(config: Config, parts: Parts) -> anyhow::Result<()> {
    let shutdown = shutdown_token();
    let mut started = Vec::new();
    if parts.servers {
        started.extend(ensure_nats(&config.nats_url, &config.state_dir).await?);
        started.extend(ensure_redis(&config.redis_url, &config.state_dir).await?);
    }

    // The gateway binds first: a second `leadbus run` on a taken port fails before its
    // inference service has pulled (and then held) any event.
    let gateway = if parts.gateway {
        let gw = Gateway::start(&config, shutdown.clone()).await?;
        info!(
            url = %format!("ws://{}/v1/ws", gw.addr),
            health = %format!("http://{}/healthz", gw.addr),
            "leadbus is up"
        );
        Some(gw)
    } else {
        None
    };
    let inference = if parts.inference {
        let models = Models::load(config.models_dir.as_deref(), &config.data_dir)
            .context("cannot load models")?;
        Some(Inference::start(&config, Arc::new(models), shutdown.clone()).await?)
    } else {
        None
    };

    shutdown.cancelled().await;
    if let Some(gw) = gateway {
        gw.stop().await;
    }
    if let Some(inf) = inference {
        inf.stop().await;
    }
    for server in started {
        server.stop().await;
    }
    Ok(())
}
