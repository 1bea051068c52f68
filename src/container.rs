//! [`PruningContainer`]: the history of methods applied to one tensor, and how a new method
//! combines with the masks of the earlier ones.

use std::fmt;
use std::ops::Index;

use tch::Tensor;

use crate::error::{PruneError, Result};
use crate::kernels::{select, true_positions};
use crate::method::{
    alive_channels, check_dense, check_layout, check_same_shape, normalize_dim, to_kind_copy,
    PruningMethod, PruningType,
};

/// The sequence of pruning methods applied to one tensor, in order.
///
/// Only the **last** method computes anything; the earlier ones are history. Its
/// [`compute_mask`](PruningContainer::compute_mask) hands the last method only the part of the
/// tensor that is still unpruned, and writes the result back into a copy of the old mask:
///
/// * [`PruningType::Unstructured`]: the flat vector of entries whose mask is exactly 1, so a
///   fraction is a fraction of the remaining entries and a count larger than them is an error;
/// * [`PruningType::Structured`]: the channels along `dim` whose mask is not entirely zero. A
///   1-D tensor (a bias pruned before) is handed over as PyTorch does, as one row `[1, n]`
///   (`[0, n]` when its mask is all zero): with `dim` 0 the whole vector is one channel, with
///   `dim` -1 each entry is one;
/// * [`PruningType::Global`]: the whole tensor.
///
/// ```
/// use tch::{Kind, Tensor};
/// use tch_prune::{L1Unstructured, LnStructured, PruningContainer};
///
/// let t = Tensor::from_slice(&[1.0f32, 2., 3., 4., 5., 6., 7., 8.]).reshape([2, 4]);
/// let default = Tensor::from_slice(&[1i64, 1, 1, 0, 1, 1, 0, 1]).reshape([2, 4]);
///
/// let mut container = PruningContainer::new();
/// container.add_pruning_method(Box::new(L1Unstructured::new(2)?));
/// let mask = container.compute_mask(&t, &default)?;
/// assert_eq!(mask.kind(), Kind::Float); // the importance tensor's kind
/// assert_eq!(Vec::<f32>::try_from(&mask.reshape([-1]))?, vec![0., 0., 1., 0., 1., 1., 0., 1.]);
///
/// container.add_pruning_method(Box::new(LnStructured::new(1, 2, 0)?));
/// let mask = container.compute_mask(&t, &default)?;
/// assert_eq!(Vec::<f32>::try_from(&mask.reshape([-1]))?, vec![0., 0., 0., 0., 1., 1., 0., 1.]);
/// assert_eq!(container.len(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Unlike PyTorch, the container never writes into the caller's `default_mask` (PyTorch does
/// when its kind equals the importance kind), and it has no tensor name: at the
/// model level each pruned parameter owns its own container, so PyTorch's "wrong tensor name"
/// check cannot fail. Only pruning methods can be added (PyTorch's `TypeError` for `10` or
/// `"ugh"` is a compile error here):
///
/// ```compile_fail
/// let mut container = tch_prune::PruningContainer::new();
/// container.add_pruning_method(10);
/// ```
///
/// PyTorch equivalent: `torch.nn.utils.prune.PruningContainer`.
#[derive(Default)]
pub struct PruningContainer {
    methods: Vec<Box<dyn PruningMethod>>,
}

impl PruningContainer {
    /// An empty container.
    ///
    /// ```
    /// let container = tch_prune::PruningContainer::new();
    /// assert!(container.is_empty());
    /// ```
    ///
    /// PyTorch equivalent: `PruningContainer()`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `method`; it becomes the one [`compute_mask`](Self::compute_mask) applies.
    ///
    /// ```
    /// use tch_prune::{Identity, PruningContainer};
    /// let mut container = PruningContainer::new();
    /// container.add_pruning_method(Box::new(Identity));
    /// assert_eq!(container.len(), 1);
    /// ```
    ///
    /// PyTorch equivalent: `container.add_pruning_method(method)`.
    pub fn add_pruning_method(&mut self, method: Box<dyn PruningMethod>) {
        self.methods.push(method);
    }

