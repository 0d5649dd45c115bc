#!/usr/bin/env bash
# Builds GStreamer's kvssink from the producer SDK with Debian's libraries (-DBUILD_DEPENDENCIES=OFF: no
# bundled OpenSSL, curl or log4cplus), offline, and collects what it needs at run time into OUT:
#
#   scripts/build-kvssink.sh SRC OUT
#
# SRC: a source tree made by scripts/fetch-kvssink-src.sh (writable; the build goes to SRC/build). Its
# dependency repositories are already in place, so the SDK's configure-time clones are turned into no-ops.
# Build packages: scripts/install-system-deps.sh --kvssink-build. OUT/lib then holds
#   libgstkvssink.so                 the plugin (GST_PLUGIN_PATH=OUT/lib)
#   libKinesisVideoProducer.so       the C++ producer         ┐ not installed by `make install`, so copied
#   libcproducer.so*, libkvsCommonCurl.so*  producer-c        ┘ here by name (and PIC if it is shared)
# and the script fails unless every library the plugin links resolves (ldd) from OUT/lib and the system.
set -euo pipefail
[ $# -eq 2 ] || {
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
src="$(cd "$1" && pwd)"
out="$2"
c_src="$src/dependency/libkvscproducer/kvscproducer-src"
pic_src="$c_src/dependency/libkvspic/kvspic-src"
for d in "$src/src/gstreamer" "$c_src/src" "$pic_src/src"; do
  [ -d "$d" ] || {
    echo "build-kvssink: $d missing: make SRC with scripts/fetch-kvssink-src.sh" >&2
    exit 1
  }
done

# The SDKs clone producer-c and PIC through ExternalProject at configure time; the sources are here already.
offline() { # an SDK CMake/Dependencies/lib*-CMakeLists.txt
  sed -i -E '/^\s*GIT_[A-Z_]+\s/d; s/^(\s*ExternalProject_Add\([a-z-]+)\s*$/\1\n\tDOWNLOAD_COMMAND  ""\n\tUPDATE_COMMAND    ""/' "$1"
  grep -q 'DOWNLOAD_COMMAND' "$1" || {
    echo "build-kvssink: could not make $1 offline (its layout changed?)" >&2
    exit 1
  }
}
offline "$src/CMake/Dependencies/libkvscproducer-CMakeLists.txt"
offline "$c_src/CMake/Dependencies/libkvspic-CMakeLists.txt"

cmake -S "$src" -B "$src/build" -DBUILD_GSTREAMER_PLUGIN=ON -DBUILD_DEPENDENCIES=OFF -DBUILD_TEST=OFF \
  -DCMAKE_BUILD_TYPE=Release
# Only the plugin and what it links (BUILD_GSTREAMER_PLUGIN also adds a handful of samples).
cmake --build "$src/build" --target gstkvssink -j"$(nproc)"

mkdir -p "$out/lib"
copy() { # pattern…: at least one file must match
  local found
  found="$(find "$src/build" \( -name "$1" ${2:+-o -name "$2"} \) \( -type f -o -type l \))"
  [ -n "$found" ] || {
    echo "build-kvssink: no $1 in the build" >&2
    exit 1
  }
  # shellcheck disable=SC2086 # one path per line, none with spaces (the build tree)
  cp -a $found "$out/lib/"
}
copy libgstkvssink.so
copy libKinesisVideoProducer.so
copy 'libcproducer.so*'
copy 'libkvsCommonCurl.so*'
find "$src/build" -name 'libkvspic*.so*' -exec cp -a {} "$out/lib/" \;

missing="$(LD_LIBRARY_PATH="$out/lib" ldd "$out/lib/libgstkvssink.so" | grep 'not found' || true)"
[ -z "$missing" ] || {
  echo "build-kvssink: libgstkvssink.so links libraries that are not there:" >&2
  echo "$missing" >&2
  exit 1
}
cp "$src/KVSSINK_SOURCES" "$out/" 2>/dev/null || true
ls -l "$out/lib" >&2
