//! The APIM operator: configuration, runtime, controllers and their clients.

pub mod app;
pub mod awx;
pub mod cli;
pub mod config;
pub mod controllers;
pub mod events;
pub mod gateway;
pub mod metrics;
pub mod runtime;
pub mod telemetry;
