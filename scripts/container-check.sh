#!/usr/bin/env bash
# Builds the real Dockerfile with podman and runs the image against the KVS emulator on this machine, the way
# CI does (issue 7 §2). Needs root on Debian 12 (apt-get, rootful podman) and nothing outside the repository:
#
#   scripts/container-check.sh [--remove-images] [--remove-storage] [--rebuild-base] [--keep-output]
#
#   1. podman, buildah, runc & co from apt if missing; a containers.conf for this host (runc, ulimits, cgroupfs — podman on
#      Debian 12 with hybrid cgroups and a capped RLIMIT_NOFILE) and a storage of its own under /var/lib/webrtc-kvs-agent/containers;
#   2. local stand-ins for the base images, made once and reused: localhost/debian:12-slim (debootstrap
#      minbase bookworm) and localhost/node:24-bookworm-slim (that + Node 24 from scripts/fetch-node.sh);
#   3. `podman build --format docker --target runtime-nokvssink` with those as NODE_IMAGE/DEBIAN_IMAGE: the
#      production image without kvssink (the kvssink stage clones the SDK from GitHub, which CI cannot reach:
#      reported as skipped);
#   4. scripts/containerCheck.ts: emulator and reference master (headless Chromium) on the host, the container
#      on the host network with the file sink for ~20 s — health check healthy, a recording (ffprobe: H.264 +
#      AAC, decodes cleanly), `podman stop` → exit 0 within the drain budget, the test secret only in the
#      agent's environment.
# Each check is one line; the last line is `N passed, N failed, N skipped`; exit status 1 if any failed.
# --remove-images removes the built image and the base stand-ins afterwards; --remove-storage removes this
# script's whole podman storage (images, layer and npm caches); --rebuild-base makes the stand-ins again.
set -uo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"

remove_images=0 remove_storage=0 rebuild_base=0 keep_output=0
for a in "$@"; do
  case "$a" in
    --remove-images) remove_images=1 ;;
    --remove-storage) remove_storage=1 ;;
    --rebuild-base) rebuild_base=1 ;;
    --keep-output) keep_output=1 ;;
    *)
      sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//' >&2
      exit 2
      ;;
  esac
done

NODE_MAJOR=24
IMAGE=localhost/webrtc-kvs-agent:check
DEBIAN_BASE=localhost/debian:12-slim
NODE_BASE=localhost/node:${NODE_MAJOR}-bookworm-slim
state=/var/lib/webrtc-kvs-agent/containers
started=$(date +%s)
passed=0 failed=0 skipped=0
log_dir="$(mktemp -d /tmp/container-check.XXXXXX)"

pass() {
  passed=$((passed + 1))
  echo "PASS $*"
}
fail() {
  failed=$((failed + 1))
  echo "FAIL $*"
}
skip() {
  skipped=$((skipped + 1))
  echo "SKIP $*"
}
elapsed() { echo "$(($(date +%s) - $1)) s"; }
finish() {
  if [ "$remove_images" = 1 ] || [ "$remove_storage" = 1 ]; then
    podman rmi -f "$IMAGE" "$NODE_BASE" "$DEBIAN_BASE" >/dev/null 2>&1 || true
    podman image prune -f >/dev/null 2>&1 || true
  fi
  if [ "$remove_storage" = 1 ]; then
    podman rm -af >/dev/null 2>&1 || true
    podman rmi -af >/dev/null 2>&1 || true
    rm -rf "$state" /var/tmp/buildah-cache-0 && echo "removed $state"
  fi
  [ "$failed" -eq 0 ] && rm -rf "$log_dir"
  echo "container check took $(elapsed "$started")"
  echo "$passed passed, $failed failed, $skipped skipped"
  [ "$failed" -eq 0 ]
  exit
}
# A step failed that every later one needs.
abort() {
  fail "$@"
  echo "(logs in $log_dir)"
  finish
}

[ "$(id -u)" -eq 0 ] || abort "container check needs root (apt-get, debootstrap, rootful podman)"

