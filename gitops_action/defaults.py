"""The one home of the defaults a user sees. `Settings`, the command line's flags and `Flux` read
them here; tests/unit/test_defaults.py holds action.yml's `default:` values to them."""

from __future__ import annotations

CONFIG = ".timoni-flux.yaml"
# flux push --revision, as Flux's source-controller reads it
REVISION = "{ref_name}@sha1:{sha}"
TIMEOUT = "5m"  # each flux and timoni call (a Go duration)
MODE = "auto"
PROVIDER = "generic"
SIGN = "none"
# the public Sigstore (keyless signing and verifying)
FULCIO_URL = "https://fulcio.sigstore.dev"
REKOR_URL = "https://rekor.sigstore.dev"
