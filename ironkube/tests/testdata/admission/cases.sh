#!/usr/bin/env bash
# Admission cases run by ironkube/tests/admission.rs; cases.upstream.txt is what this printed
# against upstream kube-apiserver v1.33.13 (conformance/_out/kube-apiserver, no controllers, with
# the default ServiceAccount created by hand): bash cases.sh KUBECONFIG > cases.upstream.txt
set -u
K="${KUBECTL:-/usr/lib/google-cloud-sdk/bin/kubectl.1.33} --kubeconfig $1"
p() { printf 'apiVersion: v1\nkind: Pod\nmetadata: {name: %s}\nspec:\n%s\n  containers: [{name: c, image: "busybox:1.36"}]\n' "$1" "$2"; }
p pc "  priorityClassName: nope" | $K create -f - 2>&1
p prio "  priority: 5" | $K create -f - 2>&1
p sa "  serviceAccountName: ghost" | $K create -f - 2>&1
p pol "  preemptionPolicy: Never" | $K create -f - 2>&1
p gen "" | sed 's/name: gen/generateName: gen-/' | $K create -f - -n nsmissing 2>&1
printf 'apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: d1}\nvalue: 10\nglobalDefault: true\n' | $K create -f - 2>&1
printf 'apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: d2}\nvalue: 5\nglobalDefault: true\n' | $K create -f - 2>&1
p afterdefault "" | $K create -f - -o jsonpath='{.spec.priorityClassName} {.spec.priority} {.spec.preemptionPolicy}{"\n"}' 2>&1
p mirror "" | sed 's/name: mirror}/name: mirror, annotations: {kubernetes.io\/config.mirror: x}}/' | $K create -f - -o jsonpath='{.spec.serviceAccountName}|{.spec.volumes}|{.spec.tolerations}{"\n"}' 2>&1
$K replace -f <($K get pod afterdefault -o json | python3 -c 'import json,sys; o=json.load(sys.stdin); del o["spec"]["priority"]; del o["spec"]["tolerations"]; print(json.dumps(o))') -o jsonpath='{.spec.priority} {.spec.tolerations[*].key}{"\n"}' 2>&1
$K delete priorityclass d1 2>&1
