#!/usr/bin/env bash
# Builds container images as OCI image archives from Debian packages and Go modules; no
# registry is involved. Two sets, under the exact names and tags users and tests ask for:
#
# - the node's own: `pause` (registry.k8s.io/pause:3.10, the sandbox image) and
#   `busybox-1.36` (docker.io/library/busybox:1.36, so `kubectl run --image=busybox:1.36`
#   works out of the box);
# - every image the v1.33 conformance tests use (docs/conformance/images.md says which are
#   faithful and how the others differ), built partly from the Go module in conformance/.
#
#   hack/images/build.sh [--import CONTAINERD_SOCKET] [--list] [IMAGE...]
#
# IMAGEs (default: the conformance set): pause busybox-1.36 busybox agnhost httpd nginx
# kitten nautilus jessie-dnsutils etcd. Archives go to conformance/_out/images/<name>-<tag>.tar
# and are rebuilt when their inputs are newer. With --import, each archive is imported into
# containerd's k8s.io namespace (`ctr -n k8s.io images import`), where the CRI plugin finds it
# by name. --list prints every conformance image and whether it is built.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# The Go module upstream's images are built from, and the cache shared with its builds.
here="$root/conformance"
out="${CONFORMANCE_OUT:-$here/_out}"
images="$out/images"
oci="$root/hack/images/oci_archive.py"

log() { printf '==> [images %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

socket=
list_only=
want=()
while [ $# -gt 0 ]; do
  case "$1" in
    --import) socket="$2"; shift 2 ;;
    --import=*) socket="${1#*=}"; shift ;;
    --list) list_only=1; shift ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown flag: $1" ;;
    *) want+=("$1"); shift ;;
  esac
done

# name -> full reference (upstream v1.33's test/utils/image/manifest.go).
declare -A REF=(
  [pause]=registry.k8s.io/pause:3.10
  [busybox]=registry.k8s.io/e2e-test-images/busybox:1.36.1-1
  [busybox-1.36]=docker.io/library/busybox:1.36
  [agnhost]=registry.k8s.io/e2e-test-images/agnhost:2.53
  [httpd]=registry.k8s.io/e2e-test-images/httpd:2.4.38-4
  [httpd-new]=registry.k8s.io/e2e-test-images/httpd:2.4.39-4
  [nginx]=registry.k8s.io/e2e-test-images/nginx:1.14-4
  [nginx-new]=registry.k8s.io/e2e-test-images/nginx:1.15-4
  [kitten]=registry.k8s.io/e2e-test-images/kitten:1.7
  [nautilus]=registry.k8s.io/e2e-test-images/nautilus:1.7
  [jessie-dnsutils]=registry.k8s.io/e2e-test-images/jessie-dnsutils:1.7
  [etcd]=registry.k8s.io/etcd:3.5.21-0
  [sample-apiserver]=registry.k8s.io/e2e-test-images/sample-apiserver:1.29.2
)
ORDER=(pause busybox agnhost httpd httpd-new nginx nginx-new kitten nautilus jessie-dnsutils etcd sample-apiserver)
# Images not built, with the reason.
declare -A MISSING=(
  [sample-apiserver]="needs k8s.io/sample-apiserver v0.29.x, a second Go module graph; the Aggregator test (bucket e) also needs the etcd stand-in and pod networking first"
)

archive_of() { local ref="${REF[$1]}"; local base="${ref##*/}"; echo "$images/${base%%:*}-${base##*:}.tar"; }

if [ -n "$list_only" ]; then
  for name in "${ORDER[@]}"; do
    a="$(archive_of "$name")"
    if [ -f "$a" ]; then state="built ($a)"
    elif [ -n "${MISSING[$name]:-}" ]; then state="missing: ${MISSING[$name]}"
    else state="not built yet (run hack/images/build.sh $name)"; fi
    printf '%-60s %s\n' "${REF[$name]}" "$state"
  done
  exit 0
fi

