# The kubectl commands people use every day: the create generators, set, annotate/label,
# custom columns and sorting, replace --force, diff, wait, raw GETs, explain, wide tables.
spec_of() { printf '%s' "-o=jsonpath={.spec}{\"\\n\"}"; }
k create namespace diff-daily
ensure_sa diff-daily
k create deployment web -n diff-daily --image=nginx:1.25 --replicas=2 --port=80
k get deployment web -n diff-daily "$(spec_of)"
k create configmap cfg -n diff-daily --from-literal=a=1 --from-literal=b=2
k create secret generic s1 -n diff-daily --from-literal=password=p --from-literal=user=u
k get secret s1 -n diff-daily -o yaml
k create secret docker-registry reg -n diff-daily --docker-server=r.example --docker-username=u --docker-password=p
k get secret reg -n diff-daily -o jsonpath='{.type}{"\n"}'
k create secret tls bad-tls -n diff-daily --cert=/nonexistent.crt --key=/nonexistent.key
k create job j1 -n diff-daily --image=busybox:1.36 -- echo hi
k get job j1 -n diff-daily -o jsonpath='{.spec.template.spec.containers}{"\n"}{.spec.backoffLimit} {.spec.completions} {.spec.parallelism} {.spec.completionMode} {.spec.suspend}{"\n"}'
k create cronjob cj1 -n diff-daily --image=busybox:1.36 --schedule='*/5 * * * *' -- echo hi
k get cronjob cj1 -n diff-daily -o yaml
k create cronjob cj-bad -n diff-daily --image=busybox:1.36 --schedule='not a schedule'
k create role r1 -n diff-daily --verb=get,list --resource=pods,configmaps
k get role r1 -n diff-daily -o yaml
k create rolebinding rb1 -n diff-daily --role=r1 --user=alice --serviceaccount=diff-daily:default
k get rolebinding rb1 -n diff-daily -o yaml
k create clusterrole diff-cr1 --verb=get,watch --resource=nodes --resource-name=n1
k get clusterrole diff-cr1 -o yaml
k create clusterrolebinding diff-crb1 --clusterrole=diff-cr1 --group=devs
k get clusterrolebinding diff-crb1 -o yaml
k create quota q1 -n diff-daily --hard=pods=10,requests.cpu=2,count/configmaps=5
k get resourcequota q1 -n diff-daily "$(spec_of)"
k create priorityclass diff-high --value=1000 --description=high
k get priorityclass diff-high -o yaml
k create priorityclass diff-high --value=2000
k create poddisruptionbudget pdb1 -n diff-daily --selector=app=web --min-available=1
k get poddisruptionbudget pdb1 -n diff-daily "$(spec_of)"
k create serviceaccount robot -n diff-daily
k get serviceaccount robot -n diff-daily -o yaml
k set image deployment/web -n diff-daily nginx=nginx:1.26
k set env deployment/web -n diff-daily MODE=prod LEVEL=3
k set resources deployment/web -n diff-daily --limits=cpu=200m,memory=256Mi --requests=cpu=100m
k set serviceaccount deployment/web -n diff-daily robot
k get deployment web -n diff-daily -o jsonpath='{.spec.template.spec}{"\n"}'
k set env deployment/web -n diff-daily --list
k annotate deployment web -n diff-daily owner=team-a
k annotate deployment web -n diff-daily owner=team-b
k annotate deployment web -n diff-daily owner=team-b --overwrite
k label deployment web -n diff-daily env=prod
k label deployment web -n diff-daily env-
k get deployment web -n diff-daily -o jsonpath='{.metadata.labels} {.metadata.annotations.owner}{"\n"}'
k get configmaps cfg s1 -n diff-daily
k get configmaps -n diff-daily -o custom-columns=NAME:.metadata.name,A:.data.a,MISSING:.data.none
k get secrets -n diff-daily --sort-by=.type -o custom-columns=NAME:.metadata.name,TYPE:.type
k get configmaps,secrets -n diff-daily --sort-by=.metadata.name -o name
k diff -n diff-daily -f "$(manifest daily-cm.yaml)"
k replace --force -n diff-daily -f "$(manifest daily-cm.yaml)"
k get configmap cfg -n diff-daily -o jsonpath='{.data}{"\n"}'
k diff -n diff-daily -f "$(manifest daily-cm.yaml)"
k wait --for=jsonpath='{.data.a}'=1 configmap/cfg -n diff-daily --timeout=10s
k wait --for=delete configmap/gone -n diff-daily --timeout=3s
k delete configmap cfg -n diff-daily
k wait --for=delete configmap/cfg -n diff-daily --timeout=10s
k get --raw /apis/apps
k get --raw /apis/nonsense.example.com/v1
k get --raw /api/v1/namespaces/diff-daily/nonsense
k api-resources --verbs=list --namespaced=true -o name
k api-resources --api-group=apps -o wide
k explain deployment.spec.strategy --recursive
k explain pods.spec.containers.ports
k explain services.spec.type
k create namespace diff-daily-pods
ensure_sa diff-daily-pods
k apply -n diff-daily-pods -f "$(manifest daily-pod.yaml)"
k get pods -n diff-daily-pods -o wide
k get pod lone -n diff-daily-pods -o custom-columns=NAME:.metadata.name,IMAGE:.spec.containers[0].image,NODE:.spec.nodeName
k delete clusterrolebinding diff-crb1
k delete clusterrole diff-cr1
k delete priorityclass diff-high
k delete namespace diff-daily diff-daily-pods --wait=false
