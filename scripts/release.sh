#!/usr/bin/env bash
# Release builds of passman, passman-full (the commands passman hands over)
# and passman-regal (the policy linter), both run from beside passman, for
# the GitHub Action's runners and users: linux, darwin and windows, each
# amd64 and arm64, pure Go (CGO_ENABLED=0, RE2 as WebAssembly), -trimpath
# and fixed ldflags, so that the same source and Go version give
# byte-identical binaries and their SHA-256 can be pinned in
# action/release.json before the tag is pushed.
#
#   scripts/release.sh check              cross-compile every target (make test)
#   scripts/release.sh build VERSION [DIR] binaries and checksums.txt in DIR (dist)
#   scripts/release.sh pin VERSION        build, then write action/release.json
#   scripts/release.sh verify VERSION     build, then compare with action/release.json
set -euo pipefail
cd "$(dirname "$0")/.."

TARGETS="linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64"
export CGO_ENABLED=0 GOFLAGS="-tags=gore2regex -buildvcs=false"

PROGRAMS="passman passman-full passman-regal"

build() { # VERSION OS ARCH PROGRAM OUT
  GOOS="$2" GOARCH="$3" go build -trimpath \
    -ldflags "-s -w -buildid= -X github.com/passman-dev/passman/internal/clibase.version=$1" -o "$5" "./cmd/$4"
}

name() { # PROGRAM OS ARCH
  local n="$1_$2_$3"
  [ "$2" = windows ] && n="$n.exe"
  echo "$n"
}

build_all() { # VERSION DIR
  rm -rf "$2" && mkdir -p "$2"
  for t in $TARGETS; do
    for p in $PROGRAMS; do
      build "$1" "${t%/*}" "${t#*/}" "$p" "$2/$(name "$p" "${t%/*}" "${t#*/}")"
    done
  done
  (cd "$2" && sha256sum passman_* passman-full_* passman-regal_* >checksums.txt)
}

# release_json VERSION DIR: the pins binary.js checks downloads against,
# keyed by release asset name.
release_json() {
  local first=1
  printf '{\n  "version": "%s",\n  "go": "%s",\n  "sha256": {\n' "$1" "$(go env GOVERSION)"
  for t in $TARGETS; do
    for p in $PROGRAMS; do
      local n
      n="$(name "$p" "${t%/*}" "${t#*/}")"
      [ $first = 1 ] || printf ',\n'
      first=0
      printf '    "%s": "%s"' "$n" "$(sha256sum "$2/$n" | cut -d' ' -f1)"
    done
  done
  printf '\n  }\n}\n'
}

case "${1:-}" in
check)
  for t in $TARGETS; do
    for p in $PROGRAMS; do
      GOOS="${t%/*}" GOARCH="${t#*/}" go build -o /dev/null "./cmd/$p"
    done
    echo "built ${t}"
  done
  ;;
build)
  build_all "${2:?version}" "${3:-dist}"
  cat "${3:-dist}/checksums.txt"
  ;;
pin)
  build_all "${2:?version}" dist
  release_json "$2" dist >action/release.json
  cat action/release.json
  ;;
verify)
  build_all "${2:?version}" dist
  release_json "$2" dist >dist/release.json
  if ! diff -u action/release.json dist/release.json; then
    echo "the binaries built here differ from action/release.json's pins (another Go version?)" >&2
    exit 1
  fi
  ;;
*)
  sed -n '2,16p' "$0" >&2
  exit 2
  ;;
esac
