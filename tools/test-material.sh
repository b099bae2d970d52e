#!/usr/bin/env bash
# Fetches the real test material pinned in tools/versions.env into .tools/npm/ (git-ignored):
#   .tools/npm/openapi/api.github.com.json   GitHub's REST OpenAPI description (@octokit/openapi)
#   .tools/npm/webhooks-examples/             real webhook payloads (@octokit/webhooks-examples)
#   .tools/crds/                              Flux's OCIRepository, Kustomization, Provider and Alert CRDs, from the
#                                             controllers' Go modules (`go mod download` checks them
#                                             against the Go checksum database)
# `npm pack` verifies each tarball against the registry's integrity hash. Idempotent: a marker
# file holding the version makes a second run a no-op.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=/dev/null
source "$root/tools/versions.env"
out="$root/.tools/npm"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# fetch NAME VERSION DEST [MEMBER]: pack NAME@VERSION and extract MEMBER (default: the whole
# package) into DEST. DEST is replaced only once the extraction succeeded.
fetch() {
  local name=$1 version=$2 dest=$3 member=${4:-package} tmp file
  if [ "$(cat "$dest/.version" 2>/dev/null || true)" = "$version" ]; then
    echo "$name@$version: present"
    return
  fi
  tmp=$(mktemp -d "$scratch/XXXXXX")
  file=$(cd "$tmp" && npm pack --silent "$name@$version")
  mkdir "$tmp/x"
  # The openapi package is ~100 MB unpacked: extract only the member we use.
  tar -xzf "$tmp/$file" -C "$tmp/x" "$member"
  mkdir -p "$tmp/new"
  if [ -d "$tmp/x/$member" ]; then
    cp -r "$tmp/x/$member/." "$tmp/new/"
  else
    cp "$tmp/x/$member" "$tmp/new/"
  fi
  echo "$version" > "$tmp/new/.version"
  rm -rf "$dest"
  mkdir -p "$(dirname "$dest")"
  mv "$tmp/new" "$dest"
  echo "$name@$version: installed in ${dest#"$root"/}"
}

fetch @octokit/openapi "$OCTOKIT_OPENAPI_VERSION" "$out/openapi" package/generated/api.github.com.json
fetch @octokit/webhooks-examples "$OCTOKIT_WEBHOOKS_EXAMPLES_VERSION" "$out/webhooks-examples"

# crd MODULE VERSION FILE: copy config/crd/bases/FILE of the Go module MODULE@vVERSION into
# .tools/crds/ (replaced only once the copy succeeded).
crd() {
  local module=$1 version=$2 file=$3 dir
  if [ "$(cat "$root/.tools/crds/$file.version" 2>/dev/null || true)" = "$version" ]; then
    echo "$module@v$version $file: present"
    return
  fi
  dir=$(cd "$scratch" && go mod download -json "$module@v$version" \
        | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("Dir") or ""); sys.exit(0 if d.get("Dir") else d.get("Error"))')
  mkdir -p "$root/.tools/crds"
  cp "$dir/config/crd/bases/$file" "$scratch/$file"
  chmod u+w "$scratch/$file"
  mv "$scratch/$file" "$root/.tools/crds/$file"
  echo "$version" > "$root/.tools/crds/$file.version"
  echo "$module@v$version $file: installed in .tools/crds"
}

crd github.com/fluxcd/source-controller "$SOURCE_CONTROLLER_VERSION" source.toolkit.fluxcd.io_ocirepositories.yaml
crd github.com/fluxcd/kustomize-controller "$KUSTOMIZE_CONTROLLER_VERSION" kustomize.toolkit.fluxcd.io_kustomizations.yaml
crd github.com/fluxcd/notification-controller "$NOTIFICATION_CONTROLLER_VERSION" notification.toolkit.fluxcd.io_providers.yaml
crd github.com/fluxcd/notification-controller "$NOTIFICATION_CONTROLLER_VERSION" notification.toolkit.fluxcd.io_alerts.yaml

# Kubernetes CUE schemas, generated the way Timoni modules vendor them (`timoni mod vendor k8s`
# ships the output of `cue get go k8s.io/api/...`): a scratch Go module requires k8s.io/api at the
# version timoni pins (from the Go module proxy, checked against the checksum database), and the
# pinned cue (tools/install.sh) generates `cue.mod/gen/k8s.io/...` from it. Into
#   .tools/k8s-cue/gen/k8s.io/   (copied into a module's cue.mod/ by tests and the benchmark)
k8s_schemas() {
  local dest="$root/.tools/k8s-cue" stamp="cue $CUE_VERSION k8s.io/api $K8S_API_VERSION" cue tmp
  if [ "$(cat "$dest/.version" 2>/dev/null || true)" = "$stamp" ]; then
    echo "k8s.io/api@$K8S_API_VERSION CUE schemas: present"
    return
  fi
  cue="$root/.tools/bin/cue"
  [ -x "$cue" ] || { echo "test-material.sh: $cue missing (run tools/install.sh --only cue)" >&2; exit 1; }
  tmp=$(mktemp -d "$scratch/XXXXXX")
  local pkgs=(k8s.io/api/core/v1 k8s.io/api/apps/v1 k8s.io/api/autoscaling/v2 k8s.io/api/networking/v1)
  (
    cd "$tmp"
    export GOFLAGS=-mod=mod GOTOOLCHAIN=local
    go mod init example.com/k8s-cue >/dev/null 2>&1
    {
      echo "package schemas"
      echo "import ("
      for p in "${pkgs[@]}"; do echo "	_ \"$p\""; done
      echo ")"
    } > deps.go
    go get "k8s.io/api@v$K8S_API_VERSION" >/dev/null 2>&1
    go mod tidy >/dev/null 2>&1
    grep -q "k8s.io/api v$K8S_API_VERSION\$" go.mod || { echo "k8s.io/api is not at v$K8S_API_VERSION" >&2; exit 1; }
    "$cue" mod init example.com/k8s-cue >/dev/null
    "$cue" get go "${pkgs[@]}"
  )
  mkdir -p "$tmp/new"
  cp -r "$tmp/cue.mod/gen" "$tmp/new/gen"
  echo "$stamp" > "$tmp/new/.version"
  rm -rf "$dest"
  mv "$tmp/new" "$dest"
  echo "k8s.io/api@$K8S_API_VERSION CUE schemas: generated in ${dest#"$root"/} (cue $CUE_VERSION)"
}
k8s_schemas
