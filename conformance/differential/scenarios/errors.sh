# The error texts kubectl prints from the server's Status.
k create namespace diff-err
k create configmap dup -n diff-err --from-literal=a=b
k create configmap dup -n diff-err --from-literal=a=b
k get configmap nothere -n diff-err
k get configmaps.v1. nothere -n diff-err -o yaml
k create configmap Bad_Name -n diff-err
k create -f "$(manifest errors-unknown-field.yaml)" --validate=strict
k create -f "$(manifest errors-unknown-field.yaml)" --validate=warn
k get configmap typo -n diff-err -o jsonpath='{.data}{"\n"}'
k create -f "$(manifest errors-bad-type.yaml)"
k replace -f "$(manifest errors-stale.yaml)"
k get pods -n diff-err --field-selector=spec.nonsense=x
k get pods -n diff-err -l 'a in (b'
k create namespace default
k delete namespace kube-system
k create configmap x -n diff-missing-ns --from-literal=a=b
k delete namespace diff-err --wait=false
