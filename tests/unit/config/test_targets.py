"""config.targets: `load` expands entries into targets (match patterns, placeholders, paths kept
inside the repository, names and tags checked, no two targets colliding). Pure: the file's text
and the repository's file list in, a Config or a ConfigError naming the key and line out."""

from __future__ import annotations

import json

import pytest

from gitops_action.config import targets as config
from gitops_action.config.targets import ConfigError

CONFIG = ".timoni-flux.yaml"

GOOD = """\
# yaml-language-server: $schema=gitops_action/schema/config.schema.json
version: 1
registry: oci://registry.example.com/gitops
instances:
  - name: webapp-staging
    namespace: apps
    module: ./modules/webapp
    values: [apps/webapp/common.cue, apps/webapp/staging.yaml]
    artifact: "{registry}/webapp"
    tags: [staging]
  - name: webapp-production
    namespace: apps
    module: ./modules/webapp
    values: [apps/webapp/common.cue, apps/webapp/production.yaml]
    artifact: "{registry}/webapp"
    tags: [production, stable]
  - match: "clusters/{env}/{name}.cue"
    module: ./modules/credentials
    namespace: "{env}"
    artifact: "{registry}/{env}/{name}"
    tags: ["{env}"]
bundles:
  - name: platform-staging
    files: [bundles/platform.cue, bundles/staging.cue]
    artifact: "{registry}/platform"
    tags: [staging]
"""


FILES = [
    "clusters/staging/billing.cue",
    "clusters/production/billing.cue",
    "clusters/staging/README.md",
    "teams/red/apps/shop/values.cue",
    "teams/red/apps/shop/extra/values.cue",
    "teams/blue/apps/cart/values.cue",
    "envs/qa/qa/app.cue",
    "envs/qa/prod/app.cue",
]


def load(
    text: str, files: list[str] | None = None, registry_override: str = ""
) -> config.Config:
    return config.load(
        text,
        file=CONFIG,
        repo_files=FILES if files is None else files,
        registry_override=registry_override,
    )


@pytest.mark.unit
def test_match_patterns_expand_to_one_target_per_file() -> None:
    cfg = load(GOOD)
    assert [t.id for t in cfg.targets] == [
        "webapp-staging",
        "webapp-production",
        "staging/billing",
        "production/billing",
        "platform-staging",
    ]
    billing = cfg.by_id()["staging/billing"]
    assert (billing.name, billing.namespace, billing.module) == (
        "billing",
        "staging",
        "modules/credentials",
    )
    assert (billing.artifact, billing.tags, billing.files) == (
        "oci://registry.example.com/gitops/staging/billing",
        ("staging",),
        ("clusters/staging/billing.cue",),
    )
    assert billing.key == "instances[2] (clusters/staging/billing.cue)"
    assert (
        billing.line
        == GOOD.splitlines().index('  - match: "clusters/{env}/{name}.cue"') + 1
    )
    staging = cfg.by_id()["webapp-staging"]
    assert staging.tags == ("staging",) and staging.local_module == "modules/webapp"
    assert cfg.by_id()["platform-staging"].kind == "bundle"


@pytest.mark.unit
def test_globs_placeholders_ids_and_values() -> None:
    text = """\
version: 1
registry: oci://r.example.com/x/
instances:
  - match: "teams/{team}/**/{name}/values.cue"
    id: "{team}-{name}"
    module: file://./modules/{team}
    namespace: "{team}"
    values: ["teams/{team}/common.cue"]
    watch: ["teams/{team}/shared"]
  - match: "envs/{env}/{env}/{name}.cue"
    module: oci://ghcr.io/org/modules/app
    version: 1.2.3
    namespace: default
    artifact: "{registry}/same-{env}"
"""
    cfg = load(text, [*FILES, "envs/prod/prod/app.cue"])
    by_id = cfg.by_id()
    assert list(by_id) == ["red-shop", "red-extra", "blue-cart", "qa/app", "prod/app"]
    shop = by_id["red-shop"]
    assert shop.files == ("teams/red/common.cue", "teams/red/apps/shop/values.cue")
    assert (shop.module, shop.watch, shop.namespace) == (
        "modules/red",
        ("teams/red/shared",),
        "red",
    )
    # the registry's trailing / is dropped
    assert shop.artifact == "oci://r.example.com/x/shop"
    # ** spans directories
    assert by_id["red-extra"].files[-1] == "teams/red/apps/shop/extra/values.cue"
    # a repeated placeholder captures the same segment twice (envs/qa/prod: no match)
    qa = by_id["qa/app"]
    assert (qa.name, qa.local_module, qa.module, qa.version, qa.artifact) == (
        "app",
        None,
        "oci://ghcr.io/org/modules/app",
        "1.2.3",
        "oci://r.example.com/x/same-qa",
    )
    assert cfg.warnings == ()


