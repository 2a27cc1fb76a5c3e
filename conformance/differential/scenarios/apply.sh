# Server-side apply (ownership, conflicts, forcing, pruning, list maps) and client-side
# apply (last-applied three-way merge, then the move to server-side apply).
k create namespace diff-apply
k apply --server-side -n diff-apply -f "$(manifest apply-cm-v1.yaml)"
k get configmap owned -n diff-apply -o yaml --show-managed-fields
k apply --server-side -n diff-apply -f "$(manifest apply-cm-v2.yaml)"
k get configmap owned -n diff-apply -o yaml --show-managed-fields
k apply --server-side -n diff-apply --field-manager=other -f "$(manifest apply-cm-other.yaml)"
k apply --server-side -n diff-apply --field-manager=other --force-conflicts -f "$(manifest apply-cm-other.yaml)"
k get configmap owned -n diff-apply -o yaml --show-managed-fields
k apply --server-side -n diff-apply -f "$(manifest apply-cm-v2.yaml)"
k patch configmap owned -n diff-apply --type=merge -p '{"data":{"d":"4","e":null}}'
k get configmap owned -n diff-apply -o yaml --show-managed-fields
k apply --server-side -n diff-apply -f "$(manifest apply-cm-v2.yaml)" --dry-run=server -o yaml
sleep 1.1  # managedFields sort by time in seconds: keep the two Updates apart
k label configmap owned -n diff-apply app=api --overwrite
k apply --server-side -n diff-apply -f "$(manifest apply-cm-v2.yaml)"
k get configmap owned -n diff-apply -o yaml --show-managed-fields
k apply --server-side -n diff-apply -f "$(manifest apply-deploy-v1.yaml)"
k get deployment web -n diff-apply -o jsonpath='{.spec}{"\n"}{.metadata.labels}{"\n"}{range .metadata.managedFields[?(@.manager!="kube-controller-manager")]}{.manager}{" "}{.operation}{" "}{.subresource}{" "}{.fieldsV1}{"\n"}{end}'
k apply --server-side -n diff-apply -f "$(manifest apply-deploy-v2.yaml)"
k get deployment web -n diff-apply -o jsonpath='{.spec}{"\n"}{.metadata.labels}{"\n"}{range .metadata.managedFields[?(@.manager!="kube-controller-manager")]}{.manager}{" "}{.operation}{" "}{.subresource}{" "}{.fieldsV1}{"\n"}{end}'
k apply --server-side -n diff-apply --field-manager=scaler -f "$(manifest apply-deploy-replicas.yaml)"
k apply --server-side -n diff-apply --field-manager=scaler --force-conflicts -f "$(manifest apply-deploy-replicas.yaml)"
k get deployment web -n diff-apply -o jsonpath='{.spec.replicas}{"\n"}{range .metadata.managedFields[?(@.manager!="kube-controller-manager")]}{.manager}{" "}{.operation}{"\n"}{end}'
k set image deployment/web -n diff-apply nginx=nginx:1.27
k get deployment web -n diff-apply -o jsonpath='{.spec}{"\n"}{.metadata.labels}{"\n"}{range .metadata.managedFields[?(@.manager!="kube-controller-manager")]}{.manager}{" "}{.operation}{" "}{.subresource}{" "}{.fieldsV1}{"\n"}{end}'
k apply -n diff-apply -f "$(manifest apply-csa-v1.yaml)"
k get configmap csa -n diff-apply -o yaml --show-managed-fields
k apply -n diff-apply -f "$(manifest apply-csa-v2.yaml)"
k get configmap csa -n diff-apply -o yaml --show-managed-fields
k apply --server-side -n diff-apply -f "$(manifest apply-csa-v2.yaml)"
k get configmap csa -n diff-apply -o yaml --show-managed-fields
k apply --server-side -n diff-apply -f "$(manifest apply-unknown.yaml)"
k apply --server-side -n diff-apply --validate=false -f "$(manifest apply-unknown.yaml)"
k apply --server-side -n diff-apply --validate=false -f "$(manifest apply-dup.yaml)"
k delete namespace diff-apply --wait=false
