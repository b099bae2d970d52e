#!/usr/bin/env bash
# Installs the pinned external tools (tools/versions.env) into a project-local bin directory.
# Idempotent: a tool already at its pinned version is left alone, so a second run takes seconds.
#   tools/install.sh [--bin DIR] [--no-apt] [--only timoni,flux,cosign,actionlint,cue]
# The Dockerfile's builder stage runs this same script with --no-apt.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=/dev/null
source "$here/versions.env"

bin_dir="$here/../.tools/bin"
with_apt=1
only="timoni,flux,cosign,actionlint,cue"
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin_dir=$2; shift 2 ;;
    --no-apt) with_apt=0; shift ;;
    --only) only=$2; shift 2 ;;
    *) echo "install.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$bin_dir"
bin_dir=$(cd "$bin_dir" && pwd)
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN=local

wanted() { [[ ",$only," == *",$1,"* ]]; }

# Builds PKG from MODULE@VERSION. `go mod download` verifies the module against the Go checksum
# database; the build runs in a writable copy because some modules need a file added first.
# (`go install MODULE/cmd/x@v` is not used: the module proxy answers 403, not 404, for the
# sub-path lookup it makes first, and the go command stops there.)
build_from_module() {
  local module=$1 version=$2 pkg=$3 out=$4 ldflags=$5 dir scratch
  dir=$(go mod download -json "$module@$version" \
        | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("Dir") or ""); sys.exit(0 if d.get("Dir") else d.get("Error"))')
  scratch=$(mktemp -d)
  cp -r "$dir/." "$scratch/"
  chmod -R u+w "$scratch"
  if [ -n "${PLACEHOLDER:-}" ]; then
    mkdir -p "$scratch/$(dirname "$PLACEHOLDER")"
    printf '# placeholder: flux install/bootstrap manifests are not embedded in this build\n' \
      > "$scratch/$PLACEHOLDER"
  fi
  (cd "$scratch" && go build -trimpath -ldflags "-s -w $ldflags" -o "$out" "$pkg")
  rm -rf "$scratch"
}

install_timoni() {
  if [ -x "$bin_dir/timoni" ] && "$bin_dir/timoni" version 2>/dev/null | grep -q "$TIMONI_VERSION"; then
    echo "timoni $TIMONI_VERSION: present"; return
  fi
  echo "timoni $TIMONI_VERSION: building (first build takes minutes)"
  build_from_module github.com/stefanprodan/timoni "v$TIMONI_VERSION" ./cmd/timoni \
    "$bin_dir/timoni" "-X main.VERSION=$TIMONI_VERSION"
}

install_flux() {
  if [ -x "$bin_dir/flux" ] && "$bin_dir/flux" version --client 2>/dev/null | grep -q "$FLUX_VERSION"; then
    echo "flux $FLUX_VERSION: present"; return
  fi
  echo "flux $FLUX_VERSION: building (first build takes minutes)"
  # cmd/flux embeds generated manifests that the module lacks; only install/bootstrap use them.
  PLACEHOLDER=cmd/flux/manifests/placeholder.yaml build_from_module github.com/fluxcd/flux2/v2 \
    "v$FLUX_VERSION" ./cmd/flux "$bin_dir/flux" "-X main.VERSION=$FLUX_VERSION"
}

install_cosign() {
  if [ -x "$bin_dir/cosign" ] && "$bin_dir/cosign" version 2>/dev/null | grep -q "v$COSIGN_VERSION"; then
    echo "cosign $COSIGN_VERSION: present"; return
  fi
  echo "cosign $COSIGN_VERSION: building (first build takes minutes)"
  build_from_module github.com/sigstore/cosign/v3 "v$COSIGN_VERSION" ./cmd/cosign \
    "$bin_dir/cosign" "-X sigs.k8s.io/release-utils/version.gitVersion=v$COSIGN_VERSION"
}

install_actionlint() {
  if [ -x "$bin_dir/actionlint" ] && "$bin_dir/actionlint" -version 2>/dev/null | grep -q "$ACTIONLINT_VERSION"; then
    echo "actionlint $ACTIONLINT_VERSION: present"; return
  fi
  echo "actionlint $ACTIONLINT_VERSION: building"
  build_from_module github.com/rhysd/actionlint "v$ACTIONLINT_VERSION" ./cmd/actionlint \
    "$bin_dir/actionlint" "-X github.com/rhysd/actionlint.version=$ACTIONLINT_VERSION"
}

install_cue() {
  # Built from a copy of the module, cue reports "(devel)": a stamp file records the version.
  if [ -x "$bin_dir/cue" ] && [ "$(cat "$bin_dir/.cue-version" 2>/dev/null || true)" = "$CUE_VERSION" ]; then
    echo "cue $CUE_VERSION: present"; return
  fi
  echo "cue $CUE_VERSION: building"
  build_from_module cuelang.org/go "v$CUE_VERSION" ./cmd/cue "$bin_dir/cue" ""
  echo "$CUE_VERSION" > "$bin_dir/.cue-version"
}

install_apt() {
  # The test registry (CNCF distribution) and htpasswd for its bcrypt auth variant.
  local missing=()
  command -v docker-registry >/dev/null || missing+=(docker-registry)
  command -v htpasswd >/dev/null || missing+=(apache2-utils)
  command -v openssl >/dev/null || missing+=(openssl)
  if [ ${#missing[@]} -eq 0 ]; then echo "apt packages: present"; return; fi
  echo "apt packages: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The package starts a system registry on :5000 where a service manager exists; tests use their own.
  if command -v systemctl >/dev/null && systemctl is-active --quiet docker-registry 2>/dev/null; then
    systemctl stop docker-registry || true
  fi
}

# timoni, flux and cosign build in parallel: the longest step of a fresh install.
pids=()
if wanted timoni; then install_timoni & pids+=($!); fi
if wanted flux; then install_flux & pids+=($!); fi
if wanted cosign; then install_cosign & pids+=($!); fi
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
[ $status -eq 0 ] || { echo "install.sh: building timoni, flux or cosign failed (see above)" >&2; exit 1; }
if wanted actionlint; then install_actionlint; fi
if wanted cue; then install_cue; fi
if [ $with_apt -eq 1 ]; then install_apt; fi

# Cross-compiled (GOOS/GOARCH for another platform, the Dockerfile's tools stage): the binaries
# cannot run here, so there is nothing to print.
if [ "$(go env GOOS)/$(go env GOARCH)" != "$(go env GOHOSTOS)/$(go env GOHOSTARCH)" ]; then
  echo "built for $(go env GOOS)/$(go env GOARCH) in $bin_dir"
  exit 0
fi
wanted timoni && "$bin_dir/timoni" version 2>&1 | head -n 3
wanted flux && "$bin_dir/flux" version --client
wanted cosign && "$bin_dir/cosign" version 2>&1 | grep -m1 GitVersion
exit 0
