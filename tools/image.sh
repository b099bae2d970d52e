#!/usr/bin/env bash
# Builds the action's image here, without Docker and without a container registry:
#   tools/image.sh build     stand-in base images (cached), then the real Dockerfile, unchanged
#   tools/image.sh bases     the stand-in base images only
#   tools/image.sh report    the image's size and what makes it up
#   tools/image.sh arm64     the Dockerfile's tools stage for linux/arm64 (cross-compiled), checked
#                            to hold arm64 ELF binaries
#   tools/image.sh rootfs    print a fresh container's root directory (`buildah from` + `mount`);
#                            `tools/image.sh rm NAME` removes it (tests/image/ runs the image so)
#
# The real base images (golang:1.26-bookworm, python:3.11-slim-bookworm) cannot be pulled here, so
# stand-ins with the same names are built from Debian itself: `debootstrap --variant=minbase
# bookworm`, made "slim" as Debian's official images are (no docs, man pages or locales), then
# extended to what each FROM line promises (see stand_in_golang and stand_in_python). buildah runs
# as root with chroot isolation and the overlay storage driver (vfs where overlay cannot be
# mounted), its storage under the cache directory.
#
# Cache: $IMAGE_CACHE (default .tools/image): the debootstrap tarball, buildah's storage (bases and
# build layers). Go's build and module caches are the host's (`go env GOCACHE GOMODCACHE`, the ones
# tools/install.sh fills), mounted into the tools stage with `buildah bud -v`.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${IMAGE_CACHE:-$root/.tools/image}
image=${IMAGE:-localhost/timoni-flux-push:dev}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# The names the Dockerfile's FROM lines use, as buildah spells them in its storage.
golang_base=docker.io/library/golang:1.26-bookworm
python_base=docker.io/library/python:3.11-slim-bookworm
minbase=localhost/stand-in/debian:bookworm-minbase

die() { echo "image.sh: $*" >&2; exit 1; }
log() { echo "image.sh: $*" >&2; }

# retry N CMD...: flaky downloads (Debian's mirror, the Go module proxy, PyPI) get N tries.
retry() {
  local n=$1 i; shift
  for ((i = 1; i <= n; i++)); do
    "$@" && return 0
    [ "$i" -lt "$n" ] && { log "attempt $i of $n failed: $*; retrying in $((i * 10))s"; sleep $((i * 10)); }
  done
  return 1
}

