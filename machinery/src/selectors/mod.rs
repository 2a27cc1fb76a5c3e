//! Label and field selectors: parsing (upstream's syntax and error messages) and matching.
