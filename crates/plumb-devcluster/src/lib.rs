//! plumb-devcluster
