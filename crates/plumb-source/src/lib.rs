//! plumb-source
