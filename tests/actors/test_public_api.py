"""The public surface, pinned (as httpx does): sorted, resolvable, each name exported once.

Handles that only the system creates (`ActorRef`, `Context`) are `@final` and refuse
to be constructed directly.
"""

from __future__ import annotations

import types
from typing import Any, cast

import pytest

import actors
import actors.testing
import journal
import snapshots
from actors import Actor, ActorRef, ActorSystem, Context
from actors.testing import VirtualClock
from journal.memory import MemoryJournal
from snapshots.memory import MemorySnapshotStore

PACKAGES = [actors, actors.testing, journal, snapshots]
REEXPORTING = [actors, journal, snapshots]
"""Packages whose ``__init__`` only re-exports: every public name there is API."""


def exported(module: types.ModuleType) -> list[str]:
    names = getattr(module, "__all__", None)
    assert isinstance(names, list), f"{module.__name__} has no __all__ list"
    return names


@pytest.mark.parametrize("module", PACKAGES, ids=lambda m: m.__name__)
def test_all_is_sorted(module: types.ModuleType) -> None:
    names = exported(module)

    assert names == sorted(names)


@pytest.mark.parametrize("module", PACKAGES, ids=lambda m: m.__name__)
def test_every_exported_name_resolves_to_an_object_defined_in_the_package(
    module: types.ModuleType,
) -> None:
    package = module.__name__.split(".")[0]
    for name in exported(module):
        member = getattr(module, name)
        home = getattr(member, "__module__", None)
        assert isinstance(home, str), f"{module.__name__}.{name} has no __module__"
        assert home == package or home.startswith(f"{package}."), (
            f"{module.__name__}.{name} is defined in {home}, outside {package}"
        )


@pytest.mark.parametrize("module", REEXPORTING, ids=lambda m: m.__name__)
def test_every_public_name_in_the_namespace_is_exported(module: types.ModuleType) -> None:
    public = {
        name
        for name, member in vars(module).items()
        if not name.startswith("_")
        and not isinstance(member, types.ModuleType)
        and name != "annotations"  # `from __future__ import annotations`
    }

    assert public == set(exported(module))


def test_each_name_is_exported_once() -> None:
    homes: dict[int, str] = {}
    for module in PACKAGES:
        names = exported(module)
        assert len(names) == len(set(names)), f"{module.__name__}.__all__ has duplicates"
        for name in names:
            member = getattr(module, name)
            where = f"{module.__name__}.{name}"
            assert id(member) not in homes, f"{where} is also exported as {homes[id(member)]}"
            homes[id(member)] = where


def test_the_user_facing_names_are_exported() -> None:
    wanted = {"Actor", "ActorSystem", "ActorRef", "Context", "Retry", "Status"}
    wanted |= {"activity", "activity_info", "query", "signal"}
    wanted |= {"ActorError", "ActorFailed", "ActorCancelled", "NondeterminismError"}

    assert wanted <= set(actors.__all__)
    assert "VirtualClock" in actors.testing.__all__


@pytest.mark.parametrize("handle", [ActorRef, Context], ids=lambda c: c.__name__)
def test_system_created_handles_are_final(handle: type) -> None:
    assert getattr(handle, "__final__", False) is True


class Probe(Actor):
    async def run(self, ctx: Context) -> None:
        return None


async def test_an_actor_ref_cannot_be_constructed_directly() -> None:
    system = ActorSystem(
        journal=MemoryJournal(), snapshots=MemorySnapshotStore(), clock=VirtualClock()
    )

    with pytest.raises(TypeError, match=r"system\.spawn\(\) or system\.get\(\)"):
        ActorRef(system, Probe, "probe-1", object())


def test_a_context_cannot_be_constructed_directly() -> None:
    engine = cast(Any, None)

    with pytest.raises(TypeError, match="ctx"):
        Context(engine, object())