    /// The number of methods applied so far.
    ///
    /// PyTorch equivalent: `len(container)`.
    pub fn len(&self) -> usize {
        self.methods.len()
    }

    /// Whether no method was added.
    pub fn is_empty(&self) -> bool {
        self.methods.is_empty()
    }

    /// Keeps the first `len` methods: undoes the steps a failed multi-step operation applied.
    pub(crate) fn truncate(&mut self, len: usize) {
        self.methods.truncate(len);
    }

    /// The method at `index` (0 is the first applied), if any.
    ///
    /// ```
    /// use tch_prune::{Identity, PruningContainer, PruningMethod, PruningType};
    /// let mut container = PruningContainer::new();
    /// container.add_pruning_method(Box::new(Identity));
    /// assert_eq!(container.get(0).unwrap().pruning_type(), PruningType::Unstructured);
    /// assert!(container.get(1).is_none());
    /// ```
    ///
    /// PyTorch equivalent: `container[index]`.
    pub fn get(&self, index: usize) -> Option<&dyn PruningMethod> {
        self.methods.get(index).map(|m| m.as_ref())
    }

    /// The most recently added method, the one that computes the next mask.
    ///
    /// PyTorch equivalent: `container[-1]`.
    pub fn last(&self) -> Option<&dyn PruningMethod> {
        self.methods.last().map(|m| m.as_ref())
    }

    /// The methods in the order they were applied.
    ///
    /// ```
    /// use tch_prune::{Identity, L1Unstructured, PruningContainer};
    /// let mut container = PruningContainer::new();
    /// container.add_pruning_method(Box::new(Identity));
    /// container.add_pruning_method(Box::new(L1Unstructured::new(1)?));
    /// let names: Vec<String> = container.iter().map(|m| format!("{m:?}")).collect();
    /// assert!(names[1].starts_with("L1Unstructured"));
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    ///
    /// PyTorch equivalent: `iter(container)`.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &dyn PruningMethod> + '_ {
        self.methods.iter().map(|m| m.as_ref())
    }

    /// Applies the last method to the still-unpruned part of `importance` and combines the
    /// result with `default_mask` (see the type's documentation).
    ///
    /// The result has the kind of `importance` and the shape of both; `default_mask` is not
    /// modified.
    ///
    /// # Errors
    /// [`PruneError::EmptyContainer`]; [`PruneError::ShapeMismatch`] when the two tensors
    /// differ in shape, or when the method's mask does not have the shape of the slice it was
    /// given (PyTorch: a `RuntimeError` from the write-back); [`PruneError::DimOutOfRange`]
    /// for a structured method whose `dim` does not fit (on a 1-D tensor anything but 0 and -1,
    /// on a 0-D tensor any `dim`); [`PruneError::UnsupportedLayout`] for a sparse or MKL-DNN
    /// tensor (or mask returned by the method); and whatever the last method returns (for
    /// example [`PruneError::AmountTooLarge`] when a count exceeds the remaining units).
    ///
    /// PyTorch equivalent: `container.compute_mask(t, default_mask)`.
    pub fn compute_mask(&self, importance: &Tensor, default_mask: &Tensor) -> Result<Tensor> {
        let method = self.last().ok_or(PruneError::EmptyContainer)?;
        combine_masks(method, importance, default_mask)
    }

    /// Returns `t * compute_mask(importance, default_mask)`, like
    /// [`PruningMethod::prune`] but with the container's combining step.
    ///
    /// # Errors
    /// As [`compute_mask`](Self::compute_mask), plus [`PruneError::ShapeMismatch`] when
    /// `importance_scores` or `default_mask` does not have the shape of `t`.
    ///
    /// ```
    /// use tch::Tensor;
    /// use tch_prune::{L1Unstructured, PruningContainer};
    ///
    /// let container: PruningContainer = [L1Unstructured::new(1)?].into_iter().collect();
    /// let t = Tensor::from_slice(&[3.0f32, 1.0, 2.0]);
    /// let default = Tensor::from_slice(&[1.0f32, 0.0, 1.0]);
    /// // Entry 1 is already pruned, so the smallest *remaining* entry (2.0) goes.
    /// let pruned = container.prune(&t, Some(&default), None)?;
    /// assert_eq!(Vec::<f32>::try_from(&pruned)?, vec![3.0, 0.0, 0.0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn prune(
        &self,
        t: &Tensor,
        default_mask: Option<&Tensor>,
        importance_scores: Option<&Tensor>,
    ) -> Result<Tensor> {
        check_layout("t", t)?;
        let importance = importance_scores.unwrap_or(t);
        check_layout("importance_scores", importance)?;
        check_same_shape("importance_scores", &t.size(), importance)?;
        let mask = match default_mask {
            Some(mask) => self.compute_mask(importance, mask)?,
            None => self.compute_mask(importance, &t.f_ones_like()?)?,
        };
        Ok(t.f_mul(&mask)?)
    }
}

