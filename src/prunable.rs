//! [`Prunable`]: how a model exposes its parameter slots, so a [`PrunedModel`](crate::PrunedModel)
//! can point them at `orig * mask`.

use std::any::Any;

use tch::nn;
use tch::Tensor;

/// A model (or layer) whose parameter tensors can be swapped for their pruned value.
///
/// `param_slots` lists every parameter field as `(path, slot)`, where `path` is the parameter's
/// name in the [`VarStore`](tch::nn::VarStore) relative to the model (`"weight"` for a layer,
/// `"conv1.weight"` for a field `conv1` of a model) and `slot` is the field the layer computes
/// with. tch has no forward pre-hooks, so this is how pruning reaches a layer: before every
/// forward, [`PrunedModel`](crate::PrunedModel) writes `orig * mask` into the slot.
///
/// Implemented for tch's `Linear`, `Conv1D/2D/3D`, `ConvTranspose1D/2D/3D`, `Embedding`,
/// `LayerNorm`, `BatchNorm` and `GroupNorm` (their `weight` and `bias`, with the names tch and
/// PyTorch give them), for `Vec<T>` (elements named `0`, `1`, ...), `Option<T>` and `Box<T>`.
/// For your own structs use the [`prunable!`](crate::prunable) macro.
///
/// ```
/// use tch::{nn, Device};
/// use tch_prune::Prunable;
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let mut fc = nn::linear(vs.root() / "fc", 3, 2, Default::default());
/// let names: Vec<String> = fc.param_slots().into_iter().map(|(name, _)| name).collect();
/// assert_eq!(names, ["weight", "bias"]);
/// ```
pub trait Prunable {
    /// Every parameter slot, as `(path relative to self, slot)`.
    fn param_slots(&mut self) -> Vec<(String, &mut Tensor)>;

    /// Every layer inside, as `(path relative to self, layer)`; test a layer's type with
    /// `<dyn Any>::is` (`layer.is::<nn::Linear>()`), as PyTorch code does with
    /// `isinstance`. tch's layers list themselves under the empty path; `prunable!` lists its
    /// fields' layers. The default lists nothing.
    ///
    /// ```
    /// use tch::{nn, Device};
    /// use tch_prune::{prunable, Prunable};
    ///
    /// #[derive(Debug)]
    /// struct Net { conv: nn::Conv2D, fc: nn::Linear }
    /// prunable!(Net { conv, fc });
    ///
    /// let vs = nn::VarStore::new(Device::Cpu);
    /// let net = Net {
    ///     conv: nn::conv2d(vs.root() / "conv", 1, 2, 3, Default::default()),
    ///     fc: nn::linear(vs.root() / "fc", 4, 2, Default::default()),
    /// };
    /// let linear: Vec<String> = net
    ///     .named_modules()
    ///     .into_iter()
    ///     .filter(|(_, layer)| layer.is::<nn::Linear>())
    ///     .map(|(name, _)| name)
    ///     .collect();
    /// assert_eq!(linear, ["fc"]);
    /// ```
    ///
    /// PyTorch equivalent: `model.named_modules()` (without the root module itself).
    fn named_modules(&self) -> Vec<(String, &dyn Any)> {
        Vec::new()
    }

    /// [`named_modules`](Self::named_modules), mutably: how
    /// [`Shrink`](crate::Shrink) updates the counts a layer keeps beside its tensors
    /// (`nn::GroupNorm::num_groups`, `nn::LayerNorm::normalized_shape`). The default lists
    /// nothing; tch's layers, `Vec`, `Option`, `Box` and [`prunable!`](crate::prunable)
    /// structs list their layers.
    ///
    /// ```
    /// use tch::{nn, Device};
    /// use tch_prune::Prunable;
    ///
    /// let vs = nn::VarStore::new(Device::Cpu);
    /// let mut gn = nn::group_norm(vs.root() / "gn", 4, 8, Default::default());
    /// for (_, layer) in gn.named_modules_mut() {
    ///     if let Some(gn) = layer.downcast_mut::<nn::GroupNorm>() {
    ///         gn.num_groups = 2;
    ///     }
    /// }
    /// assert_eq!(gn.num_groups, 2);
    /// ```
    fn named_modules_mut(&mut self) -> Vec<(String, &mut dyn Any)> {
        Vec::new()
    }
}

/// Joins a prefix and a relative path with tch's separator `.` (an empty prefix adds nothing).
#[doc(hidden)]
pub fn join_path(prefix: &str, name: &str) -> String {
    match (prefix.is_empty(), name.is_empty()) {
        (true, _) => name.to_string(),
        (_, true) => prefix.to_string(),
        _ => {
            // Not `format!`: paths are joined on every slot lookup, and this is several times
            // cheaper.
            let mut path = String::with_capacity(prefix.len() + 1 + name.len());
            path.push_str(prefix);
            path.push('.');
            path.push_str(name);
            path
        }
    }
}

