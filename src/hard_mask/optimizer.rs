//! [`MaskedOptimizer`]: a tch optimizer that keeps the pruned entries of a [`HardMask`] at zero.

use tch::nn::Optimizer;
use tch::Tensor;

use super::HardMask;
use crate::error::Result;

/// A `tch::nn::Optimizer` together with a [`HardMask`]: every step masks the gradients, steps,
/// and multiplies the masks into the weights again, so pruned weights never regrow.
///
/// Masking the gradient alone is not enough: weight decay, momentum and Adam's moment
/// estimates (which may hold values from before pruning) still move a pruned weight whose
/// gradient is zero. Re-applying the masks after the step undoes that, whatever the optimizer.
///
/// ```
/// use tch::nn::{self, Module, OptimizerConfig};
/// use tch::{Device, Kind, Tensor};
/// use tch_prune::{HardMask, MaskedOptimizer, Pruner};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let net = nn::seq()
///     .add(nn::linear(vs.root() / "0", 4, 8, Default::default()))
///     .add_fn(|x| x.relu())
///     .add(nn::linear(vs.root() / "2", 8, 1, Default::default()));
/// let mut masks = HardMask::new(&vs);
/// masks.l1_unstructured("0.weight", 0.5, None)?;
/// let mut opt = MaskedOptimizer::new(nn::Adam::default().build(&vs, 1e-2)?, masks);
///
/// let (x, y) = (Tensor::randn([16, 4], (Kind::Float, Device::Cpu)), Tensor::ones([16, 1], (Kind::Float, Device::Cpu)));
/// for _ in 0..10 {
///     let loss = net.forward(&x).mse_loss(&y, tch::Reduction::Mean);
///     opt.backward_step(&loss)?;
/// }
/// let w = &vs.variables()["0.weight"];
/// assert_eq!(w.eq(0.0).sum(Kind::Int64).int64_value(&[]), 16); // still the same 16 zeros
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// PyTorch equivalent: `optimizer.step()` followed by `with torch.no_grad(): p.mul_(mask)` for
/// every masked `p` (the manual hard-pruning idiom; `torch.ao.pruning`'s sparsifiers keep the
/// mask as a parametrization instead).
#[derive(Debug)]
pub struct MaskedOptimizer {
    opt: Optimizer,
    masks: HardMask,
}

impl MaskedOptimizer {
    /// Wraps `opt` (built from the `VarStore` the masks belong to) and `masks`.
    ///
    /// The masks are not applied here (pruning already applied them); call
    /// [`HardMask::apply_masks`] first if the weights changed since.
    pub fn new(opt: Optimizer, masks: HardMask) -> Self {
        Self { opt, masks }
    }

    /// Zeroes the gradients, back-propagates `loss`, masks the gradients, takes an optimizer
    /// step and re-applies the masks.
    ///
    /// # Errors
    /// A libtorch error from the backward pass or the masking.
    ///
    /// # Panics
    /// When libtorch fails inside tch's `Optimizer::zero_grad` or `Optimizer::step`, which
    /// panic rather than return errors.
    ///
    /// ```
    /// use tch::nn::{self, Module, OptimizerConfig};
    /// use tch::{Device, Kind, Tensor};
    /// use tch_prune::{HardMask, MaskedOptimizer, Pruner};
    ///
    /// let vs = nn::VarStore::new(Device::Cpu);
    /// let fc = nn::linear(vs.root() / "fc", 4, 1, Default::default());
    /// let mut masks = HardMask::new(&vs);
    /// masks.l1_unstructured("fc.weight", 2, None)?;
    /// let mut opt = MaskedOptimizer::new(nn::Sgd::default().build(&vs, 0.1)?, masks);
    /// let x = Tensor::ones([8, 4], (Kind::Float, Device::Cpu));
    /// opt.backward_step(&fc.forward(&x).square().mean(Kind::Float))?;
    /// assert_eq!(fc.ws.eq(0.0).sum(Kind::Int64).int64_value(&[]), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// PyTorch equivalent: `opt.zero_grad(); loss.backward(); opt.step()` followed by
    /// `p.mul_(mask)` for every masked `p`.
    pub fn backward_step(&mut self, loss: &Tensor) -> Result<()> {
        self.opt.zero_grad();
        loss.f_backward()?;
        self.step()
    }