/// PyTorch's `_combine_masks`: run `method` on the unpruned slice and write the partial mask
/// back into a copy of `mask` converted to the importance kind.
pub(crate) fn combine_masks(
    method: &dyn PruningMethod,
    t: &Tensor,
    mask: &Tensor,
) -> Result<Tensor> {
    check_dense(t, mask)?;
    check_same_shape("default_mask", &t.size(), mask)?;
    match method.pruning_type() {
        PruningType::Unstructured => {
            // Magnitude pruning of large CPU tensors: select among the available entries in
            // place (no `masked_select` / `masked_scatter_` round trip); same result, straddling
            // ties included (decided as `topk` on the slice would decide them).
            if let Some((amount, ties)) = method.magnitude_amount().map(|a| a.into_inner()) {
                if let Some(new_mask) = select::masked_smallest(t, mask, amount, ties)? {
                    return Ok(new_mask);
                }
            }
            let mut new_mask = to_kind_copy(mask, t.kind())?;
            // Entries whose mask is exactly 1 are still available (0.5 or 2 are not).
            let available = mask.f_eq(1)?;
            let slice = t.f_masked_select(&available)?;
            let partial = method.compute_mask(&slice, &mask.f_masked_select(&available)?)?;
            // `masked_scatter_` would silently take the first entries of a larger mask.
            check_partial(&slice, &partial)?;
            _ = new_mask.f_masked_scatter_(&available, &partial.f_to_kind(new_mask.kind())?)?;
            Ok(new_mask)
        }
        PruningType::Structured { dim } => {
            let ndim = t.dim() as i64;
            if ndim < 2 {
                return combine_vector(method, dim, t, mask);
            }
            let dim = normalize_dim(dim, ndim)?;
            // A channel is pruned only when its whole mask sums to zero: one pass over a CPU
            // float mask without negative entries (the same test), libtorch's sum otherwise.
            let channels = match alive_channels(mask, dim) {
                Some(alive) if alive.iter().all(|&a| a) => None,
                Some(alive) => {
                    let alive: Vec<i64> = alive
                        .iter()
                        .enumerate()
                        .filter(|(_, &a)| a)
                        .map(|(c, _)| c as i64)
                        .collect();
                    Some(Tensor::f_from_slice(&alive)?.f_to_device(mask.device())?)
                }
                None => {
                    let others: Vec<i64> = (0..ndim).filter(|&d| d != dim).collect();
                    let alive = mask.f_sum_dim_intlist(others.as_slice(), false, None)?.f_ne(0)?;
                    let channels = true_positions(&alive)?;
                    let all = channels.numel() as i64 == t.size()[dim as usize];
                    (!all).then_some(channels)
                }
            };
            let Some(channels) = channels else {
                // Every channel is alive: the slice is the whole tensor, skip the copies.
                let partial = method.compute_mask(t, mask)?;
                check_partial(t, &partial)?;
                return converted_copy(partial, mask, t.kind());
            };
            let mut new_mask = to_kind_copy(mask, t.kind())?;
            let slice = t.f_index_select(dim, &channels)?;
            let partial = method.compute_mask(&slice, &mask.f_index_select(dim, &channels)?)?;
            check_partial(&slice, &partial)?;
            _ = new_mask.f_index_copy_(dim, &channels, &partial.f_to_kind(new_mask.kind())?)?;
            Ok(new_mask)
        }
        PruningType::Global => {
            let partial = method.compute_mask(t, mask)?;
            check_partial(t, &partial)?;
            converted_copy(partial, mask, t.kind())
        }
    }
}

