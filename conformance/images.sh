#!/usr/bin/env bash
# The conformance images: hack/images/build.sh builds them (see its --help).
exec "$(dirname "${BASH_SOURCE[0]}")/../hack/images/build.sh" "$@"