    /// Masks the gradients, takes an optimizer step with the gradients as they are, and
    /// re-applies the masks (for loops that call `backward` themselves, e.g. to accumulate
    /// gradients or clip them through [`optimizer_mut`](Self::optimizer_mut)).
    ///
    /// # Errors
    /// A libtorch error from the masking.
    ///
    /// # Panics
    /// When libtorch fails inside tch's `Optimizer::step`.
    ///
    /// ```
    /// use tch::nn::{self, OptimizerConfig};
    /// use tch::{Device, Kind};
    /// use tch_prune::{HardMask, MaskedOptimizer, Pruner};
    ///
    /// let vs = nn::VarStore::new(Device::Cpu);
    /// let fc = nn::linear(vs.root() / "fc", 4, 2, Default::default());
    /// let mut masks = HardMask::new(&vs);
    /// masks.l1_unstructured("fc.weight", 4, None)?;
    /// let sgd = nn::Sgd { momentum: 0.9, wd: 1e-2, ..Default::default() }.build(&vs, 0.1)?;
    /// let mut opt = MaskedOptimizer::new(sgd, masks);
    /// opt.zero_grad();
    /// fc.ws.sum(Kind::Float).backward();
    /// opt.step()?;
    /// assert_eq!(fc.ws.eq(0.0).sum(Kind::Int64).int64_value(&[]), 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// PyTorch equivalent: `opt.step()` followed by `p.mul_(mask)` for every masked `p`.
    pub fn step(&mut self) -> Result<()> {
        self.masks.mask_grads()?;
        self.opt.step();
        self.masks.apply_masks()
    }

    /// Zeroes the gradients of the optimized variables.
    ///
    /// # Panics
    /// When libtorch fails inside tch's `Optimizer::zero_grad`.
    ///
    /// PyTorch equivalent: `opt.zero_grad()`.
    pub fn zero_grad(&mut self) {
        self.opt.zero_grad();
    }

    /// Sets the learning rate of every parameter group.
    ///
    /// # Panics
    /// When libtorch fails inside tch's `Optimizer::set_lr`.
    ///
    /// ```
    /// use tch::nn::{self, OptimizerConfig};
    /// use tch::Device;
    /// use tch_prune::{HardMask, MaskedOptimizer};
    ///
    /// let vs = nn::VarStore::new(Device::Cpu);
    /// let _fc = nn::linear(vs.root() / "fc", 4, 1, Default::default());
    /// let sgd = nn::Sgd { momentum: 0.9, ..Default::default() }.build(&vs, 0.1)?;
    /// let mut opt = MaskedOptimizer::new(sgd, HardMask::new(&vs));
    /// opt.set_lr(0.01); // e.g. a learning-rate schedule
    /// opt.optimizer_mut().set_momentum(0.5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// PyTorch equivalent: `for g in opt.param_groups: g["lr"] = lr`.
    pub fn set_lr(&mut self, lr: f64) {
        self.opt.set_lr(lr);
    }

    /// The wrapped optimizer (e.g. for `trainable_variables`).
    pub fn optimizer(&self) -> &Optimizer {
        &self.opt
    }

    /// The wrapped optimizer, mutably (momentum, weight decay, per-group settings, gradient
    /// clipping). Stepping it directly skips the masking; use [`step`](Self::step).
    pub fn optimizer_mut(&mut self) -> &mut Optimizer {
        &mut self.opt
    }

    /// The masks.
    pub fn masks(&self) -> &HardMask {
        &self.masks
    }

    /// The masks, mutably: prune further during training (iterative pruning); the next step
    /// keeps the new zeros.
    ///
    /// ```
    /// use tch::nn::{self, OptimizerConfig};
    /// use tch::Device;
    /// use tch_prune::{HardMask, MaskedOptimizer, Pruner};
    ///
    /// let vs = nn::VarStore::new(Device::Cpu);
    /// let _fc = nn::linear(vs.root() / "fc", 8, 8, Default::default());
    /// let sgd = nn::Sgd::default().build(&vs, 0.1)?;
    /// let mut opt = MaskedOptimizer::new(sgd, HardMask::new(&vs));
    /// opt.masks_mut().l1_unstructured("fc.weight", 0.25, None)?;
    /// opt.masks_mut().l1_unstructured("fc.weight", 0.5, None)?; // half of the remaining 48
    /// assert_eq!(opt.masks().sparsity("fc.weight")?, 0.625);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn masks_mut(&mut self) -> &mut HardMask {
        &mut self.masks
    }

    /// Unwraps the optimizer and the masks.
    ///
    /// ```
    /// use tch::nn::{self, OptimizerConfig};
    /// use tch::Device;
    /// use tch_prune::{HardMask, MaskedOptimizer, Pruner};
    ///
    /// let vs = nn::VarStore::new(Device::Cpu);
    /// let _fc = nn::linear(vs.root() / "fc", 4, 1, Default::default());
    /// let mut masks = HardMask::new(&vs);
    /// masks.l1_unstructured("fc.weight", 1, None)?;
    /// let opt = MaskedOptimizer::new(nn::Adam::default().build(&vs, 1e-3)?, masks);
    /// let (_adam, masks) = opt.into_parts();
    /// assert!(masks.is_parameter_pruned("fc.weight"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn into_parts(self) -> (Optimizer, HardMask) {
        (self.opt, self.masks)
    }
}
