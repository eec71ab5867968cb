//! Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`).

use serde_json::Value;

use crate::errors::ApiError;

/// Decodes a protobuf-encoded object.
pub(crate) fn decode(_bytes: &[u8]) -> Result<Value, ApiError> {
    Err(ApiError::unsupported_media_type(
        "application/vnd.kubernetes.protobuf (not supported yet: protobuf request bodies)",
    ))
}
