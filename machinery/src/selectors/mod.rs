//! Label and field selectors: parsing (upstream's syntax and error messages) and matching.

pub mod field;
pub mod label;
pub mod quote;

#[cfg(test)]
mod golden;
