#!/usr/bin/env bash
# Makes this machine able to build and run the project's containers with podman, without a Docker
# engine or a reachable image registry (deploy/containers/README.md, "Setup"). Idempotent: a
# second run only checks. Needs root (apt, /etc/containers).
# Usage: deploy/containers/setup.sh
set -euo pipefail

BASE_IMAGE="${FLEXENROLL_BASE_IMAGE:-localhost/debian:bookworm}"
CONF=/etc/containers/containers.conf
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)

need=()
command -v podman >/dev/null || need+=(podman)
command -v runc >/dev/null || need+=(runc)
command -v debootstrap >/dev/null || need+=(debootstrap)
# Compose's containers find each other by name: netavark's bridge with aardvark's DNS (Debian's
# CNI plugins have no DNS).
[ -x /usr/lib/podman/netavark ] || need+=(netavark)
[ -x /usr/lib/podman/aardvark-dns ] || need+=(aardvark-dns)
# `podman kube play` builds its pods' pause image from catatonit.
command -v catatonit >/dev/null || [ -x /usr/libexec/podman/catatonit ] || need+=(catatonit)
if [ ${#need[@]} -gt 0 ]; then
  echo "containers: installing ${need[*]}"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${need[@]}" slirp4netns uidmap
fi

# crun in Debian 12 refuses this kernel's hybrid cgroups, and the sandbox cannot raise the default
# ulimits: runc, and no default ulimits; netavark as above. Written only when it differs.
wanted="$(printf '%s\n' '# deploy/containers/setup.sh' '[containers]' 'default_ulimits = []' '' \
  '[engine]' 'runtime = "runc"' '' '[network]' 'network_backend = "netavark"')"
if [ "$(cat "$CONF" 2>/dev/null)" != "$wanted" ]; then
  echo "containers: writing $CONF (runtime runc, no default ulimits, netavark)"
  if [ -f "$CONF" ]; then "${sudo[@]}" cp "$CONF" "$CONF.before-flexenroll"; fi
  printf '%s\n' "$wanted" | "${sudo[@]}" tee "$CONF" >/dev/null
fi
# A bridge left by podman's former CNI backend keeps a route over netavark's subnet, and the
# containers' answers would go there.
if ip link show cni-podman0 >/dev/null 2>&1 && [ "$(podman info --format '{{.Host.NetworkBackend}}')" = netavark ]; then
  echo "containers: removing the CNI backend's stale bridge cni-podman0"
  "${sudo[@]}" ip link delete cni-podman0
fi

# No registry is reachable: the base image is Debian's minimal root file system, from Debian's
# packages, imported once.
if "${sudo[@]}" podman image exists "$BASE_IMAGE"; then
  echo "containers: base image $BASE_IMAGE present"
else
  rootfs="$(mktemp -d /var/tmp/flexenroll-rootfs.XXXXXX)"
  trap '"${sudo[@]}" rm -rf "$rootfs"' EXIT
  echo "containers: debootstrap bookworm (minbase) for $BASE_IMAGE"
  "${sudo[@]}" debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >"$rootfs.log" 2>&1 ||
    { tail -n 30 "$rootfs.log" >&2; exit 1; }
  rm -f "$rootfs.log"
  # The security suite too, as on the machine, so that images get Debian's fixes.
  printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb http://deb.debian.org/debian-security bookworm-security main\n' \
    "$MIRROR" "$MIRROR" | "${sudo[@]}" tee "$rootfs/etc/apt/sources.list" >/dev/null
  "${sudo[@]}" rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  "${sudo[@]}" tar -C "$rootfs" -c . | "${sudo[@]}" podman import -q - "$BASE_IMAGE" >/dev/null
  echo "containers: imported $BASE_IMAGE"
fi
