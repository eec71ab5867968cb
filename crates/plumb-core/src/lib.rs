//! plumb-core
