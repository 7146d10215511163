//! The `demo`, `sandbox` and `doctor` commands.