/// Appends the slots of `child`, prefixed with `prefix`, to `out` (used by [`prunable!`]).
#[doc(hidden)]
pub fn push_child_slots<'a, P: Prunable + ?Sized>(
    out: &mut Vec<(String, &'a mut Tensor)>,
    prefix: &str,
    child: &'a mut P,
) {
    let slots = child.param_slots().into_iter();
    if prefix.is_empty() {
        out.extend(slots);
    } else {
        out.extend(slots.map(|(name, slot)| (join_path(prefix, &name), slot)));
    }
}

/// Appends the layers of `child`, prefixed with `prefix`, to `out` (used by [`prunable!`]).
#[doc(hidden)]
pub fn push_child_modules<'a, P: Prunable + ?Sized>(
    out: &mut Vec<(String, &'a dyn Any)>,
    prefix: &str,
    child: &'a P,
) {
    out.extend(child.named_modules().into_iter().map(|(name, m)| (join_path(prefix, &name), m)));
}

/// Appends the layers of `child`, mutably, prefixed with `prefix` (used by [`prunable!`]).
#[doc(hidden)]
pub fn push_child_modules_mut<'a, P: Prunable + ?Sized>(
    out: &mut Vec<(String, &'a mut dyn Any)>,
    prefix: &str,
    child: &'a mut P,
) {
    out.extend(
        child.named_modules_mut().into_iter().map(|(name, m)| (join_path(prefix, &name), m)),
    );
}

fn weight_and_bias<'a>(
    weight: Option<&'a mut Tensor>,
    bias: Option<&'a mut Tensor>,
) -> Vec<(String, &'a mut Tensor)> {
    let weight = weight.map(|w| ("weight".to_string(), w));
    let bias = bias.map(|b| ("bias".to_string(), b));
    weight.into_iter().chain(bias).collect()
}

impl Prunable for nn::Linear {
    fn param_slots(&mut self) -> Vec<(String, &mut Tensor)> {
        weight_and_bias(Some(&mut self.ws), self.bs.as_mut())
    }

    fn named_modules(&self) -> Vec<(String, &dyn Any)> {
        vec![(String::new(), self)]
    }

    fn named_modules_mut(&mut self) -> Vec<(String, &mut dyn Any)> {
        vec![(String::new(), self)]
    }
}

impl<ND: 'static> Prunable for nn::Conv<ND> {
    fn param_slots(&mut self) -> Vec<(String, &mut Tensor)> {
        weight_and_bias(Some(&mut self.ws), self.bs.as_mut())
    }

    fn named_modules(&self) -> Vec<(String, &dyn Any)> {
        vec![(String::new(), self)]
    }

    fn named_modules_mut(&mut self) -> Vec<(String, &mut dyn Any)> {
        vec![(String::new(), self)]
    }
}

impl<ND: 'static> Prunable for nn::ConvTransposeND<ND> {
    fn param_slots(&mut self) -> Vec<(String, &mut Tensor)> {
        weight_and_bias(Some(&mut self.ws), self.bs.as_mut())
    }

    fn named_modules(&self) -> Vec<(String, &dyn Any)> {
        vec![(String::new(), self)]
    }

    fn named_modules_mut(&mut self) -> Vec<(String, &mut dyn Any)> {
        vec![(String::new(), self)]
    }
}

impl Prunable for nn::Embedding {
    fn param_slots(&mut self) -> Vec<(String, &mut Tensor)> {
        weight_and_bias(Some(&mut self.ws), None)
    }

    fn named_modules(&self) -> Vec<(String, &dyn Any)> {
        vec![(String::new(), self)]
    }

    fn named_modules_mut(&mut self) -> Vec<(String, &mut dyn Any)> {
        vec![(String::new(), self)]
    }
}

impl Prunable for nn::LayerNorm {
    fn param_slots(&mut self) -> Vec<(String, &mut Tensor)> {
        weight_and_bias(self.ws.as_mut(), self.bs.as_mut())
    }

    fn named_modules(&self) -> Vec<(String, &dyn Any)> {
        vec![(String::new(), self)]
    }

    fn named_modules_mut(&mut self) -> Vec<(String, &mut dyn Any)> {
        vec![(String::new(), self)]
    }
}

impl Prunable for nn::BatchNorm {
    /// `weight` and `bias`; the running statistics are buffers, not parameters.
    fn param_slots(&mut self) -> Vec<(String, &mut Tensor)> {
        weight_and_bias(self.ws.as_mut(), self.bs.as_mut())
    }

    fn named_modules(&self) -> Vec<(String, &dyn Any)> {
        vec![(String::new(), self)]
    }

    fn named_modules_mut(&mut self) -> Vec<(String, &mut dyn Any)> {
        vec![(String::new(), self)]
    }
}

impl Prunable for nn::GroupNorm {
    fn param_slots(&mut self) -> Vec<(String, &mut Tensor)> {
        weight_and_bias(self.ws.as_mut(), self.bs.as_mut())
    }

    fn named_modules(&self) -> Vec<(String, &dyn Any)> {
        vec![(String::new(), self)]
    }

