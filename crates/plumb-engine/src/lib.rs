//! plumb-engine
