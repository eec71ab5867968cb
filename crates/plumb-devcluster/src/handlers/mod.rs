//! Verb handlers: read (get, list), write (create, update), patch (including
//! server-side apply) and delete.

pub(crate) mod delete;
pub(crate) mod patch;
pub(crate) mod read;
pub(crate) mod scale;
pub(crate) mod write;

use axum::http::HeaderMap;

use crate::errors::ApiError;
use crate::field_validation::FieldValidation;
use crate::meta::now;
use crate::objects::WriteCtx;
use crate::request::{Query, Target};

/// The field manager for a write: `fieldManager`, else the user agent's program name.
pub(crate) fn write_ctx(t: &Target, q: &Query, headers: &HeaderMap) -> Result<WriteCtx, ApiError> {
    let manager = match q.get("fieldManager") {
        Some(m) => {
            if m.len() > 128 {
                return Err(ApiError::bad_request(
                    "fieldManager: Too long: may not be more than 128 bytes",
                ));
            }
            m.to_string()
        }
        None => headers
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .and_then(|ua| ua.split('/').next())
            .filter(|s| !s.is_empty())
            .unwrap_or("unknown")
            .to_string(),
    };
    if let Some(dr) = q.params.get("dryRun")
        && !dr.is_empty()
        && dr != "All"
    {
        return Err(ApiError::bad_request(format!(
            "dryRun: Unsupported value: \"{dr}\": supported values: \"All\""
        )));
    }
    let validation = FieldValidation::parse(q.get("fieldValidation"))?;
    Ok(WriteCtx {
        manager,
        dry_run: q.dry_run,
        now: now(),
        api_version: t.api_version(),
        validation,
    })
}
