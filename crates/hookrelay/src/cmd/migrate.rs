//! `hookrelay migrate`: bring the database schema up to date and exit (for deploy pipelines; `serve` also
//! migrates at start).

use crate::config::ServeArgs;
use crate::{cmd::serve::open_store, logging};

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.resolve()?;
    logging::init(&config.log, &config.log_format);
    open_store(&config).await?;
    println!("database {} is up to date", config.database.describe());
    Ok(())
}
