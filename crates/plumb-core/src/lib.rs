//! Domain types of plumb without any I/O.
//!
//! Everything here is a pure function over `serde_json::Value` manifests: identifying objects
//! ([`ObjectKey`]), validating rendered manifests ([`manifest`]), the apply order of kinds
//! ([`order`]), ownership tracking ([`tracking`]), health assessment ([`health`]), the sync plan
//! ([`plan`]), diff normalization and Secret masking ([`diff`]), and the Argo CD `Application`
//! schema ([`application`]). Start with [`plan::Plan::build`], which the engine calls once per
//! reconcile.
//!
//! Argo CD-style sync semantics live in their own modules: hook and wave annotations
//! ([`hooks`]), the phased, wave-ordered operation and its resumable progress ([`waves`], start
//! with [`waves::SyncPlan::build`] and [`waves::SyncPlan::next_step`]), `ignoreDifferences`
//! ([`ignore`], over the bounded jq subset in [`jq`] and Argo CD's globs in [`glob`]),
//! AppProject sync windows ([`windows`], start with [`windows::SyncWindows::decide`]), and
//! dependencies between applications ([`dependencies`], start with
//! [`dependencies::DependencyGraph::build`]). Masterminds version ranges, as Flux and Helm
//! write them, are in [`semver`].

pub mod application;
pub mod dependencies;
pub mod diff;
pub mod glob;
pub mod health;
pub mod hooks;
pub mod ignore;
pub mod jq;
pub mod key;
pub mod manifest;
pub mod order;
pub mod plan;
pub mod project;
pub mod semver;
pub mod sync_options;
pub mod tracking;
pub mod waves;
pub mod windows;

pub use health::{Health, HealthStatus};
pub use key::ObjectKey;
pub use manifest::Manifest;
