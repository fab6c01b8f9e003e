pub mod bucket;
pub mod post;
pub use bucket::*;