# --- 1. podman and this host's settings -----------------------------------------------------------------------
tools=(podman buildah runc debootstrap)
need_apt=0
for t in "${tools[@]}"; do command -v "$t" >/dev/null || need_apt=1; done
if [ "$need_apt" = 1 ]; then
  t0=$(date +%s)
  if (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    podman buildah runc fuse-overlayfs slirp4netns debootstrap uidmap containernetworking-plugins \
    iptables ca-certificates) >"$log_dir/apt.log" 2>&1; then
    pass "podman installed from apt ($(elapsed "$t0"))"
  else
    abort "podman install from apt: $(tail -3 "$log_dir/apt.log" | tr '\n' ' ')"
  fi
fi
# The repository's own dependencies on the host: Chromium for the master, ffprobe, node_modules for tsx.
bash scripts/ensure-deps.sh >"$log_dir/ensure-deps.log" 2>&1 ||
  abort "scripts/ensure-deps.sh: $(tail -3 "$log_dir/ensure-deps.log" | tr '\n' ' ')"

mkdir -p "$state/storage" /run/webrtc-kvs-agent/containers
# cgroups here are hybrid v1+v2 and PID 1 is not systemd (crun refuses; no systemd cgroup manager); root's
# hard open-files limit is 20000, so podman's default ulimits cannot be set.
cat >"$state/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
cat >"$state/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$state/storage"
runroot = "/run/webrtc-kvs-agent/containers"
EOF
export CONTAINERS_CONF="$state/containers.conf" CONTAINERS_STORAGE_CONF="$state/storage.conf"
podman info >"$log_dir/podman-info.log" 2>&1 || abort "podman info: $(tail -3 "$log_dir/podman-info.log" | tr '\n' ' ')"
pass "podman $(podman version --format '{{.Client.Version}}') with runc, cgroupfs and fixed ulimits (CONTAINERS_CONF=$CONTAINERS_CONF)"

# --- 2. base image stand-ins ------------------------------------------------------------------------------------
if [ "$rebuild_base" = 1 ]; then podman rmi -f "$NODE_BASE" "$DEBIAN_BASE" >/dev/null 2>&1 || true; fi
if podman image exists "$DEBIAN_BASE"; then
  pass "$DEBIAN_BASE (cached)"
