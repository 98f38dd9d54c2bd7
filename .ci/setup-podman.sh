#!/usr/bin/env bash
# Podman for the container test (tests/test_container.py), as /work/shared/CONTAINERS.md found works
# on a Debian 12 machine run as root with no Docker engine and no registry (PyPI and Debian only).
# Idempotent: a second run changes nothing and takes well under a second.
#   - podman + runc (crun fails here: "cgroups in hybrid mode not supported"; runc is pinned below),
#   - a containers.conf whose default ulimits fit the hard limits (else `podman run` fails with
#     "error setting rlimit type 7"), at $CONTAINERS_CONF (default /tmp/podman-ci/containers.conf),
#   - a Debian 12 base image with python3 made by debootstrap, tagged localhost/bookworm-python:base
#     (there is no registry to pull python:3.12-slim from).
# Then: export CONTAINERS_CONF=/tmp/podman-ci/containers.conf (podman reads it for every command).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
BASE_TAG=${BASE_TAG:-localhost/bookworm-python:base}

if ! type -P podman runc debootstrap >/dev/null; then
  # DPkg::Lock::Timeout: another apt-get on the machine may hold the dpkg lock for a while.
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq podman runc debootstrap >/dev/null
fi

export CONTAINERS_CONF=${CONTAINERS_CONF:-/tmp/podman-ci/containers.conf}
mkdir -p "$(dirname "$CONTAINERS_CONF")"
hard_nofile=$(ulimit -Hn)
printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=32768:32768"]\n[engine]\nruntime = "runc"\n' \
  "$hard_nofile" "$hard_nofile" >"$CONTAINERS_CONF"

if ! podman image exists "$BASE_TAG"; then
  ROOTFS=$(mktemp -d)
  trap 'rm -rf "$ROOTFS"' EXIT
  MIRROR=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
    bookworm "$ROOTFS" "${MIRROR:-http://deb.debian.org/debian}" >/dev/null
  rm -f "$ROOTFS"/var/cache/apt/archives/*.deb
  tar -C "$ROOTFS" -c . | podman import --change 'CMD ["/bin/bash"]' - "$BASE_TAG" >/dev/null
fi
echo "podman $(podman version --format '{{.Client.Version}}') with runc; base $BASE_TAG"
echo "CONTAINERS_CONF=$CONTAINERS_CONF"
