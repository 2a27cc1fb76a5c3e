//! Helpers over object metadata in `serde_json::Value` form.
