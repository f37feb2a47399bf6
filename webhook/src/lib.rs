//! Admission webhook of the APIM operator: review parsing, per-kind rules, the role matrix
//! and the HTTPS server.
//!
//! Layout: [`review`] (AdmissionReview in and out), [`rules`] (pure decision functions, one
//! module per concern, and the mutations), [`roles`] (the role matrix as data), [`config`],
//! [`server`] and [`tls`] (the edges), [`cabundle`] (start-up only), [`metrics`].
//! [`fixtures`] holds sample reviews shared by tests, benchmarks and the load tool.

pub mod cabundle;
pub mod config;
pub mod fixtures;
pub mod metrics;
pub mod review;
pub mod roles;
pub mod rules;
pub mod server;
pub mod tls;
