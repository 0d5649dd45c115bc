#!/usr/bin/env bash
# Fetches the source kvssink is built from into DIR, complete, so that building it needs no network:
#
#   scripts/fetch-kvssink-src.sh DIR [producer-sdk-cpp tag, default v3.5.0]
#
# DIR becomes a checkout of amazon-kinesis-video-streams-producer-sdk-cpp at the tag, with the two
# repositories its CMake would otherwise clone at configure time already in the places it clones them to,
# at the tags its CMake files name:
#   DIR/dependency/libkvscproducer/kvscproducer-src                           producer-c (e.g. v1.6.0)
#   DIR/dependency/libkvscproducer/kvscproducer-src/dependency/libkvspic/kvspic-src   PIC (e.g. v1.2.0)
# scripts/build-kvssink.sh builds from such a DIR offline. The Dockerfile runs this script in its default
# kvssink source stage; for an air-gapped build run it on a connected machine and pass the directory as the
# named build context `kvssink-src` (README: "kvssink without network").
set -euo pipefail
[ $# -ge 1 ] && [ $# -le 2 ] || {
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
dir="$1"
tag="${2:-v3.5.0}"
[ ! -e "$dir" ] || [ -z "$(ls -A "$dir")" ] || {
  echo "fetch-kvssink-src: $dir exists and is not empty" >&2
  exit 1
}

clone() { # url tag dest
  echo "fetch-kvssink-src: $1 @ $2" >&2
  git -c advice.detachedHead=false clone --quiet --depth 1 --branch "$2" "$1" "$3"
}
# The repository and tag an SDK CMake download file (CMake/Dependencies/lib<name>-CMakeLists.txt) names.
pinned() { # file → "url tag"
  awk '$1 == "GIT_REPOSITORY" { url = $2 } $1 == "GIT_TAG" { tag = $2 } END { print url, tag }' "$1"
}

clone https://github.com/awslabs/amazon-kinesis-video-streams-producer-sdk-cpp.git "$tag" "$dir"
read -r c_url c_tag < <(pinned "$dir/CMake/Dependencies/libkvscproducer-CMakeLists.txt")
c_dir="$dir/dependency/libkvscproducer/kvscproducer-src"
clone "$c_url" "$c_tag" "$c_dir"
read -r pic_url pic_tag < <(pinned "$c_dir/CMake/Dependencies/libkvspic-CMakeLists.txt")
clone "$pic_url" "$pic_tag" "$c_dir/dependency/libkvspic/kvspic-src"
rm -rf "$dir/.git" "$c_dir/.git" "$c_dir/dependency/libkvspic/kvspic-src/.git"
printf 'producer-sdk-cpp %s\nproducer-c %s\npic %s\n' "$tag" "$c_tag" "$pic_tag" >"$dir/KVSSINK_SOURCES"
echo "fetch-kvssink-src: $dir ($(tr '\n' ' ' <"$dir/KVSSINK_SOURCES"))" >&2
