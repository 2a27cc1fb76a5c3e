# Discovery as kubectl prints it, and explain.
k api-versions
k api-resources --namespaced=false --no-headers -o name
k api-resources --api-group=apps
k explain deployment.spec.strategy --recursive
k explain pods.spec.restartPolicy
k explain services.spec.ports
k explain configmaps
