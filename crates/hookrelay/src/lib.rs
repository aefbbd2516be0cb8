//! The `hookrelay` binary's library half: configuration and the subcommands, so black-box tests can start
//! the server through exactly the function `hookrelay serve` uses.

pub mod admin_token;
pub mod cmd;
pub mod config;
pub mod encryption_key;
pub mod listener;
pub mod logging;
