# The Job controller on a cluster without nodes (pods stay Pending): the pods it makes
# (finalizer, owner), its status, suspending (pods deleted and counted) and resuming.
k create namespace diff-job
ensure_sa diff-job
k create -f "$(manifest jobs-pair.yaml)"
k wait -n diff-job --for=jsonpath='{.status.active}'=2 job/pair --timeout=60s
k get job pair -n diff-job -o jsonpath='{.status}{"\n"}'
k get pods -n diff-job -l batch.kubernetes.io/job-name=pair -o custom-columns=GEN:.metadata.generateName,FINALIZERS:.metadata.finalizers,OWNER:.metadata.ownerReferences[0].kind,CONTROLLER:.metadata.ownerReferences[0].controller,PHASE:.status.phase
k patch job pair -n diff-job --type=merge -p '{"spec":{"suspend":true}}'
k wait -n diff-job --for=condition=suspended job/pair --timeout=60s
sleep 3
k get job pair -n diff-job -o jsonpath='{.status}{"\n"}'
k get pods -n diff-job -l batch.kubernetes.io/job-name=pair -o name
k patch job pair -n diff-job --type=merge -p '{"spec":{"suspend":false}}'
k wait -n diff-job --for=jsonpath='{.status.active}'=2 job/pair --timeout=60s
k get job pair -n diff-job -o jsonpath='{.status.conditions[0].type} {.status.conditions[0].status} {.status.conditions[0].reason} {.status.conditions[0].message}{"\n"}'
k get job pair -n diff-job
k delete namespace diff-job --wait=false