[ ${#want[@]} -gt 0 ] || want=(pause busybox agnhost httpd httpd-new nginx nginx-new kitten nautilus jessie-dnsutils etcd)
for name in "${want[@]}"; do
  [ -n "${REF[$name]:-}" ] || die "unknown image: $name (known: ${ORDER[*]})"
done

ensure_apt() {
  local pair missing=()
  for pair in "$@"; do command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}"); done
  if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
}
ensure_apt gcc:gcc python3:python3

stage="$out/image-rootfs"
mkdir -p "$images" "$stage"

# new_rootfs NAME: an empty merged-/usr root file system (Debian's layout) with /tmp.
new_rootfs() {
  local r="$stage/$1"
  rm -rf "$r"
  mkdir -p "$r"/{usr/bin,usr/sbin,usr/lib/x86_64-linux-gnu,usr/lib64,etc,tmp,root,var,proc,sys,dev}
  ln -s usr/bin "$r/bin"; ln -s usr/sbin "$r/sbin"; ln -s usr/lib "$r/lib"; ln -s usr/lib64 "$r/lib64"
  chmod 1777 "$r/tmp"; chmod 700 "$r/root"
  echo "$r"
}

# copy_with_libs ROOTFS FILE...: copies each host binary to the same path in ROOTFS, with
# the shared libraries and the dynamic loader it needs (from ldd).
copy_with_libs() {
  local r="$1"; shift
  local f lib
  for f in "$@"; do
    [ -e "$f" ] || die "$f is missing on this machine"
    mkdir -p "$r$(dirname "$f")"
    cp -L --remove-destination "$f" "$r$f"
    ldd "$f" 2>/dev/null | awk '/=> \// {print $3} /^[ \t]*\/[^ ]+ \(/ {print $1}' | while read -r lib; do
      [ -e "$r$lib" ] && continue
      mkdir -p "$r$(dirname "$lib")"
      cp -L "$lib" "$r$lib"
    done
  done
}

# busybox_into ROOTFS: Debian's static busybox at /bin/busybox, with a symlink per applet
# (existing files win).
busybox_into() {
  local r="$1" bb="$out/debs/busybox" applet
  if [ ! -x "$bb" ]; then
    log "fetching Debian's busybox-static (apt-get download)"
    mkdir -p "$out/debs"
    (cd "$out/debs" && rm -f busybox-static_*.deb && apt-get download busybox-static >&2 2>/dev/null) \
      || die "apt-get download busybox-static failed"
    rm -rf "$out/debs/x" && dpkg-deb -x "$out/debs"/busybox-static_*.deb "$out/debs/x"
    cp "$out/debs/x/bin/busybox" "$bb"
  fi
  cp "$bb" "$r/usr/bin/busybox"
  for applet in $("$bb" --list-full); do
    # Debian's list names /bin, /sbin, /usr/bin, /usr/sbin; all land in usr/ here. Upstream's
    # busybox image has every applet in /bin too (tests run /bin/sysctl), so each one also
    # gets a link in usr/bin (= /bin).
    for path in "usr/${applet#usr/}" "usr/bin/${applet##*/}"; do
      [ -e "$r/$path" ] || [ -L "$r/$path" ] || ln -s /usr/bin/busybox "$r/$path"
    done
  done
}

# passwd_into ROOTFS [EXTRA_PASSWD_LINES] [EXTRA_GROUP_LINES]: busybox-style /etc/passwd,
# /etc/group (root and nobody, as the busybox and Alpine images have).
passwd_into() {
  local r="$1"
  printf 'root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nbin:x:2:2:bin:/bin:/bin/false\nsys:x:3:3:sys:/dev:/bin/false\nwww-data:x:33:33:www-data:/var/www:/bin/false\nnobody:x:65534:65534:nobody:/home:/bin/false\n%b' "${2:-}" > "$r/etc/passwd"
  printf 'root:x:0:\ndaemon:x:1:\nbin:x:2:\nsys:x:3:\nwww-data:x:33:\nusers:x:100:\nnogroup:x:65534:\n%b' "${3:-}" > "$r/etc/group"
  printf 'hosts: files dns\n' > "$r/etc/nsswitch.conf"
}

pack() { # pack NAME ROOTFS oci_archive.py-flags...
  local name="$1" r="$2"; shift 2
  python3 "$oci" --rootfs "$r" --ref "${REF[$name]}" --out "$(archive_of "$name")" "$@" >&2
}

# --- the images ---------------------------------------------------------------------------

build_pause() {
  local r; r="$(new_rootfs pause)"
  rm -rf "${r:?}"/*
  gcc -static -Os -s -Wall -Wextra -o "$r/pause" "$root/hack/images/pause/pause.c"
  pack pause "$r" --entrypoint '["/pause"]' --user 65535:65535
}

build_busybox() { # build_busybox NAME: busybox or busybox-1.36, the same root file system
  local r; r="$(new_rootfs "$1")"
  busybox_into "$r"
  passwd_into "$r"
  mkdir -p "$r/home" "$r/var/www" "$r/var/spool/mail"
  pack "$1" "$r" --cmd '["sh"]'
}

agnhost_rootfs() {
  local r; r="$(new_rootfs agnhost)"
  "$here/build.sh" agnhost
  ensure_apt dig:bind9-dnsutils curl:curl nc:netcat-openbsd ip:iproute2 ss:iproute2 iperf:iperf bash:bash
  local src
  src="$(go -C "$here" list -m -f '{{.Dir}}' k8s.io/kubernetes)/test/images/agnhost"
  copy_with_libs "$r" /usr/bin/bash /usr/bin/dig /usr/bin/nslookup /usr/bin/host /usr/bin/curl \
    /usr/bin/nc.openbsd /usr/bin/ss /usr/sbin/ip /usr/bin/iperf
  ln -sf nc.openbsd "$r/usr/bin/nc"
  mkdir -p "$r/usr/local/bin" "$r/etc/ssl/certs" "$r/uploads"
  ln -sf /usr/bin/iperf "$r/usr/local/bin/iperf"
  [ -f /etc/ssl/certs/ca-certificates.crt ] && cp /etc/ssl/certs/ca-certificates.crt "$r/etc/ssl/certs/"
  busybox_into "$r"
  passwd_into "$r" 'user-defined-in-image:x:1000:1000:Linux User,,,:/home/user-defined-in-image:/bin/sh\n' \
    'user-defined-in-image:x:1000:\ngroup-defined-in-image:x:50000:user-defined-in-image\n'
  mkdir -p "$r/home/user-defined-in-image"
  cp "$out/agnhost" "$r/agnhost"
  ln -s agnhost "$r/agnhost-2"
  cp "$src/porter/localhost.crt" "$src/porter/localhost.key" "$r/"
  echo "$r"
}

AGNHOST_FLAGS=(--entrypoint '["/agnhost"]' --cmd '["pause"]' --expose 80 --expose 8080 --expose 8081 --expose 9376 --expose 5000)

build_agnhost() {
  local r; r="$(agnhost_rootfs)"
  pack agnhost "$r" "${AGNHOST_FLAGS[@]}"
}

# kitten / nautilus: agnhost serving a picture and data.json with test-webserver.
build_demo() {
  local name="$1" r src
  r="$(agnhost_rootfs)"
  src="$(go -C "$here" list -m -f '{{.Dir}}' k8s.io/kubernetes)/test/images/$name/html"
  cp "$src"/* "$r/"
  pack "$name" "$r" --entrypoint '["/agnhost"]' --cmd '["test-webserver"]' --expose 80
}

# httpd / nginx stand-ins: busybox's httpd serving the upstream image's document root on
# port 80, started by the upstream image's command name.
build_webserver() {
  local name="$1" docroot="$2" cmd_name="$3" r
  r="$(new_rootfs "$name")"
  busybox_into "$r"
  passwd_into "$r"
  mkdir -p "$r$docroot"
  printf '<html><body><h1>It works!</h1></body></html>\n' > "$r$docroot/index.html"
  mkdir -p "$r/usr/local/bin"
  printf '#!/bin/sh\n# ironkube stand-in: busybox httpd in place of %s\nexec httpd -f -v -p 80 -h %s\n' \
    "$name" "$docroot" > "$r/usr/local/bin/$cmd_name"
  chmod 755 "$r/usr/local/bin/$cmd_name"
  pack "$name" "$r" --cmd "[\"$cmd_name\"]" --expose 80 \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
}

build_jessie_dnsutils() {
  local r; r="$(new_rootfs jessie-dnsutils)"
  ensure_apt dig:bind9-dnsutils
  copy_with_libs "$r" /usr/bin/dig /usr/bin/nslookup /usr/bin/host
  busybox_into "$r"
  passwd_into "$r"
  pack jessie-dnsutils "$r" --cmd '["sh"]'
}

build_etcd() {
  local r; r="$(new_rootfs etcd)"
  ensure_apt etcd:etcd-server
  copy_with_libs "$r" "$(command -v etcd)"
  mkdir -p "$r/usr/local/bin"
  cp "$r$(command -v etcd)" "$r/usr/local/bin/etcd"
  busybox_into "$r"
  passwd_into "$r"
  pack etcd "$r" --cmd '["/usr/local/bin/etcd"]'
}

for name in "${want[@]}"; do
  if [ -n "${MISSING[$name]:-}" ]; then
    log "skipping ${REF[$name]}: ${MISSING[$name]}"
    continue
  fi
  log "building ${REF[$name]}"
  case "$name" in
    pause) build_pause ;;
    busybox|busybox-1.36) build_busybox "$name" ;;
    agnhost) build_agnhost ;;
    kitten|nautilus) build_demo "$name" ;;
    httpd|httpd-new) build_webserver "$name" /usr/local/apache2/htdocs httpd-foreground ;;
    nginx|nginx-new) build_webserver "$name" /usr/share/nginx/html nginx ;;
    jessie-dnsutils) build_jessie_dnsutils ;;
    etcd) build_etcd ;;
  esac
  if [ -n "$socket" ]; then
    command -v ctr >/dev/null 2>&1 || die "ctr not found (Debian: containerd)"
    log "importing into containerd ($socket, namespace k8s.io)"
    ctr --address "$socket" -n k8s.io images import "$(archive_of "$name")" >&2
  fi
done
log "archives in $images:"
ls -la "$images" >&2
