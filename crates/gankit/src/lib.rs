//! gankit: train, stabilise, evaluate and compare Generative Adversarial Networks.
//!
//! The engine behind the `gankit` command, usable as a library. Start at [`train::Session`]:
//!
//! ```no_run
//! use gankit::{config::Config, train::{RunDir, Session, Silent}};
//! let cfg = Config::from_toml_str("[train]\nsteps = 10", "inline", &[]).unwrap();
//! let mut run = Session::start(cfg, RunDir::new("runs/demo"), &candle_core::Device::Cpu).unwrap();
//! run.run(&mut Silent, &Default::default()).unwrap();
//! ```
//!
//! See docs/ARCHITECTURE.md for the module map and the path of one training step.

pub mod augment;
pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod device;
mod error;
pub mod evaluator;
pub mod family;
pub mod fault;
mod fsutil;
pub mod isa;
pub mod kernels;
pub mod losses;
pub mod metrics;
pub mod models;
pub mod nn;
pub mod objectives;
pub mod optim;
pub mod pretrain;
pub mod report;
pub mod rng;
pub mod sample;
pub mod study;
pub mod train;

pub use error::{Error, Result};
