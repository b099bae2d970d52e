"""config.model: `flux:` blocks flattened to sorted dotted pairs; a Target's identity leaves out
where it comes from and its cluster settings."""

from __future__ import annotations

from dataclasses import replace

from gitops_action.config.model import Config, Target, flatten


def test_flatten_is_dotted_and_sorted() -> None:
    block = {
        "source": {"interval": "1m", "insecure": True},
        "name": "web",
        "kustomization": {"path": "./", "deep": {"er": "x"}},
    }
    assert flatten(block) == (
        ("kustomization.deep.er", "x"),
        ("kustomization.path", "./"),
        ("name", "web"),
        ("source.insecure", True),
        ("source.interval", "1m"),
    )
    assert flatten(None) == () and flatten({}) == ()
    # the same settings in another order give the same tuple (hashable, comparable)
    assert flatten({"b": "1", "a": "2"}) == flatten({"a": "2", "b": "1"})


WEB = Target("web", "instance", "web", "oci://r.io/web", ("latest",), ("v.cue",))


def test_identity_leaves_out_origin_and_flux_settings() -> None:
    a = replace(WEB, key="instances[0]", line=3, flux=(("name", "a"),))
    b = replace(WEB, key="instances[5]", line=40, problem="x", flux=())
    assert a == b and hash(a) == hash(b)
    assert {a: 1}[b] == 1
    # what is rendered and pushed is part of it
    assert replace(WEB, tags=("staging",)) != WEB
    assert replace(WEB, digest="sha256:" + "0" * 64) != WEB
    assert replace(WEB, watch=("docs",)) != WEB


def test_local_module() -> None:
    assert replace(WEB, module="modules/web").local_module == "modules/web"
    assert replace(WEB, module="oci://ghcr.io/org/mod").local_module is None
    assert WEB.local_module is None


def test_by_id_keeps_configuration_order() -> None:
    t1, t2 = WEB, Target("api", "bundle", "api", "oci://r.io/api", ("x",), ())
    cfg = Config(".timoni-flux.yaml", "oci://r.io", "", (t1, t2))
    assert list(cfg.by_id().items()) == [("web", t1), ("api", t2)]
