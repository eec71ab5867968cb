//! plumb-kube
