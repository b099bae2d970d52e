"""config.modules: a local `module:` must be a Timoni module (has cue.mod/module.cue). A literal
path that is wrong stops the run at its line; a path a placeholder filled in fails its target alone."""

from __future__ import annotations

import pytest

from gitops_action.config.model import Target
from gitops_action.config.modules import checked_modules, module_problem
from gitops_action.errors import ConfigError

FILES = frozenset(
    {
        "modules/webapp/cue.mod/module.cue",
        "modules/webapp/templates/a.cue",
        "modules/worker/cue.mod/module.cue",
        "docs/readme.md",
        "apps/red/values.cue",
        "apps/blue/values.cue",
    }
)


def test_module_problem() -> None:
    assert module_problem("modules/webapp", FILES) == ""
    assert module_problem("docs", FILES) == (
        "docs is not a Timoni module (no docs/cue.mod/module.cue)"
    )
    assert module_problem("modules/webap", FILES) == (
        "module directory modules/webap does not exist: did you mean `./modules/webapp`?"
    )
    assert (
        module_problem("elsewhere", FILES)
        == "module directory elsewhere does not exist"
    )
    # a prefix of a directory name is not that directory
    assert module_problem("modules/web", FILES).startswith(
        "module directory modules/web "
    )


def target(name: str, module: str, problem: str = "") -> Target:
    return Target(
        name, "instance", name, f"oci://r.io/{name}", ("latest",),
        (f"apps/{name}/values.cue",), module=module, problem=problem,
    )  # fmt: skip


def test_a_literal_wrong_module_stops_the_run() -> None:
    targets = [target("red", "modules/nope"), target("blue", "modules/nope")]
    with pytest.raises(ConfigError) as err:
        checked_modules(
            targets, "./modules/nope", "c.yaml", "instances[0].module", 5, FILES
        )
    assert (err.value.key, err.value.line) == ("instances[0].module", 5)
    assert "modules/nope does not exist" in err.value.message


def test_good_oci_and_absent_modules_pass_unchanged() -> None:
    good = [target("red", "modules/webapp")]
    assert checked_modules(good, "./modules/webapp", "c.yaml", "k", 1, FILES) == good
    oci = [target("red", "oci://r.io/m")]
    assert checked_modules(oci, "oci://r.io/m", "c.yaml", "k", 1, FILES) == oci
    assert checked_modules([], "./modules/nope", "c.yaml", "k", 1, FILES) == []


def test_a_filled_in_wrong_module_fails_its_target_alone() -> None:
    targets = [target("zq", "modules/zq"), target("worker", "modules/worker")]
    out = checked_modules(
        targets, "./modules/{name}", "c.yaml", "instances[2].module", 9, FILES
    )
    zq, worker = out
    assert worker == targets[1] and worker.problem == ""
    assert zq.problem == (
        "module directory modules/zq does not exist "
        "(c.yaml:9 instances[2].module: './modules/{name}' filled in for apps/zq/values.cue)"
    )
    assert zq.line == 9


def test_a_target_with_a_problem_already_keeps_it() -> None:
    broken = target("red", "modules/red", problem="bad file name")
    [out] = checked_modules([broken], "./modules/{name}", "c.yaml", "k", 3, FILES)
    assert out == broken and out.problem == "bad file name"
