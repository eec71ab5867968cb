//! Impersonation and RBAC through the real kubectl (`--as`, `--as-group`, `auth`-less
//! checks by trying): refusals worded as kube-apiserver words them, Roles and ClusterRoles
//! granted through their bindings.

mod common;

use common::Kube;

const SA: &str = "system:serviceaccount:apps:deployer";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impersonated_users_get_only_what_their_bindings_grant() {
    require_kubectl!();
    let k = Kube::start().await;
    k.ok(&["create", "namespace", "apps"]).await;
    k.ok(&[
        "create",
        "configmap",
        "settings",
        "-n",
        "apps",
        "--from-literal=a=1",
    ])
    .await;
    let as_sa = ["--as", SA];

    // Nothing granted: every verb refused, worded as kube-apiserver words it.
    let err = k
        .fail(&[&as_sa[..], &["get", "configmap", "settings", "-n", "apps"]].concat())
        .await;
    assert!(
        err.contains(&format!(
            "configmaps \"settings\" is forbidden: User \"{SA}\" cannot get resource \"configmaps\" in API group \"\" in the namespace \"apps\""
        )),
        "{err}"
    );
    let err = k
        .fail(&[&as_sa[..], &["get", "configmaps", "-n", "apps"]].concat())
        .await;
    assert!(
        err.contains(&format!(
            "configmaps is forbidden: User \"{SA}\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"apps\""
        )),
        "{err}"
    );
    let err = k.fail(&[&as_sa[..], &["get", "namespaces"]].concat()).await;
    assert!(
        err.contains("cannot list resource \"namespaces\" in API group \"\" at the cluster scope"),
        "{err}"
    );

    // A Role bound to the service account: its verbs, in its namespace only.
    k.apply(
        r#"apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: config-reader, namespace: apps}
rules:
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: deployer-reads, namespace: apps}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: config-reader}
subjects:
- {kind: ServiceAccount, name: deployer, namespace: apps}
"#,
        &[],
    )
    .await;
    let listed = k
        .ok(&[
            &as_sa[..],
            &["get", "configmaps", "-n", "apps", "-o", "name"],
        ]
        .concat())
        .await;
    assert!(listed.contains("configmap/settings"), "{listed}");
    let err = k
        .fail(
            &[
                &as_sa[..],
                &["delete", "configmap", "settings", "-n", "apps"],
            ]
            .concat(),
        )
        .await;
    assert!(
        err.contains("cannot delete resource \"configmaps\""),
        "{err}"
    );
    k.ok(&["create", "namespace", "other"]).await;
    let err = k
        .fail(&[&as_sa[..], &["get", "configmaps", "-n", "other"]].concat())
        .await;
    assert!(err.contains("in the namespace \"other\""), "{err}");

    // A ClusterRole bound cluster-wide to a group the user is in (kubectl's --as-group).
    k.apply(
        r#"apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: deployments-admin}
rules:
- apiGroups: [apps]
  resources: ["*"]
  verbs: ["*"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: platform-deploys}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: deployments-admin}
subjects:
- {kind: Group, name: platform, apiGroup: rbac.authorization.k8s.io}
"#,
        &[],
    )
    .await;
    let as_platform = ["--as", "jane", "--as-group", "platform"];
    k.ok(&[
        &as_platform[..],
        &[
            "create",
            "deployment",
            "web",
            "-n",
            "other",
            "--image=nginx",
        ],
    ]
    .concat())
        .await;
    k.ok(&[
        &as_platform[..],
        &["scale", "deployment", "web", "-n", "other", "--replicas=2"],
    ]
    .concat())
        .await;
    let err = k
        .fail(&[&as_platform[..], &["get", "configmaps", "-n", "other"]].concat())
        .await;
    assert!(
        err.contains("User \"jane\" cannot list resource \"configmaps\""),
        "{err}"
    );
    // Without impersonation, the request is the admin's.
    k.ok(&["delete", "configmap", "settings", "-n", "apps"])
        .await;
    k.cluster.shutdown().await;
}
