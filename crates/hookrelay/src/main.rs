//! `hookrelay`: parse the command line and dispatch to the subcommand.

use clap::Parser;
use hookrelay::cmd::{Cli, Command};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => hookrelay::cmd::serve::run(args).await,
            Command::Migrate(args) => hookrelay::cmd::migrate::run(args).await,
            Command::Backup(args) => hookrelay::cmd::backup::run(args).await,
            Command::Listen(args) => hookrelay::cmd::listen::run(args).await,
            Command::Tail(args) => hookrelay::cmd::tail::run(args).await,
            Command::Recover(args) => hookrelay::cmd::recover::run(args).await,
            Command::Bench(args) => hookrelay::cmd::bench::run(args).await,
            Command::BenchReference(args) => hookrelay::cmd::bench::reference::run(args).await,
            Command::Sign(args) => hookrelay::cmd::sign::run(args),
            Command::Token(args) => hookrelay::cmd::token::run(args).await,
            Command::Trigger(args) => hookrelay::cmd::trigger::run(args).await,
            Command::Completions(args) => hookrelay::cmd::completions::completions(args),
            Command::Man(args) => hookrelay::cmd::completions::man(args),
            Command::Verify(args) => {
                if !hookrelay::cmd::verify::run(args)? {
                    std::process::exit(1);
                }
                Ok(())
            }
        }
    })
}
