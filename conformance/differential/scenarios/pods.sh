# A pod as the API server admits and defaults it, and admission's refusals.
k create namespace diff-pod
ensure_sa diff-pod
k create -f "$(manifest pods-pod.yaml)" -o yaml
k get pod p -n diff-pod
k get pod p -n diff-pod -o wide
k get pods -n diff-pod --field-selector=status.phase=Pending -o name
k get pods -n diff-pod --field-selector=spec.nodeName= -o name
k label pod p -n diff-pod app=web
k get pods -n diff-pod -l app=web -o name
k get pods -n diff-pod -l 'app notin (web)' -o name
k patch pod p -n diff-pod -p '{"spec":{"containers":[{"name":"c","image":"busybox:1.35"}]}}' -o jsonpath='{.spec.containers[0].image}{"\n"}'
k patch pod p -n diff-pod -p '{"spec":{"restartPolicy":"Never"}}'
k set env pod/p -n diff-pod MODE=fast
k set resources pod/p -n diff-pod --limits=cpu=500m,memory=128Mi
k patch pod p -n diff-pod --type=json -p '[{"op":"add","path":"/spec/nodeSelector","value":{"disk":"ssd"}},{"op":"replace","path":"/spec/dnsPolicy","value":"Default"}]'
k patch pod p -n diff-pod -p '{"spec":{"containers":[{"name":"c","ports":[{"containerPort":8080,"name":"http"}]}]}}'
k run r -n diff-pod --image=busybox:1.36 --restart=Never --dry-run=server -o yaml -- sleep 10
k delete pod p -n diff-pod --grace-period=0 --force
k delete namespace diff-pod --wait=false