need_tools() {
  [ "$(id -u)" = 0 ] || die "needs root (buildah with chroot isolation, debootstrap)"
  local missing=()
  command -v buildah >/dev/null || missing+=(buildah)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v unshare >/dev/null || missing+=(util-linux)
  command -v file >/dev/null || missing+=(file)
  if [ ${#missing[@]} -gt 0 ]; then
    command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"
    log "installing ${missing[*]} (apt)"
    export DEBIAN_FRONTEND=noninteractive
    retry 3 apt-get update -qq || die "apt-get update failed"
    retry 3 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
      || die "apt-get install ${missing[*]} failed"
  fi
}

# The storage driver: overlay where the kernel mounts it (no copy per build step), else vfs (a full
# copy of the root per step: slow, but works anywhere). $IMAGE_STORAGE_DRIVER overrides the probe.
storage_driver() {
  if [ -n "${IMAGE_STORAGE_DRIVER:-}" ]; then echo "$IMAGE_STORAGE_DRIVER"; return; fi
  local t ok=vfs
  mkdir -p "$cache"
  t=$(mktemp -d "$cache/overlay-probe.XXXXXX")
  mkdir "$t/l" "$t/u" "$t/w" "$t/m"
  if mount -t overlay overlay -o "lowerdir=$t/l,upperdir=$t/u,workdir=$t/w" "$t/m" 2>/dev/null; then
    umount "$t/m" && ok=overlay
  fi
  rm -rf "$t"
  echo "$ok"
}
driver=$(storage_driver)

bah() { buildah --root "$cache/storage-$driver" --runroot "$cache/run-$driver" --storage-driver "$driver" "$@"; }

has_image() { bah inspect --type image "$1" >/dev/null 2>&1; }

# The stamp of a stand-in: what it was built from (a file next to the storage). A different stamp,
# or no image of that name in the storage, rebuilds it.
stamp_file() { echo "$cache/stamps-$driver/$(echo "$1" | tr '/:' '__')"; }
stamp_of() { has_image "$1" && cat "$(stamp_file "$1")" 2>/dev/null || true; }
set_stamp() { mkdir -p "$cache/stamps-$driver" && echo "$2" > "$(stamp_file "$1")"; }

# bud_base NAME STAMP DIR: build DIR/Containerfile as NAME unless NAME carries STAMP already.
bud_base() {
  local name=$1 stamp=$2 dir=$3
  if [ "$(stamp_of "$name")" = "$stamp" ]; then log "$name: present"; return; fi
  log "$name: building the stand-in"
  retry 3 bah bud --pull=never --isolation chroot --layers=false -t "$name" -f "$dir/Containerfile" "$dir" >&2 \
    || die "building the stand-in $name failed"
  set_stamp "$name" "$stamp"
}

# 1. bookworm, minbase, as a tarball (about 5 minutes on a fresh cache: Debian's mirror).
rootfs_tar() {
  local tar="$cache/bookworm-minbase.tar" dir
  if [ -s "$tar" ]; then return; fi
  mkdir -p "$cache"
  dir=$(mktemp -d "$cache/debootstrap.XXXXXX")
  log "debootstrap --variant=minbase bookworm from $mirror (takes minutes)"
  _debootstrap() { rm -rf "$dir" && mkdir -p "$dir" && debootstrap --variant=minbase bookworm "$dir" "$mirror" >&2; }
  retry 3 _debootstrap || { rm -rf "$dir"; die "debootstrap failed (Debian's mirror $mirror unreachable?)"; }
  slim "$dir"
  tar --numeric-owner -C "$dir" -cf "$tar.part" . && mv "$tar.part" "$tar"
  rm -rf "$dir"
}

# What Debian's official "slim" images do (debuerreotype's slimify): no docs, man pages or
# locales, now or for packages installed later; apt keeps no package lists or downloaded debs.
slim() {
  local dir=$1
  cat > "$dir/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
  cat > "$dir/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  echo 'Acquire::GzipIndexes "true"; Acquire::CompressionTypes::Order:: "gz";' > "$dir/etc/apt/apt.conf.d/docker-gzip-indexes"
  echo 'APT::AutoRemove::SuggestsImportant "false";' > "$dir/etc/apt/apt.conf.d/docker-autoremove-suggests"
  find "$dir/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
  find "$dir/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
  rm -rf "$dir"/usr/share/{man,groff,info,lintian,linda}/* "$dir"/var/cache/apt/*.bin \
    "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
  find "$dir/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} + 2>/dev/null || true
  # A container runtime provides these (device nodes, the host's name and DNS): none in the image.
  find "$dir/dev" "$dir/proc" "$dir/sys" "$dir/run" "$dir/tmp" -mindepth 1 -delete 2>/dev/null || true
  rm -f "$dir/etc/hostname" "$dir/etc/resolv.conf" "$dir/etc/machine-id"
  find "$dir/var/log" -type f -delete
  # The image's own sources: Debian's mirror and its security updates, over http as on Docker Hub.
  cat > "$dir/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
}

# The machine's CA bundle and Go settings go into the stand-ins: downloads during the build
# (Go module proxy, PyPI) pass this machine's TLS-intercepting network only with its CA.
context_dir() {
  local dir="$cache/context/$1"
  rm -rf "$dir" && mkdir -p "$dir"
  cp /etc/ssl/certs/ca-certificates.crt "$dir/ca-certificates.crt"
  echo "$dir"
}

# The minbase stand-in's image ID: a rebuilt minbase rebuilds the stand-ins on top of it.
base_id() { bah images -q --no-trunc "$minbase" | head -n1; }

stand_in_minbase() {
  rootfs_tar
  local dir stamp
  stamp="minbase $(stat -c %s "$cache/bookworm-minbase.tar")"
  if [ "$(stamp_of "$minbase")" = "$stamp" ]; then log "$minbase: present"; return; fi
  dir="$cache/context/minbase"
  mkdir -p "$dir"
  ln -f "$cache/bookworm-minbase.tar" "$dir/rootfs.tar" 2>/dev/null || cp "$cache/bookworm-minbase.tar" "$dir/rootfs.tar"
  printf 'FROM scratch\nADD rootfs.tar /\nENV LANG=C.UTF-8\nCMD ["bash"]\n' > "$dir/Containerfile"
  bud_base "$minbase" "$stamp" "$dir"
  rm -f "$dir/rootfs.tar"
}

# golang:1.26-bookworm promises Go 1.26 at /usr/local/go on PATH, GOPATH=/go, GOTOOLCHAIN=local,
# git and ca-certificates. Go is this machine's own toolchain (the same go the host builds with).
stand_in_golang() {
  local goroot goversion dir stamp
  goroot=$(go env GOROOT 2>/dev/null) || die "no Go toolchain on this machine (need Go 1.26 at /usr/local/go)"
  goversion=$(go env GOVERSION)
  [[ "$goversion" == go1.26* ]] || die "the golang:1.26-bookworm stand-in needs Go 1.26, found $goversion"
  dir=$(context_dir golang)
  stamp="golang $(base_id) $goversion $(sha256sum < "$dir/ca-certificates.crt" | cut -c1-16) $(go env GOPROXY GOSUMDB | tr '\n' ' ')"
  cat > "$dir/Containerfile" <<EOF
FROM $minbase
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates git \\
    && rm -rf /var/lib/apt/lists/*
RUN cp -a /host-go /usr/local/go
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV GOLANG_VERSION=${goversion#go} GOTOOLCHAIN=local GOPATH=/go \\
    PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    GOPROXY=$(go env GOPROXY) GOSUMDB=$(go env GOSUMDB)
WORKDIR /go
EOF
  if [ "$(stamp_of "$golang_base")" = "$stamp" ]; then log "$golang_base: present"; return; fi
  log "$golang_base: building the stand-in (Go $goversion from $goroot)"
  # buildah 1.28 has no named build contexts: Go comes in through a volume.
  retry 3 bah bud --pull=never --isolation chroot --layers=false -v "$goroot:/host-go:ro" \
    -t "$golang_base" -f "$dir/Containerfile" "$dir" >&2 || die "building the stand-in $golang_base failed"
  set_stamp "$golang_base" "$stamp"
}

# python:3.11-slim-bookworm promises python 3.11 as `python` (with venv and pip) on PATH.
# Bookworm's own python3.11 stands in for the image's source-built one.
stand_in_python() {
  local dir stamp
  dir=$(context_dir python)
  stamp="python $(base_id) $(sha256sum < "$dir/ca-certificates.crt" | cut -c1-16)"
  printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' > "$dir/pip.conf"
  cat > "$dir/Containerfile" <<EOF
FROM $minbase
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates python3 python3-venv \\
    && rm -rf /var/lib/apt/lists/* \\
    && ln -s /usr/bin/python3 /usr/local/bin/python && ln -s /usr/bin/python3 /usr/local/bin/python3
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY pip.conf /etc/pip.conf
ENV LANG=C.UTF-8 PYTHON_VERSION=3.11
CMD ["python3"]
EOF
  bud_base "$python_base" "$stamp" "$dir"
}

bases() {
  need_tools
  mkdir -p "$cache"
  stand_in_minbase
  stand_in_golang
  stand_in_python
}

build() {
  bases
  local gocache gomodcache start
  gocache=$(go env GOCACHE) gomodcache=$(go env GOMODCACHE)
  mkdir -p "$gocache" "$gomodcache"
  start=$(date +%s)
  # Two passes over the same Dockerfile. --layers: a build reuses every step whose inputs did not
  # change. 1. The tools stage with Go's caches mounted (`-v` applies to every RUN of every stage,
  # and leaves its mount points behind as empty directories). 2. The whole file without them: the
  # tools stage comes from pass 1's layers, and the image holds no trace of the caches.
  log "building the Dockerfile's tools stage (Go's caches mounted)"
  retry 2 bah bud --pull=never --isolation chroot --layers --target tools \
    -v "$gocache:/root/.cache/go-build" -v "$gomodcache:/go/pkg/mod" \
    -t localhost/timoni-flux-push-tools:dev -f "$root/Dockerfile" "$root" >&2 \
    || die "building the tools stage failed (see above)"
  log "tools stage built in $(($(date +%s) - start))s; building $image from the Dockerfile (unchanged)"
  retry 2 bah bud --pull=never --isolation chroot --layers \
    -t "$image" -f "$root/Dockerfile" "$root" >&2 || die "building the image failed (see above)"
  log "built $image in $(($(date +%s) - start))s"
  # Layers of earlier builds that no tag uses any more (vfs keeps a full copy of each).
  bah rmi --prune >/dev/null 2>&1 || true
  report
}

# report: the image's size and what makes it up (sizes of the paths that matter, from a mounted
# container of the image).
report() {
  local ctr dir
  has_image "$image" || die "$image is not built (make image)"
  ctr=$(bah from --pull-never --name "report-$$" "$image")
  dir=$(bah mount "$ctr")
  {
    echo "== $image"
    bah images --format '{{.Name}}:{{.Tag}} {{.ID}} {{.Size}}' "$image"
    printf '%-44s %s\n' "total (du, the container's root)" "$(du -sh --apparent-size "$dir" | cut -f1)"
    for p in usr/local/bin/timoni usr/local/bin/flux usr/local/bin/cosign opt/venv \
             opt/venv/lib/python3.11/site-packages/cryptography opt/venv/lib/python3.11/site-packages/nacl \
             opt/venv/lib/python3.11/site-packages/pip opt/venv/lib/python3.11/site-packages/setuptools \
             app usr/lib/python3.11 usr/local/lib/python3.11 usr/lib/git-core usr/share/perl usr/lib/x86_64-linux-gnu/perl \
             usr/lib/x86_64-linux-gnu usr/share var/lib/apt var/lib/dpkg var/cache root tmp go; do
      [ -e "$dir/$p" ] && printf '%-44s %s\n' "/$p" "$(du -sh --apparent-size "$dir/$p" | cut -f1)"
    done
    echo "-- largest Debian packages installed (KiB)"
    chroot "$dir" dpkg-query -W -f '${Installed-Size}\t${Package}\n' 2>/dev/null | sort -rn | head -12
  } || true
  bah umount "$ctr" >/dev/null
  bah rm "$ctr" >/dev/null
}

# arm64: the tools stage built for linux/arm64 (Go cross-compiles; no emulation), its binaries
# copied out and checked with file(1).
arm64() {
  bases
  local gocache gomodcache ctr dir out=0 f
  gocache=$(go env GOCACHE) gomodcache=$(go env GOMODCACHE)
  # `--platform linux/arm64` sets TARGETOS/TARGETARCH, and would also make buildah 1.28 look for an
  # arm64 golang image despite `FROM --platform=$BUILDPLATFORM` ("image not known": only the amd64
  # stand-in exists). The tools stage reads the target platform from those two ARGs alone, so they
  # are passed as the build arguments that buildx sets for a linux/arm64 build.
  log "building the tools stage for linux/arm64"
  retry 2 bah bud --pull=never --isolation chroot --layers --target tools \
    --build-arg TARGETOS=linux --build-arg TARGETARCH=arm64 \
    -v "$gocache:/root/.cache/go-build" -v "$gomodcache:/go/pkg/mod" \
    -t localhost/timoni-flux-push-tools:arm64 -f "$root/Dockerfile" "$root" >&2 \
    || die "building the arm64 tools stage failed"
  ctr=$(bah from --pull-never --name "arm64-$$" localhost/timoni-flux-push-tools:arm64)
  dir=$(bah mount "$ctr")
  for f in timoni flux cosign; do
    desc=$(file -b "$dir/out/$f")
    echo "/out/$f: $desc"
    [[ "$desc" == *"ELF 64-bit LSB executable, ARM aarch64"* ]] || { echo "  not an arm64 ELF executable" >&2; out=1; }
  done
  bah umount "$ctr" >/dev/null
  bah rm "$ctr" >/dev/null
  return $out
}

case "${1:-build}" in
  build) build ;;
  bases) bases ;;
  report) report ;;
  arm64) arm64 ;;
  rootfs)
    ctr=$(bah from --pull-never "$image" 2>/dev/null) || die "$image is not built (make image)"
    printf '%s %s\n' "$ctr" "$(bah mount "$ctr")" ;;
  rm) bah umount "$2" >/dev/null 2>&1 || true; bah rm "$2" >/dev/null ;;
  buildah) shift; bah "$@" ;;
  *) die "unknown command $1 (build, bases, report, arm64, rootfs, rm)" ;;
esac