/// A structured method on a tensor of fewer than two dimensions, as PyTorch's `_combine_masks`
/// slices it: `dim` is resolved against the tensor (only 0 and -1 fit a vector; PyTorch's
/// `IndexError` otherwise, and always for a 0-D tensor), and `mask.sum(dim=[])` sums *every*
/// entry, so the slice is the whole vector as one row, `[1, n]`, or no row, `[0, n]`, when the
/// mask sums to zero. The method sees a 2-D tensor and applies its own `dim` to it: with 0 the
/// vector is one channel, with -1 each entry is one. A `[0, n]` slice still runs the method
/// (its checks, its random draws) and writes nothing back.
fn combine_vector(
    method: &dyn PruningMethod,
    dim: i64,
    t: &Tensor,
    mask: &Tensor,
) -> Result<Tensor> {
    normalize_dim(dim, t.dim() as i64)?;
    let n = t.numel() as i64;
    let everything: &[i64] = &[];
    let alive = mask.f_sum_dim_intlist(everything, false, None)?.f_double_value(&[])? != 0.0;
    let rows = i64::from(alive);
    let slice = t.f_reshape([1, n])?.f_narrow(0, 0, rows)?;
    let partial = method.compute_mask(&slice, &mask.f_reshape([1, n])?.f_narrow(0, 0, rows)?)?;
    check_partial(&slice, &partial)?;
    if alive {
        converted_copy(partial.f_reshape([n])?, mask, t.kind())
    } else {
        to_kind_copy(mask, t.kind())
    }
}

/// The mask a method computed for `slice`: dense, and of the slice's shape.
fn check_partial(slice: &Tensor, partial: &Tensor) -> Result<()> {
    check_layout("mask", partial)?;
    check_same_shape("mask", &slice.size(), partial)
}

/// `partial` in `kind`, as a tensor that shares no storage with the caller's `mask` (a method
/// may hand `mask` itself back, e.g. a structured method with nothing to prune).
fn converted_copy(partial: Tensor, mask: &Tensor, kind: tch::Kind) -> Result<Tensor> {
    if partial.kind() == kind && partial.data_ptr() == mask.data_ptr() && mask.numel() > 0 {
        to_kind_copy(&partial, kind)
    } else {
        Ok(partial.f_to_kind(kind)?)
    }
}

impl fmt::Debug for PruningContainer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.methods.iter()).finish()
    }
}

impl Index<usize> for PruningContainer {
    type Output = dyn PruningMethod;

    /// # Panics
    /// When `index >= len()`, like slice indexing; use [`PruningContainer::get`] to avoid it.
    fn index(&self, index: usize) -> &Self::Output {
        self.methods[index].as_ref()
    }
}

impl<M: PruningMethod + 'static> FromIterator<M> for PruningContainer {
    fn from_iter<I: IntoIterator<Item = M>>(iter: I) -> Self {
        Self { methods: iter.into_iter().map(|m| Box::new(m) as Box<dyn PruningMethod>).collect() }
    }
}

impl<'a> IntoIterator for &'a PruningContainer {
    type Item = &'a dyn PruningMethod;
    type IntoIter = Box<dyn ExactSizeIterator<Item = &'a dyn PruningMethod> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}
