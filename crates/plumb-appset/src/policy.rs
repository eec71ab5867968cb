//! `spec.syncPolicy.applicationsSync`: what the engine's apply step may do to the
//! Applications of a set. Generation does not use it; the engine does.

use serde_json::Value;

use crate::error::Error;

/// Which changes the ApplicationSet controller makes to existing Applications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ApplicationsSync {
    /// Create, update and delete (Argo CD's default).
    #[default]
    Sync,
    /// Create only: never update or delete.
    CreateOnly,
    /// Create and update, never delete.
    CreateUpdate,
    /// Create and delete, never update.
    CreateDelete,
}

impl ApplicationsSync {
    /// May an existing Application be changed to match its generated form?
    pub fn allows_update(self) -> bool {
        matches!(
            self,
            ApplicationsSync::Sync | ApplicationsSync::CreateUpdate
        )
    }

    /// May an Application no longer generated be deleted?
    pub fn allows_delete(self) -> bool {
        matches!(
            self,
            ApplicationsSync::Sync | ApplicationsSync::CreateDelete
        )
    }
}

/// The set's `spec.syncPolicy.applicationsSync` (default `sync`).
pub fn applications_sync(appset: &Value) -> Result<ApplicationsSync, Error> {
    match appset.pointer("/spec/syncPolicy/applicationsSync") {
        None | Some(Value::Null) => Ok(ApplicationsSync::Sync),
        Some(Value::String(s)) => match s.as_str() {
            "sync" => Ok(ApplicationsSync::Sync),
            "create-only" => Ok(ApplicationsSync::CreateOnly),
            "create-update" => Ok(ApplicationsSync::CreateUpdate),
            "create-delete" => Ok(ApplicationsSync::CreateDelete),
            other => Err(Error::invalid(
                "spec.syncPolicy.applicationsSync",
                format!("{other:?} is not one of create-only, create-update, create-delete, sync"),
            )),
        },
        Some(_) => Err(Error::invalid(
            "spec.syncPolicy.applicationsSync",
            "must be a string",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_the_four_policies() {
        let of =
            |p: Value| applications_sync(&json!({"spec": {"syncPolicy": {"applicationsSync": p}}}));
        assert_eq!(
            applications_sync(&json!({"spec": {}})).ok(),
            Some(ApplicationsSync::Sync)
        );
        assert_eq!(
            of(json!("create-only")).ok(),
            Some(ApplicationsSync::CreateOnly)
        );
        assert_eq!(
            of(json!("create-update"))
                .ok()
                .map(|p| (p.allows_update(), p.allows_delete())),
            Some((true, false))
        );
        assert_eq!(
            of(json!("create-delete"))
                .ok()
                .map(|p| (p.allows_update(), p.allows_delete())),
            Some((false, true))
        );
        assert!(of(json!("delete")).is_err());
        assert!(of(json!(1)).is_err());
    }
}
