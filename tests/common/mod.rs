//! Helpers shared by the integration tests.

pub mod fixtures;
pub mod lenet;
pub mod offline;
pub mod python;
pub mod rng;
pub mod tensors;
