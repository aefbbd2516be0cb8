//! `hookrelay completions <shell>` and `hookrelay man`: the shell completion scripts and the man pages, generated
//! from the same clap definitions the binary parses with, so they never disagree with `--help`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::CommandFactory;
use clap_complete::Shell;

use super::Cli;

#[derive(clap::Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to print the completion script of
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(clap::Args, Debug)]
pub struct ManArgs {
    /// Write one page per command into this directory (hookrelay.1, hookrelay-serve.1, …) instead of printing
    /// the main page
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

/// `hookrelay completions`: the script on stdout.
pub fn completions(args: CompletionsArgs) -> anyhow::Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "hookrelay", &mut script);
    print(&script)
}

/// `hookrelay man`: the main page on stdout, or every page into `--out-dir`.
pub fn man(args: ManArgs) -> anyhow::Result<()> {
    let command = Cli::command();
    match args.out_dir {
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(command).render(&mut page).context("cannot render the man page")?;
            print(&page)
        }
        Some(dir) => write_pages(command, &dir),
    }
}

/// Writes `bytes` to stdout; a reader that stopped early (`| head`) is not an error.
fn print(bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => Err(err).context("cannot write to stdout"),
        _ => Ok(()),
    }
}

/// Writes `hookrelay.1` and one `hookrelay-<command>.1` per visible subcommand (nested ones too:
/// `hookrelay-token-create.1`) into `dir`, and names the files written on stdout.
fn write_pages(command: clap::Command, dir: &Path) -> anyhow::Result<()> {
    fn write(command: clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> std::io::Result<()> {
        for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
            write(sub.clone(), dir, written)?;
        }
        written.push(clap_mangen::Man::new(command).generate_to(dir)?);
        Ok(())
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // Built first, so each subcommand carries its full name (`hookrelay-token-create`) into its page.
    let mut command = command.disable_help_subcommand(true);
    command.build();
    let mut written = Vec::new();
    write(command, dir, &mut written).with_context(|| format!("cannot write the pages into {}", dir.display()))?;
    for page in written {
        println!("{}", page.display());
    }
    Ok(())
}
