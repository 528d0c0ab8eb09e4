//! Turning a leads CSV into the events of `leadbus load` (placeholder until datasets land).
