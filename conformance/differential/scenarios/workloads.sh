# Workload defaults (server-side dry runs: no controller acts on them).
k create namespace diff-wl
ensure_sa diff-wl
k create deployment web -n diff-wl --image=busybox:1.36 --replicas=3 --dry-run=server -o yaml
k create job j -n diff-wl --image=busybox:1.36 --dry-run=server -o yaml -- true
k create cronjob cj -n diff-wl --image=busybox:1.36 --schedule='*/5 * * * *' --dry-run=server -o yaml -- true
k create -f "$(manifest workloads-sts-ds.yaml)" --dry-run=server -o yaml
k create deployment bad -n diff-wl --image=busybox:1.36 --replicas=-1 --dry-run=server
k create cronjob bad -n diff-wl --image=busybox:1.36 --schedule='not a schedule' --dry-run=server -- true
k delete namespace diff-wl --wait=false
