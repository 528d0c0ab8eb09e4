//! `leadbus token`: a development token for one tenant.

use std::time::Duration;

use clap::Args;
use leadbus_shared::auth::mint_token;
use leadbus_shared::{Config, TenantId};

/// Arguments of `leadbus token`.
#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    /// The tenant the token may see.
    #[arg(long)]
    tenant: TenantId,
    /// Who holds it.
    #[arg(long, default_value = "dev")]
    subject: String,
    /// Lifetime in hours (at least one).
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u64).range(1..))]
    hours: u64,
}

/// Prints the token.
pub(crate) fn run(config: &Config, args: TokenArgs) -> anyhow::Result<()> {
    // At most ten years: a development token, and no overflow into an already-expired one.
    let hours = args.hours.min(24 * 365 * 10);
    let ttl = Duration::from_secs(hours * 3600);
    let token = mint_token(&config.jwt_secret, &args.subject, &args.tenant, ttl)?;
    println!("{token}");
    Ok(())
}
