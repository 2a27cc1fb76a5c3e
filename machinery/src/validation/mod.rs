//! Validation building blocks shared by the resource strategies: name formats, object
//! metadata, labels and annotations, with upstream's messages.

pub mod names;
