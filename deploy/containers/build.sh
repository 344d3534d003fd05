#!/usr/bin/env bash
# Builds the project's images with podman, one after the other, reusing cached layers
# (deploy/containers/README.md, "Images"): localhost/flexenroll-app, -kafka and -postgres.
# Usage: deploy/containers/build.sh [app|kafka|postgres ...]   (default: all three)
# BASE_IMAGE: what they are built FROM (default: the local Debian base that setup.sh imports).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/deploy/containers"
BASE_IMAGE="${BASE_IMAGE:-localhost/debian:bookworm}"
TAG="${FLEXENROLL_IMAGE_TAG:-latest}"
# pip inside a build trusts what the machine trusts (its HTTPS goes through a CA of its own): the
# machine's bundle is mounted read-only for the build and never copied into an image.
CA=/etc/ssl/certs/ca-certificates.crt

"$HERE/setup.sh"

build() { # NAME CONTEXT [podman build options...]
  local name="$1" context="$2"
  shift 2
  local started=$SECONDS
  podman build -q --layers --build-arg "BASE=$BASE_IMAGE" -v "$CA:/run/build-ca.crt:ro" \
    -t "localhost/flexenroll-$name:$TAG" "$@" "$context" >/dev/null
  echo "containers: built localhost/flexenroll-$name:$TAG in $((SECONDS - started)) s" \
    "($(podman image inspect --format '{{.Size}}' "localhost/flexenroll-$name:$TAG" | numfmt --to=si)B)"
}

images=("$@")
[ ${#images[@]} -gt 0 ] || images=(app kafka postgres)
for name in "${images[@]}"; do
  case "$name" in
    app)
      requirements="$(python3 -c 'import sys, tomllib; p = tomllib.load(open(sys.argv[1], "rb"))["project"]
print(" ".join(p["dependencies"] + p["optional-dependencies"]["aliyun"]))' "$ROOT/pyproject.toml")"
      build app "$ROOT" -f "$HERE/app.Containerfile" --ignorefile "$HERE/app.containerignore" \
        --build-arg "RUNTIME_REQUIREMENTS=$requirements" ;;
    kafka)
      "$ROOT/deploy/local/kafka.sh" install # the broker jars of deploy/local/kafka/pom.xml
      build kafka "$ROOT" -f "$HERE/kafka/Containerfile" --ignorefile "$HERE/kafka/containerignore" ;;
    postgres) build postgres "$HERE/postgres" -f "$HERE/postgres/Containerfile" ;;
    *) echo "usage: $0 [app|kafka|postgres ...]" >&2; exit 2 ;;
  esac
done
