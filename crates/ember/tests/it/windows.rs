//! Sliding windows against a naive recomputation from the definition.
