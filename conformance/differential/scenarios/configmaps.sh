# ConfigMap life cycle through the everyday verbs and output formats.
k create namespace diff-cm
k create configmap c1 -n diff-cm --from-literal=a=1 --from-literal=b=2
k get configmap c1 -n diff-cm -o yaml
k get configmap c1 -n diff-cm -o json
k get configmap c1 -n diff-cm -o name
k get configmap c1 -n diff-cm -o jsonpath='{.data.a}{"\n"}'
k get configmaps -n diff-cm
k get configmaps -n diff-cm -o wide
k label configmap c1 -n diff-cm tier=web
k label configmap c1 -n diff-cm tier=db
k label configmap c1 -n diff-cm tier=db --overwrite
k annotate configmap c1 -n diff-cm note=hello
k label configmap c1 -n diff-cm tier-
k get configmap c1 -n diff-cm --show-labels
k patch configmap c1 -n diff-cm --type=merge -p '{"data":{"c":"3"}}'
k patch configmap c1 -n diff-cm --type=json -p '[{"op":"remove","path":"/data/a"}]'
k patch configmap c1 -n diff-cm --type=json -p '[{"op":"remove","path":"/data/missing"}]'
k patch configmap c1 -n diff-cm -p '{"data":{"d":"4"}}'
k get configmap c1 -n diff-cm -o jsonpath='{.data}{"\n"}'
k create configmap c2 -n diff-cm --from-literal=x=y --dry-run=server -o yaml
k get configmap c2 -n diff-cm
k delete configmap c1 -n diff-cm
k delete configmap c1 -n diff-cm
k delete namespace diff-cm --wait=false
