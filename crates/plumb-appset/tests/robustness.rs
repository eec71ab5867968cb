//! Arbitrary strings in patterns, templates and parameters never panic.

mod support;

use plumb_appset::generate;
use proptest::prelude::*;
use serde_json::json;
use support::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn templates_never_panic(template in "[{}a-z .|$()\"\\-_\n]{0,40}", value in ".{0,20}", go in any::<bool>()) {
        let set = appset(json!({
            "goTemplate": go,
            "goTemplateOptions": ["missingkey=error"],
            "generators": [{"list": {"elements": [{"n": value}]}}],
            "template": {"metadata": {"name": "x", "labels": {"t": template.clone()}}, "spec": {"project": "default"}},
            "templatePatch": template,
        }));
        let _ = generate(&set, &Fake::default());
    }

    #[test]
    fn directory_patterns_never_panic(pattern in "[a-z*?\\[\\]\\\\^/{},.-]{0,20}") {
        let repo = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(repo.path().join("a/b")).expect("mkdir");
        write(repo.path(), "a/b/c.json", "{}");
        let fake = with_repo("r", repo.path());
        let dirs = appset(json!({"generators": [{"git": {"repoURL": "r", "revision": "", "directories": [{"path": pattern.clone()}]}}],
            "template": {"metadata": {"name": "{{path.basenameNormalized}}"}}}));
        let _ = generate(&dirs, &fake);
        let files = appset(json!({"generators": [{"git": {"repoURL": "r", "revision": "", "files": [{"path": pattern.clone()}]}}],
            "template": {"metadata": {"name": "{{path.basenameNormalized}}"}}}));
        let _ = generate(&files, &fake);
        let _ = plumb_appset::generate_with(&files, &fake, &plumb_appset::Options { new_git_file_globbing: true });
    }
}
