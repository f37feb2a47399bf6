//! Process runtime: health and metrics server, leader election, shutdown signals.

pub mod health;
pub mod leader;
pub mod server;
pub mod shutdown;
