//! plumb-kustomize
