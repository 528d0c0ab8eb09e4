//! leadbus gateway.
