# timoni-flux-push: the GitHub Action's image.
#
# Base images are pinned by tag here. action.yml on main builds this file (development); a release
# (.github/workflows/release.yml) publishes it as ghcr.io/<owner>/timoni-flux-push for linux/amd64
# and linux/arm64, and its tag's action.yml names that image, so jobs pull it instead of building.
# To pin the bases too, append `@sha256:<digest>` to the FROM lines below when cutting a release.

# ---------------------------------------------------------------------------------------------
# 1. timoni, flux and cosign, built from the Go module proxy by the same script developers run. This stage
#    runs on the build machine's platform and cross-compiles for the image's (GOARCH): a
#    linux/arm64 image built on amd64 compiles natively, never under emulation.
FROM --platform=$BUILDPLATFORM golang:1.26-bookworm AS tools
ARG TARGETOS=linux
ARG TARGETARCH=amd64

# The versions come from tools/versions.env (install.sh reads it). These ARGs repeat them so the
# image's labels and tests/e2e/test_packaging.py can see them; the RUN below fails the build if the two
# ever disagree (a --build-arg cannot change what install.sh builds).
ARG TIMONI_VERSION=0.31.0
ARG FLUX_VERSION=2.9.4
ARG COSIGN_VERSION=3.1.3

# install.sh parses `go mod download -json` with python3 (bookworm's is 3.11).
RUN apt-get update \
    && apt-get install -y --no-install-recommends 'python3=3.11.*' \
    && rm -rf /var/lib/apt/lists/*

COPY tools/ /src/tools/
RUN if ! grep -qx "TIMONI_VERSION=${TIMONI_VERSION}" /src/tools/versions.env \
       || ! grep -qx "FLUX_VERSION=${FLUX_VERSION}" /src/tools/versions.env \
       || ! grep -qx "COSIGN_VERSION=${COSIGN_VERSION}" /src/tools/versions.env; then \
         echo "Dockerfile ARG versions differ from tools/versions.env" >&2; exit 1; \
    fi
RUN GOOS="${TARGETOS}" GOARCH="${TARGETARCH}" /src/tools/install.sh --no-apt --only timoni,flux,cosign --bin /out

# ---------------------------------------------------------------------------------------------
# 2. Python dependencies: the pip-compile lock, hash-checked, wheels only, no resolver.
FROM python:3.11-slim-bookworm AS deps
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY requirements.lock /tmp/requirements.lock
# pip and setuptools leave the venv once it is filled (20 MB the action never runs).
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --require-hashes --no-deps --only-binary=:all: \
       -r /tmp/requirements.lock \
    && /opt/venv/bin/pip uninstall --yes --quiet pip setuptools

# ---------------------------------------------------------------------------------------------
# 3. The action: Python 3.11, git, the venv, timoni, flux and cosign. No Go toolchain.
FROM python:3.11-slim-bookworm

ARG TIMONI_VERSION=0.31.0
ARG FLUX_VERSION=2.9.4
ARG COSIGN_VERSION=3.1.3
LABEL org.opencontainers.image.title="timoni-flux-push" \
      org.opencontainers.image.description="Render Timoni instances and bundles and push them as Flux OCI artifacts" \
      org.opencontainers.image.source="https://github.com/org/timoni-flux-push" \
      io.github.timoni-flux-push.timoni-version="${TIMONI_VERSION}" \
      io.github.timoni-flux-push.flux-version="${FLUX_VERSION}" \
      io.github.timoni-flux-push.cosign-version="${COSIGN_VERSION}"

# git 2.39 is bookworm's; the glob takes Debian's security updates but fails loudly on a base
# image that moved to another release. git's package depends on perl (47 MB) for scripts the
# action never runs (send-email, svn, cvs, archimport): perl is removed, perl-base (Essential)
# stays. The git commands the action runs are built into git (tests/image/ runs them in the image).
RUN apt-get update \
    && apt-get install -y --no-install-recommends 'git=1:2.39.*' \
    && dpkg --purge --force-depends perl perl-modules-5.36 libperl5.36 liberror-perl \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/*

COPY --from=tools /out/timoni /out/flux /out/cosign /usr/local/bin/
COPY --from=deps /opt/venv /opt/venv
COPY gitops_action/ /app/gitops_action/
COPY entrypoint.py /app/entrypoint.py
# Byte-compiled once here: PYTHONDONTWRITEBYTECODE would otherwise recompile the package on every run.
RUN /opt/venv/bin/python -m compileall -q /app/gitops_action

# TZ=UTC: flux before v2.9.5 lets a non-UTC TZ change the --reproducible manifest digest.
# The entrypoint trusts /github/workspace for its own git processes through GIT_CONFIG_* variables
# at run time; the image trusts no directory and writes no git config.
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TZ=UTC

# No USER instruction: the image runs as root on purpose. GitHub runs Docker actions as root and
# mounts the workspace and GITHUB_OUTPUT/GITHUB_STEP_SUMMARY files owned by the runner's uid; a
# non-root user could not write them (GitHub documents that Docker actions must run as root).
ENTRYPOINT ["/opt/venv/bin/python", "/app/entrypoint.py"]
