# The CronJob controller on a cluster without nodes: the Job it creates at the next whole
# minute (annotations, labels, owner) and the CronJob's status.
k create namespace diff-cron
ensure_sa diff-cron
k create cronjob tick -n diff-cron --image=busybox:1.36 --schedule='* * * * *' -- true
k wait -n diff-cron --for=jsonpath='{.status.lastScheduleTime}' cronjob/tick --timeout=90s
k get cronjob tick -n diff-cron -o jsonpath='{.status.active[0].kind} {.status.active[0].apiVersion} {.status.lastScheduleTime}{"\n"}'
k get jobs -n diff-cron -o jsonpath='{.items[0].metadata.annotations}{"\n"}{.items[0].metadata.ownerReferences[0].kind} {.items[0].metadata.ownerReferences[0].controller} {.items[0].metadata.ownerReferences[0].blockOwnerDeletion}{"\n"}{.items[0].spec.template.spec.containers[0].name}{"\n"}'
k get cronjob tick -n diff-cron
k delete namespace diff-cron --wait=false
