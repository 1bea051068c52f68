//! Helpers shared by the integration tests.

pub mod fixtures;
pub mod lenet;
pub mod python;
pub mod tensors;
