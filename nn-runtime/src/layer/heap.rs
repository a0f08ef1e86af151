//! Large networks on the heap, built in place.
//!
//! A `Linear(784, 512)` weight is 1.6 MB stored inline; a thread's stack is often 2 MiB. So a
//! large network, its gradients and its optimizer state must be created on the heap without
//! ever being a value on the stack: `boxed_zeroed` allocates zeroed memory and uses it as the
//! value directly, and generated networks then fill their parameters in place.
//!
//! Without the runtime's `std` feature there is no heap: `boxed_zeroed` is gone, a
//! [`Scratch`] holds nothing and hands out zeroed values on the stack, and a [`Tape`] holds
//! nothing (backpropagation through time, which needs one, is `std`-only).

/// The heap's box, for the generated `boxed_*` constructors: a name that exists in a
/// `#![no_std]` crate too (where `::std` does not) whose runtime has `std`.
#[cfg(feature = "std")]
#[doc(hidden)]
pub use std::boxed::Box;

/// Types for which all-zero bytes are a valid value (all `0.0`, empty options).
///
/// # Safety
/// Implement only for types made of floats, of integers (zero bytes are `0`), of other
/// `Zeroable` types, and of [`Scratch`]. `network!` implements it for every network and gradient struct it generates.
pub unsafe trait Zeroable {}

/// Compiles only where `T` is [`Zeroable`]: generated code asserts it of every field type of a
/// struct it declares `Zeroable`.
pub const fn assert_zeroable<T: Zeroable>() {}

/// A value of `T` with every byte zero.
pub fn zeroed<T: Zeroable>() -> T {
    // SAFETY: `T: Zeroable` promises that all-zero bytes are a valid `T`.
    unsafe { core::mem::zeroed() }
}

/// A value of `T` with every byte zero, allocated directly on the heap.
#[cfg(feature = "std")]
pub fn boxed_zeroed<T: Zeroable>() -> Box<T> {
    // SAFETY: `T: Zeroable` promises that all-zero bytes are a valid `T`.
    unsafe { Box::<T>::new_zeroed().assume_init() }
}

/// Sets every byte of `value` to zero, in place: `T`'s zero value without building one on the
/// stack (a large gradient struct, cleared before each window of a sequence's training).
pub fn zero_in_place<T: Zeroable>(value: &mut T) {
    // SAFETY: `T: Zeroable` promises that all-zero bytes are a valid `T`, and `value` is one
    // valid, exclusively borrowed `T`. What it owned is not dropped: at worst a `Scratch`'s
    // space leaks, which is never unsound (gradient structs, what this is for, own nothing).
    unsafe { core::ptr::write_bytes(value as *mut T, 0, 1) }
}

/// Reusable space a network keeps for its training step (its gradient struct), created on the
/// first step and reused after, so that steady-state steps allocate nothing and large
/// gradients never sit on the stack.
///
/// It is not part of the network's value: clones start without it and comparisons ignore it.
#[cfg(feature = "std")]
pub struct Scratch<G>(Option<Box<G>>);

/// Space a network keeps for its training step: without the runtime's `std` feature, nothing.
/// Each step's gradient struct is a zeroed value on the stack, which the step overwrites as it
/// would overwrite the reused space (so the numbers are those of the `std` build).
#[cfg(not(feature = "std"))]
pub struct Scratch<G>(core::marker::PhantomData<G>);

#[cfg(feature = "std")]
impl<G: Zeroable> Scratch<G> {
    /// No space yet.
    pub const fn new() -> Self {
        Scratch(None)
    }

    /// The space, allocated zeroed the first time.
    pub fn take(&mut self) -> Box<G> {
        self.0.take().unwrap_or_else(boxed_zeroed)
    }

    /// Gives the space back for the next step.
    pub fn put(&mut self, space: Box<G>) {
        self.0 = Some(space);
    }
}

#[cfg(not(feature = "std"))]
impl<G: Zeroable> Scratch<G> {
    /// Nothing to keep.
    pub const fn new() -> Self {
        Scratch(core::marker::PhantomData)
    }

    /// A zeroed gradient struct, on the stack.
    #[inline(always)]
    pub fn take(&mut self) -> G {
        zeroed()
    }

    /// Drops the step's gradients: there is nowhere to keep them.
    #[inline(always)]
    pub fn put(&mut self, space: G) {
        let _ = space;
    }
}

impl<G: Zeroable> Default for Scratch<G> {
    fn default() -> Self {
        Self::new()
    }
}

impl<G> Clone for Scratch<G> {
    fn clone(&self) -> Self {
        Scratch(Default::default())
    }
}

impl<G> PartialEq for Scratch<G> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<G> core::fmt::Debug for Scratch<G> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Scratch")
    }
}

// SAFETY: an all-zero `Option<Box<G>>` is `None`, by the guaranteed null-pointer layout;
// without `std`, `Scratch` has no bytes at all.
unsafe impl<G> Zeroable for Scratch<G> {}

/// The steps of a training window kept for its backward pass (backpropagation through time),
/// in a vector kept from one window to the next: after the first window of a length, windows
/// up to that length allocate nothing.
///
/// Like [`Scratch`], it is not part of a value: clones start empty and comparisons ignore it.
#[cfg(feature = "std")]
pub struct Tape<S>(Vec<S>);

/// Without the runtime's `std` feature, nothing: backpropagation through time, which keeps a
/// window's steps on a tape, needs a heap; the field stays so that a sequence network's state
/// has the same fields in both builds.
#[cfg(not(feature = "std"))]
pub struct Tape<S>(core::marker::PhantomData<S>);

#[cfg(not(feature = "std"))]
impl<S> Tape<S> {
    /// An empty tape.
    pub const fn new() -> Self {
        Tape(core::marker::PhantomData)
    }
}

#[cfg(feature = "std")]
impl<S> Tape<S> {
    /// An empty tape, with no space yet.
    pub const fn new() -> Self {
        Tape(Vec::new())
    }

    /// Forgets every step, keeping the space.
    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// Appends a step (allocating only beyond the longest window so far).
    pub fn push(&mut self, step: S) {
        self.0.push(step);
    }

    /// The steps recorded, oldest first.
    pub fn steps(&self) -> &[S] {
        &self.0
    }
}

impl<S> Default for Tape<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> Clone for Tape<S> {
    fn clone(&self) -> Self {
        Tape::new()
    }
}

impl<S> PartialEq for Tape<S> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<S> core::fmt::Debug for Tape<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Tape")
    }
}