    fn named_modules_mut(&mut self) -> Vec<(String, &mut dyn Any)> {
        vec![(String::new(), self)]
    }
}

impl<T: Prunable> Prunable for Vec<T> {
    /// Element `i` is named `i`, as in `vs.root() / "layers" / i`.
    fn param_slots(&mut self) -> Vec<(String, &mut Tensor)> {
        let mut out = Vec::new();
        for (i, child) in self.iter_mut().enumerate() {
            push_child_slots(&mut out, &i.to_string(), child);
        }
        out
    }

    fn named_modules(&self) -> Vec<(String, &dyn Any)> {
        let mut out = Vec::new();
        for (i, child) in self.iter().enumerate() {
            push_child_modules(&mut out, &i.to_string(), child);
        }
        out
    }

    fn named_modules_mut(&mut self) -> Vec<(String, &mut dyn Any)> {
        let mut out = Vec::new();
        for (i, child) in self.iter_mut().enumerate() {
            push_child_modules_mut(&mut out, &i.to_string(), child);
        }
        out
    }
}

impl<T: Prunable> Prunable for Option<T> {
    fn param_slots(&mut self) -> Vec<(String, &mut Tensor)> {
        self.as_mut().map(Prunable::param_slots).unwrap_or_default()
    }

    fn named_modules(&self) -> Vec<(String, &dyn Any)> {
        self.as_ref().map(Prunable::named_modules).unwrap_or_default()
    }

    fn named_modules_mut(&mut self) -> Vec<(String, &mut dyn Any)> {
        self.as_mut().map(Prunable::named_modules_mut).unwrap_or_default()
    }
}

impl<T: Prunable + ?Sized> Prunable for Box<T> {
    fn param_slots(&mut self) -> Vec<(String, &mut Tensor)> {
        (**self).param_slots()
    }

    fn named_modules(&self) -> Vec<(String, &dyn Any)> {
        (**self).named_modules()
    }

    fn named_modules_mut(&mut self) -> Vec<(String, &mut dyn Any)> {
        (**self).named_modules_mut()
    }
}

/// Implements [`Prunable`] for a struct by listing its prunable fields.
///
/// Each field's parameters are named `field.<name>`; write `field => "path"` when the field was
/// built under another VarStore path (`"" ` for the struct's own level).
///
/// ```
/// use tch::nn::{self, Module};
/// use tch::{Device, Tensor};
/// use tch_prune::{prunable, Prunable};
///
/// #[derive(Debug)]
/// struct Net {
///     fc1: nn::Linear,
///     fc2: nn::Linear,
///     layers: Vec<nn::Linear>,
/// }
/// prunable!(Net { fc1, fc2 => "out", layers });
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let root = vs.root();
/// let mut net = Net {
///     fc1: nn::linear(&root / "fc1", 4, 3, Default::default()),
///     fc2: nn::linear(&root / "out", 3, 2, Default::default()),
///     layers: vec![nn::linear(&root / "layers" / 0, 2, 2, Default::default())],
/// };
/// let names: Vec<String> = net.param_slots().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["fc1.weight", "fc1.bias", "out.weight", "out.bias",
///                    "layers.0.weight", "layers.0.bias"]);
/// ```
#[macro_export]
macro_rules! prunable {
    ($ty:ty { $($field:ident $(=> $path:literal)?),* $(,)? }) => {
        impl $crate::Prunable for $ty {
            fn param_slots(
                &mut self,
            ) -> ::std::vec::Vec<(::std::string::String, &mut $crate::__private::Tensor)> {
                let mut out = ::std::vec::Vec::new();
                $(
                    $crate::__private::push_child_slots(
                        &mut out,
                        $crate::prunable!(@path $field $(, $path)?),
                        &mut self.$field,
                    );
                )*
                out
            }

            fn named_modules(
                &self,
            ) -> ::std::vec::Vec<(::std::string::String, &dyn ::std::any::Any)> {
                let mut out = ::std::vec::Vec::new();
                $(
                    $crate::__private::push_child_modules(
                        &mut out,
                        $crate::prunable!(@path $field $(, $path)?),
                        &self.$field,
                    );
                )*
                out
            }

            fn named_modules_mut(
                &mut self,
            ) -> ::std::vec::Vec<(::std::string::String, &mut dyn ::std::any::Any)> {
                let mut out = ::std::vec::Vec::new();
                $(
                    $crate::__private::push_child_modules_mut(
                        &mut out,
                        $crate::prunable!(@path $field $(, $path)?),
                        &mut self.$field,
                    );
                )*
                out
            }
        }
    };
    (@path $field:ident) => { ::std::stringify!($field) };
    (@path $field:ident, $path:literal) => { $path };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_path_handles_empty_parts() {
        assert_eq!(join_path("", "weight"), "weight");
        assert_eq!(join_path("fc", ""), "fc");
        assert_eq!(join_path("fc", "weight"), "fc.weight");
    }
}
