//! Specifications that users write (JSON) and functions converge or follow.
//! Each spec validates up front and reports every invalid field at once.

pub mod lake;
pub mod lake_default;