@pytest.mark.unit
def test_registry_override_and_unmatched_pattern_warning() -> None:
    text = GOOD.replace(
        'match: "clusters/{env}/{name}.cue"', 'match: "clusters/{env}/{name}.yaml"'
    )
    cfg = load(text, registry_override="oci://127.0.0.1:5000/test")
    assert cfg.by_id()["webapp-staging"].artifact == "oci://127.0.0.1:5000/test/webapp"
    assert cfg.warnings == (
        f"{CONFIG}:17: instances[2].match: pattern 'clusters/{{env}}/{{name}}.yaml' matches no file",
    )


@pytest.mark.unit
def test_registry_placeholder_without_a_registry() -> None:
    text = GOOD.replace("registry: oci://registry.example.com/gitops\n", "")
    with pytest.raises(ConfigError) as err:
        load(text)
    assert (err.value.key, err.value.line) == (
        "instances[0].artifact",
        text.splitlines().index('    artifact: "{registry}/webapp"') + 1,
    )
    assert "no registry" in err.value.message


@pytest.mark.unit
def test_paths_are_normalised_and_stay_inside() -> None:
    text = GOOD.replace(
        "[apps/webapp/common.cue, apps/webapp/staging.yaml]",
        "[./apps/x/../webapp/common.cue]",
    )
    assert load(text).by_id()["webapp-staging"].files == ("apps/webapp/common.cue",)
    for bad, why in (
        ("/etc/x.cue", "does not match"),
        ("..", "leaves the repository"),
        ("a\\b.cue", "does not match"),
    ):
        with pytest.raises(ConfigError, match=why) as err:
            load(
                GOOD.replace(
                    "[apps/webapp/common.cue, apps/webapp/staging.yaml]",
                    json.dumps([bad]),
                )
            )
        assert err.value.key == "instances[0].values[0]"


@pytest.mark.unit
@pytest.mark.parametrize(
    ("glob", "path", "hit"),
    [
        ("docs/**", "docs/a/b/c.md", True),
        ("docs/**", "docs/new\nline.md", True),
        ("docs", "docs/a\nb/c.md", True),
        ("docs", "docsx/a.md", False),
        ("**/*.rego", "p/q/r.rego", True),
        ("**/*.rego", "r.rego", True),
        ("*.md", "a/b.md", False),
        ("a?c/x", "abc/x", True),
        ("a?c/x", "a/c/x", False),
    ],
)
def test_watch_globs(glob: str, path: str, hit: bool) -> None:
    assert bool(config.glob_regex(glob).match(path)) is hit


@pytest.mark.unit
def test_match_pattern_regex() -> None:
    m = config.compile_match("deep/{name}/**", CONFIG, "k", 1)
    assert m.regex.match("deep/x/a\nb/c.cue") and m.literal_prefix == "deep/"
    m = config.compile_match("t/{name}/*.cue", CONFIG, "k", 1)
    assert m.regex.match("t/x/line\nbreak.cue") and not m.regex.match("t/x/y/z.cue")
    with pytest.raises(ConfigError, match="must capture"):
        config.compile_match("t/{env}/*.cue", CONFIG, "instances[0].match", 3)


@pytest.mark.unit
def test_entry_identity_ignores_position() -> None:
    """Moving an entry (its key and line change) is not a change of the target."""
    a = load(GOOD).by_id()
    moved = GOOD.replace(
        "instances:\n", "instances:\n  # a comment line that moves every entry down\n"
    )
    b = load(moved).by_id()
    assert a == b
    assert a["webapp-staging"].line != b["webapp-staging"].line


# --- further cases of load (not moved from tests/e2e) ---

ONE = """\
version: 1
registry: oci://r.example.com/gitops
instances:
  - name: web
    namespace: apps
    module: ./modules/web
    values: [VALUES]
"""


def load_one(values: str = "apps/web.cue", extra: str = "") -> config.Config:
    return load(ONE.replace("VALUES", values) + extra, [])


