//! `hookrelay migrate`: bring the database schema up to date and exit (for deploy pipelines; `serve` also
//! migrates at start).

use crate::config::ServeArgs;
use crate::{cmd::serve::open_store, logging};

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.resolve()?;
    logging::init(&config.log, &config.log_format);
    let store = open_store(&config)?;
    println!("database {} is up to date", store.path().display());
    Ok(())
}
