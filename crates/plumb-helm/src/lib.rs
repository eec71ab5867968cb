//! plumb-helm
