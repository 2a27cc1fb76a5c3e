# kubectl edit through an EDITOR script, apply --prune by label, apply --server-side to a
# subresource, and server-side apply's ownership seen through kubectl's own views.
k create namespace diff-edit
k create configmap edited-cm -n diff-edit --from-literal=a=1 --from-literal=b=2
EDITOR="$(manifest edit-cm.editor)" k edit configmap edited-cm -n diff-edit
k get configmap edited-cm -n diff-edit -o yaml --show-managed-fields
EDITOR="$(manifest edit-bad.editor)" k edit configmap edited-cm -n diff-edit
EDITOR=true k edit configmap edited-cm -n diff-edit
k apply -n diff-edit -f "$(manifest prune)"
k get configmaps -n diff-edit -l app=prune-demo
k apply -n diff-edit --prune -l app=prune-demo --prune-allowlist=core/v1/ConfigMap -f "$(manifest prune/a.yaml)"
k get configmaps -n diff-edit -l app=prune-demo
k apply -n diff-edit -f "$(manifest prune/a.yaml)" --dry-run=server -o yaml
k apply -n diff-edit --server-side -f "$(manifest prune/b.yaml)" --dry-run=server -o yaml
k create service loadbalancer lb -n diff-edit --tcp=80:8080
k apply -n diff-edit --server-side --subresource=status --field-manager=lb-writer -f "$(manifest edit-svc-status.yaml)"
k get service lb -n diff-edit -o jsonpath='{.status}{"\n"}{range .metadata.managedFields[*]}{.manager}{" "}{.operation}{" "}{.subresource}{" "}{.fieldsV1}{"\n"}{end}'
k delete namespace diff-edit --wait=false