def test_defaults_of_an_entry() -> None:
    web = load_one().by_id()["web"]
    # no `artifact`: {registry}/{name}; no `tags`: latest
    assert (web.artifact, web.tags) == ("oci://r.example.com/gitops/web", ("latest",))
    assert (web.key, web.line) == ("instances[0]", 4)


def test_unknown_placeholder_names_the_known_ones() -> None:
    with pytest.raises(ConfigError) as err:
        load_one("'{team}/web.cue'")
    assert err.value.key == "instances[0].values[0]" and err.value.line == 7
    assert (
        err.value.message
        == "unknown placeholder {team} (known here: {name}, {registry})"
    )


def test_a_values_path_with_a_comma_is_refused() -> None:
    # timoni reads `-f a,b` as two files
    with pytest.raises(ConfigError, match="timoni splits -f on commas"):
        load_one("'apps/a,b.cue'")


@pytest.mark.parametrize(
    ("extra", "key", "why"),
    [
        ("    tags: [-bad]\n", "instances[0].tags[0]", "is not a valid OCI tag"),
        (
            "    tags: ['{name}.{name}', .x]\n",
            "instances[0].tags[1]",
            "not a valid OCI tag",
        ),
        (
            "    artifact: oci://r.example.com/Web\n",
            "instances[0].artifact",
            "lower case",
        ),
        (
            "    artifact: https://r.example.com/web\n",
            "instances[0].artifact",
            "oci://",
        ),
        (
            "    artifact: oci://r.example.com/a--/b\n",
            "instances[0].artifact",
            "not a valid OCI",
        ),
        (
            "    digest: sha256:" + "0" * 64 + "\n",
            "instances[0].digest",
            "must be oci://",
        ),
        ("    module: ../outside\n", "instances[0].module", "leaves the repository"),
    ],
)
def test_entry_errors(extra: str, key: str, why: str) -> None:
    text = ONE.replace("VALUES", "apps/web.cue").replace(
        "    module: ./modules/web\n",
        "" if "module:" in extra else "    module: ./modules/web\n",
    )
    with pytest.raises(ConfigError, match=why) as err:
        load(text + extra, [])
    assert err.value.key == key


def test_an_empty_file() -> None:
    with pytest.raises(ConfigError, match="the file is empty") as err:
        load("# nothing\n", [])
    assert err.value.line == 1


SECOND = """\
  - name: NAME
    namespace: apps
    module: ./modules/web
    artifact: ARTIFACT
"""


def test_two_entries_with_one_id_collide() -> None:
    extra = SECOND.replace("NAME", "web").replace(
        "ARTIFACT", "oci://r.example.com/other"
    )
    with pytest.raises(
        ConfigError, match="target id 'web' is also used by instances"
    ) as err:
        load_one(extra=extra)
    assert (err.value.key, err.value.line) == ("instances[1]", 8)


def test_two_targets_pushing_one_artifact_and_tag_collide() -> None:
    extra = SECOND.replace("NAME", "api").replace(
        "ARTIFACT", "oci://r.example.com/gitops/web"
    )
    with pytest.raises(
        ConfigError, match="is also the artifact and tag of instances"
    ) as err:
        load_one(extra=extra)
    assert err.value.key == "instances[1]"
    # another first tag: no collision
    assert len(load_one(extra=extra + "    tags: [other]\n").targets) == 2


def test_a_matched_file_that_cannot_be_an_instance_fails_alone() -> None:
    """`Billing Notes.cue` gives no valid artifact name: that target carries the problem, the rest
    of the configuration loads."""
    files = ["clusters/staging/billing.cue", "clusters/staging/Billing Notes.cue"]
    cfg = load(GOOD, files)
    bad = cfg.by_id()["clusters/staging/Billing Notes.cue"]
    assert "cannot be an instance of this `match`" in bad.problem
    assert "lower case" in bad.problem
    assert bad.files == ("clusters/staging/Billing Notes.cue",)
    assert cfg.by_id()["staging/billing"].problem == ""


def test_an_entry_broken_for_every_file_stops_the_run() -> None:
    # the artifact is upper case whatever the file: the entry itself is wrong
    text = GOOD.replace(
        'artifact: "{registry}/{env}/{name}"', 'artifact: "{registry}/X/{name}"'
    )
    with pytest.raises(ConfigError, match="lower case"):
        load(text)
