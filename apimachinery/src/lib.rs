//! Kubernetes API machinery shared by every Keelson component: the meta/v1 Status error,
//! label and field selectors, name and metadata validation, and resource quantities, with
//! upstream's wording.

pub mod fields;
pub mod labels;
pub mod names;
pub mod quantity;
pub mod status;
pub mod validation;

pub use status::{Cause, Status};
