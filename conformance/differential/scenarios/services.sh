# Services: allocation, defaults, tables, validation.
k create namespace diff-svc
k create service clusterip web -n diff-svc --tcp=80:8080 -o yaml
k create service nodeport np -n diff-svc --tcp=80:8080 -o yaml
k create service clusterip headless -n diff-svc --clusterip=None -o yaml
k get services -n diff-svc
k get services -n diff-svc -o wide
k create service clusterip web -n diff-svc --tcp=80:8080
k create service clusterip bad -n diff-svc --tcp=99999:80
k delete service web -n diff-svc
k delete namespace diff-svc --wait=false
