#![doc = include_str!("../docs/for-pytorch-users.md")]
// The guide's links name these items; this module holds no code of its own.
#[allow(unused_imports)]
use crate::{Prunable, PrunedModel};
