"""The lifecycle through the Registry: every state × every move, aliases, deploy and rollback."""

from __future__ import annotations

from pathlib import Path

import pytest

from warden.errors import ConfigError, LifecycleError, RegistryError
from warden.registry import Registry

ALLOWED = {
    ("registered", "approve"): "approved",
    ("registered", "quarantine"): "quarantined",
    ("registered", "retire"): "retired",
    ("approved", "deploy"): "deployed",
    ("approved", "quarantine"): "quarantined",
    ("approved", "retire"): "retired",
    ("deployed", "quarantine"): "quarantined",
    ("deployed", "retire"): "retired",
    ("quarantined", "release"): "registered",
    ("quarantined", "retire"): "retired",
}
STATES = ("registered", "approved", "deployed", "quarantined", "retired")
MOVES = ("approve", "deploy", "quarantine", "release", "retire")


def approve(reg: Registry, model: str, ref: int | str) -> None:
    reg.approve(model, ref, override_reason="lifecycle test: gates are tested elsewhere")


def into(reg: Registry, model: str, path: Path, state: str) -> int:
    """A new version of ``model`` in ``state``."""
    n = reg.register_version(model, path, create_model=True).number
    if state in ("approved", "deployed"):
        approve(reg, model, n)
    if state == "deployed":
        reg.deploy(model, n)
    if state == "quarantined":
        reg.quarantine(model, n, reason="setup")
    if state == "retired":
        reg.retire(model, n, reason="setup")
    assert reg.get_version(model, n).state == state
    return n


def move(reg: Registry, model: str, n: int, name: str) -> None:
    if name == "approve":
        approve(reg, model, n)
    elif name == "deploy":
        reg.deploy(model, n)
    elif name == "quarantine":
        reg.quarantine(model, n, reason="matrix", force=True)
    elif name == "release":
        reg.release(model, n, reason="matrix")
    else:
        reg.retire(model, n, reason="matrix", force=True)


def test_every_state_times_every_move(registry: Registry, model_file: Path) -> None:
    for i, state in enumerate(STATES):
        for j, name in enumerate(MOVES):
            model = f"m{i}{j}"  # one model per case: no champion interplay between cases
            n = into(registry, model, model_file, state)
            before = len(registry.history(model, n))
            expected = ALLOWED.get((state, name))
            if expected is None:
                with pytest.raises(LifecycleError, match=f"is {state}: cannot {name}"):
                    move(registry, model, n, name)
                assert registry.get_version(model, n).state == state
                assert len(registry.history(model, n)) == before, "a refusal records nothing"
            else:
                move(registry, model, n, name)
                assert registry.get_version(model, n).state == expected, (state, name)
                last = registry.history(model, n)[-1]
                assert (last.from_state, last.to_state, last.actor) == (state, expected, "alice")


@pytest.mark.parametrize("name", ["quarantine", "release", "retire"])
def test_reason_required(registry: Registry, model_file: Path, name: str) -> None:
    n = into(registry, "m", model_file, "quarantined" if name == "release" else "registered")
    with pytest.raises(LifecycleError, match=f"{name} needs a reason"):
        getattr(registry, name)("m", n, reason=" ")


def test_deploy_sets_champion_and_previous(registry: Registry, model_file: Path) -> None:
    v1, v2, v3 = (into(registry, "m", model_file, "approved") for _ in range(3))
    t = registry.deploy("m", v1, reason="first")
    assert (t.to_state, t.reason) == ("deployed", "first")
    assert registry.get_model("m").aliases == {"champion": 1}
    registry.deploy("m", v2)
    assert registry.get_model("m").aliases == {"champion": 2, "previous": 1}
    assert registry.get_version("m", 1).state == "approved"
    assert registry.history("m", 1)[-1].reason == "superseded by v2"
    registry.deploy("m", v3)
    assert registry.get_model("m").aliases == {"champion": 3, "previous": 2}
    assert [v.state for v in registry.list_versions("m")] == ["approved", "approved", "deployed"]
    assert registry.get_version("m", "champion").number == 3
    with pytest.raises(LifecycleError, match="m v3 is deployed: cannot deploy"):
        registry.deploy("m", 3)


def test_rollback_walks_back_through_champions(registry: Registry, model_file: Path) -> None:
    for _ in range(3):
        registry.deploy("m", into(registry, "m", model_file, "approved"))
    with pytest.raises(LifecycleError, match="a rollback needs a reason"):
        registry.rollback("m", reason="")
    t = registry.rollback("m", reason="v3 misbehaves")
    assert (t.version, t.to_state, t.reason) == (2, "deployed", "v3 misbehaves")
    assert registry.get_model("m").aliases == {"champion": 2, "previous": 1}
    assert registry.get_version("m", 3).state == "approved"
    t = registry.rollback("m", reason="v2 too", quarantine=True)
    assert t.version == 1
    assert registry.get_version("m", 2).state == "quarantined"
    assert registry.get_model("m").aliases == {"champion": 1}, "v1 was the first champion"
    with pytest.raises(LifecycleError, match="m has no previous version to roll back to"):
        registry.rollback("m", reason="again")


