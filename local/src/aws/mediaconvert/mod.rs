pub mod api;
pub use api::*;
