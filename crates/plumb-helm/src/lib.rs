//! plumb-helm: renders Helm charts natively (what `helm template` prints), with no `helm`
//! binary and no Go runtime.
//!
//! Start at [`template`] (library entry) or [`cli::template`] (helm's own argument list).
//! The Go `text/template` engine lives in [`tmpl`], the function library in [`funcs`],
//! chart loading in `chart`, value merging in `values` and `strvals`, and output ordering in
//! `render`.

pub mod funcs;
pub mod tmpl;
pub mod value;
pub mod yaml;

#[cfg(test)]
mod tmpl_tests;