def test_rollback_skips_versions_no_longer_approved(registry: Registry, model_file: Path) -> None:
    for _ in range(4):
        registry.deploy("m", into(registry, "m", model_file, "approved"))
    registry.retire("m", 2, reason="licence problem")
    assert registry.get_model("m").aliases == {"champion": 4, "previous": 3}
    registry.rollback("m", reason="v4 regressed")
    assert registry.get_model("m").aliases == {"champion": 3, "previous": 1}, "2 is retired"
    registry.deploy("m", 4)  # forward again: the stack is 1, 3, 4
    assert registry.get_model("m").aliases == {"champion": 4, "previous": 3}
    registry.rollback("m", reason="no, really")
    assert registry.get_model("m").aliases == {"champion": 3, "previous": 1}


def test_rollback_refuses_an_unusable_previous(registry: Registry, model_file: Path) -> None:
    with pytest.raises(RegistryError, match="no model named 'm'"):
        registry.rollback("m", reason="x")
    into(registry, "m", model_file, "registered")
    with pytest.raises(LifecycleError, match="m has no champion to roll back from"):
        registry.rollback("m", reason="x")
    registry.deploy("m", into(registry, "m", model_file, "approved"))
    registry.deploy("m", into(registry, "m", model_file, "approved"))
    assert registry.get_model("m").aliases == {"champion": 3, "previous": 2}
    registry.quarantine("m", 2, reason="bad data")
    assert "previous" not in registry.get_model("m").aliases
    registry.set_alias("m", "candidate", 2)  # a user alias may still name it


def test_quarantining_the_champion_rolls_back(registry: Registry, model_file: Path) -> None:
    registry.deploy("m", into(registry, "m", model_file, "approved"))
    registry.deploy("m", into(registry, "m", model_file, "approved"))
    t = registry.quarantine("m", "champion", reason="incident 7")
    assert (t.version, t.from_state, t.to_state, t.reason) == (
        2,
        "deployed",
        "quarantined",
        "incident 7",
    )
    assert registry.get_model("m").aliases == {"champion": 1}
    assert registry.get_version("m", 1).state == "deployed"
    with pytest.raises(LifecycleError, match=r"m v1 is the champion .* no approved previous"):
        registry.quarantine("m", 1, reason="incident 8")
    with pytest.raises(LifecycleError, match="m v1 is the champion"):
        registry.retire("m", 1, reason="old")
    t = registry.retire("m", 1, reason="old", force=True)
    assert t.to_state == "retired" and registry.get_model("m").aliases == {}
    with pytest.raises(RegistryError, match="no version or alias 'champion'"):
        registry.get_version("m", "champion")


def test_retiring_the_champion_with_a_previous(registry: Registry, model_file: Path) -> None:
    registry.deploy("m", into(registry, "m", model_file, "approved"))
    registry.deploy("m", into(registry, "m", model_file, "approved"))
    registry.set_alias("m", "stable", 2)
    t = registry.retire("m", 2, reason="replaced")
    assert [h.to_state for h in registry.history("m", 2)][-2:] == ["approved", "retired"]
    assert t.to_state == "retired"
    assert registry.get_model("m").aliases == {"champion": 1}, "aliases of a retired version go"


def test_released_version_must_be_approved_again(registry: Registry, model_file: Path) -> None:
    n = into(registry, "m", model_file, "approved")
    registry.quarantine("m", n, reason="scan alert")
    t = registry.release("m", n, reason="false positive")
    assert (t.from_state, t.to_state) == ("quarantined", "registered")
    with pytest.raises(LifecycleError, match="is registered: cannot deploy"):
        registry.deploy("m", n)


def test_aliases(registry: Registry, model_file: Path) -> None:
    into(registry, "m", model_file, "registered")
    into(registry, "m", model_file, "retired")
    a = registry.set_alias("m", "staging", "v1")
    assert (a.name, a.version, a.updated_by) == ("staging", 1, "alice")
    registry.set_alias("m", "staging", 1)
    assert [x.name for x in registry.aliases("m")] == ["staging"]
    for reserved in ("champion", "previous", "latest"):
        with pytest.raises(LifecycleError, match="managed by deploy and rollback"):
            registry.set_alias("m", reserved, 1)
    with pytest.raises(ConfigError, match="alias 'v2'"):
        registry.set_alias("m", "v2", 1)
    with pytest.raises(ConfigError, match="alias 'Prod'"):
        registry.set_alias("m", "Prod", 1)
    with pytest.raises(LifecycleError, match="m v2 is retired; aliases cannot point at it"):
        registry.set_alias("m", "old", 2)
    registry.delete_alias("m", "staging")
    assert registry.aliases("m") == []
    with pytest.raises(RegistryError, match="m has no alias 'staging'"):
        registry.delete_alias("m", "staging")


def test_history_of_the_model(registry: Registry, model_file: Path) -> None:
    registry.deploy("m", into(registry, "m", model_file, "approved"))
    lines = [(t.version, t.from_state, t.to_state, t.override) for t in registry.history("m")]
    assert lines == [
        (1, None, "registered", False),
        (1, "registered", "approved", True),
        (1, "approved", "deployed", False),
    ]
