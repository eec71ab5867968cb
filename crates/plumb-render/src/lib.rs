//! plumb-render
