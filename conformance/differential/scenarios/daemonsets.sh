# The DaemonSet controller on a cluster without nodes: its ControllerRevisions (names
# carry upstream's template hash, data the template-replacing patch), status and history.
k create namespace diff-ds
ensure_sa diff-ds
k create -f "$(manifest daemonsets-ds.yaml)"
k wait -n diff-ds --for=jsonpath='{.status.observedGeneration}'=1 daemonset/agent --timeout=60s
k get controllerrevisions -n diff-ds -o yaml
k get daemonset agent -n diff-ds -o jsonpath='{.status}{"\n"}'
k set image daemonset/agent -n diff-ds agent=busybox:1.37
k wait -n diff-ds --for=jsonpath='{.status.observedGeneration}'=2 daemonset/agent --timeout=60s
k get controllerrevisions -n diff-ds --sort-by=.revision -o custom-columns=NAME:.metadata.name,REVISION:.revision,HASH:.metadata.labels.controller-revision-hash
k rollout history daemonset/agent -n diff-ds
k rollout history daemonset/agent -n diff-ds --revision=1
k get daemonset agent -n diff-ds
k delete namespace diff-ds --wait=false