else
  t0=$(date +%s)
  rootfs="$(mktemp -d /var/tmp/debian-rootfs.XXXXXX)"
  mirror="$(awk '/^URIs:/ && $2 ~ /debian\/?$/ { print $2; exit }' /etc/apt/sources.list.d/*.sources 2>/dev/null)"
  if debootstrap --variant=minbase bookworm "$rootfs" "${mirror:-http://deb.debian.org/debian}" \
    >"$log_dir/debootstrap.log" 2>&1; then
    rm -f "$rootfs"/etc/apt/sources.list
    cp /etc/apt/sources.list.d/*.sources "$rootfs/etc/apt/sources.list.d/" 2>/dev/null ||
      echo "deb ${mirror:-http://deb.debian.org/debian} bookworm main" >"$rootfs/etc/apt/sources.list"
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*
    # What Debian's slim images leave out of the base system too.
    find "$rootfs/usr/share/doc" -type f ! -name copyright -delete
    rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/*
    # Like the official slim image: no docs, manuals or locales from later apt installs.
    printf 'path-exclude /usr/share/doc/*\npath-include /usr/share/doc/*/copyright\npath-exclude /usr/share/man/*\npath-exclude /usr/share/locale/*\npath-exclude /usr/share/info/*\n' \
      >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim"
    tar -C "$rootfs" -c . | podman import --change 'CMD ["bash"]' - "$DEBIAN_BASE" >>"$log_dir/debootstrap.log" 2>&1 &&
      pass "$DEBIAN_BASE made with debootstrap minbase bookworm ($(elapsed "$t0"))" ||
      abort "podman import of the Debian rootfs: $(tail -3 "$log_dir/debootstrap.log" | tr '\n' ' ')"
  else
    abort "debootstrap: $(tail -3 "$log_dir/debootstrap.log" | tr '\n' ' ')"
  fi
  rm -rf "$rootfs"
fi

if podman image exists "$NODE_BASE"; then
  pass "$NODE_BASE (cached, $(podman image inspect --format '{{index .Config.Labels "org.nodejs.version"}}' "$NODE_BASE"))"
else
  t0=$(date +%s)
  node_dir="$(bash scripts/fetch-node.sh "$NODE_MAJOR" 2>"$log_dir/fetch-node.log" | tail -1)"
  [ -x "$node_dir/bin/node" ] || abort "scripts/fetch-node.sh $NODE_MAJOR: $(tail -3 "$log_dir/fetch-node.log" | tr '\n' ' ')"
  node_version="$("$node_dir/bin/node" --version)"
  # Laid out as the official image: /usr/local/bin/{node,npm,npx}, user node (1000).
  if podman build --pull=never -f - -t "$NODE_BASE" --build-arg BASE="$DEBIAN_BASE" \
    --label org.nodejs.version="$node_version" "$node_dir" >"$log_dir/node-base.log" 2>&1 <<'EOF'; then
ARG BASE
FROM ${BASE}
COPY bin/node /usr/local/bin/node
COPY lib/node_modules/npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
    && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
    && groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node \
    && node --version && npm --version
CMD ["node"]
EOF
    pass "$NODE_BASE made from $DEBIAN_BASE + Node $node_version from the npm registry ($(elapsed "$t0"))"
  else
    abort "node base image: $(tail -3 "$log_dir/node-base.log" | tr '\n' ' ')"
  fi
fi

# --- 3. the image ------------------------------------------------------------------------------------------------
t0=$(date +%s)
ca_args=()
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  # The TLS proxy's CA for npm, for the build only (never in the image).
  ca_args=(-v /etc/ssl/certs/ca-certificates.crt:/run/host-ca.crt:ro --build-arg NODE_EXTRA_CA_CERTS=/run/host-ca.crt)
fi
if podman build --format docker --pull=never --target runtime-nokvssink \
  --build-arg NODE_IMAGE="$NODE_BASE" --build-arg DEBIAN_IMAGE="$DEBIAN_BASE" "${ca_args[@]}" \
  -t "$IMAGE" . >"$log_dir/build.log" 2>&1; then
  size_mb=$(($(podman image inspect --format '{{.Size}}' "$IMAGE") / 1000000))
  pass "image built from ./Dockerfile, target runtime-nokvssink ($(elapsed "$t0"), $size_mb MB)"
else
  abort "podman build: $(grep -E 'Error|error:' "$log_dir/build.log" | tail -3 | tr '\n' ' ')"
fi
skip "kvssink stage (target runtime): it clones the producer SDK from GitHub, which this machine cannot reach; built and run here without kvssink, everything else is the production image"

# --- 4. run it against the emulator -----------------------------------------------------------------------------
t0=$(date +%s)
driver_args=(--image "$IMAGE")
[ "$keep_output" = 1 ] && driver_args+=(--keep-output)
node --no-warnings --import tsx scripts/containerCheck.ts "${driver_args[@]}" 2>"$log_dir/driver.log" |
  tee "$log_dir/driver.out"
driver_status=${PIPESTATUS[0]}
passed=$((passed + $(grep -c '^PASS ' "$log_dir/driver.out")))
failed=$((failed + $(grep -c '^FAIL ' "$log_dir/driver.out")))
skipped=$((skipped + $(grep -c '^SKIP ' "$log_dir/driver.out")))
if [ "$driver_status" -ne 0 ] && ! grep -q '^FAIL ' "$log_dir/driver.out"; then
  fail "scripts/containerCheck.ts exited with $driver_status: $(tail -3 "$log_dir/driver.log" | tr '\n' ' ')"
fi
echo "container run checks took $(elapsed "$t0")"
finish
