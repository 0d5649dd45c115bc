#!/usr/bin/env bash
# Fetches a Node.js build (and npm) from the npm registry, which ships them as packages:
# node-linux-<arch>@<version> holds bin/node, npm@<NPM_VERSION> holds npm. No other download site is needed.
#
#   scripts/fetch-node.sh <major-or-exact-version> [arch]      e.g.  scripts/fetch-node.sh 24
#                                                                    scripts/fetch-node.sh 24.22.3 arm64
#
# arch: x64 or arm64 (amd64/x86_64/aarch64 accepted); default: this machine's.
# Result: ${XDG_CACHE_HOME:-$HOME/.cache}/webrtc-kvs-agent/node-<exact version>-<arch>/ laid out like an
# official Node distribution (bin/node, bin/npm and bin/npx linked to lib/node_modules/npm/bin/*-cli.js).
# Its path is the last line on stdout; progress goes to stderr. So:
#
#   PATH="$(scripts/fetch-node.sh 24)/bin:$PATH" npm test
#
# Idempotent: a cached exact version is used without the network. A major version is answered from the
# cache too (the newest cached build of that major) unless FETCH_NODE_REFRESH=1 asks the registry for the
# newest one. NPM_VERSION (default 11) picks the npm release; it is resolved when the Node build is fetched.
# Needs npm on the machine (any version; `npm pack` checks each tarball's integrity against the registry).
# Behind a re-signing TLS proxy, npm uses NODE_EXTRA_CA_CERTS / the npm `cafile` setting as usual.
set -euo pipefail

usage() {
  sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

[ $# -ge 1 ] && [ $# -le 2 ] || usage
want="$1"
case "$want" in -h | --help) usage ;; esac
[[ "$want" =~ ^v?[0-9]+(\.[0-9]+\.[0-9]+)?$ ]] || {
  echo "fetch-node: version must be a major (24) or exact (24.22.3), not '$want'" >&2
  exit 2
}
want="${want#v}"

arch="${2:-$(uname -m)}"
case "$arch" in
  x64 | amd64 | x86_64) arch=x64 ;;
  arm64 | aarch64) arch=arm64 ;;
  *)
    echo "fetch-node: unsupported arch '$arch' (x64 or arm64)" >&2
    exit 2
    ;;
esac

npm_version="${NPM_VERSION:-11}"
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/webrtc-kvs-agent"
mkdir -p "$cache_root"

# A complete cache entry has a marker written last, so an interrupted fetch is never taken for a hit.
complete() { [ -f "$1/.complete" ] && [ -x "$1/bin/node" ] && [ -e "$1/bin/npm" ]; }

# Newest complete cached build of a major version, or nothing.
cached_of_major() {
  local d best="" v
  for d in "$cache_root"/node-"$1".*.*-"$arch"; do
    complete "$d" || continue
    v="${d##*/node-}"
    v="${v%-"$arch"}"
    if [ -z "$best" ] || [ "$(printf '%s\n%s\n' "$best" "$v" | sort -V | tail -1)" = "$v" ]; then best="$v"; fi
  done
  [ -n "$best" ] && echo "$best"
  return 0
}

if [[ "$want" == *.* ]]; then
  version="$want"
else
  version=""
  [ "${FETCH_NODE_REFRESH:-0}" = 1 ] || version="$(cached_of_major "$want")"
  if [ -z "$version" ]; then
    # `npm view pkg@24 version --json` lists every matching version (a bare string when only one matches).
    version="$(npm view "node-linux-$arch@$want" version --json 2>/dev/null |
      tr -d '[]", ' | grep -E '^[0-9]+\.[0-9]+\.[0-9]+$' | sort -V | tail -1 || true)"
    [ -n "$version" ] || {
      echo "fetch-node: the registry has no node-linux-$arch@$want" >&2
      exit 1
    }
  fi
fi

dest="$cache_root/node-$version-$arch"
if complete "$dest"; then
  echo "fetch-node: cached $dest ($("$dest/bin/node" --version 2>/dev/null || echo "node $version, not runnable on this machine"))" >&2
  echo "$dest"
  exit 0
fi

work="$(mktemp -d "$cache_root/.fetch-XXXXXX")"
trap 'rm -rf "$work"' EXIT
echo "fetch-node: node-linux-$arch@$version and npm@$npm_version from the npm registry" >&2
(cd "$work" && npm pack --silent "node-linux-$arch@$version" "npm@$npm_version" >/dev/null)
node_tgz="$(ls "$work"/node-linux-"$arch"-*.tgz)"
npm_tgz="$(ls "$work"/npm-*.tgz)"

stage="$work/node-$version-$arch"
mkdir -p "$stage/lib/node_modules/npm"
tar -xzf "$node_tgz" -C "$stage" --strip-components=1 --no-same-owner
tar -xzf "$npm_tgz" -C "$stage/lib/node_modules/npm" --strip-components=1 --no-same-owner
rm -f "$stage/package.json" "$stage/README.md" # the wrapper package's own files, not Node's
chmod 0755 "$stage/bin/node"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$stage/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$stage/bin/npx"
npm_got="$(basename "$npm_tgz" .tgz)"
printf 'node %s (%s), %s, from the npm registry\n' "$version" "$arch" "${npm_got/npm-/npm }" >"$stage/.complete"

rm -rf "$dest"
mv "$stage" "$dest"
echo "fetch-node: $dest ($(cat "$dest/.complete"))" >&2
echo "$dest"
