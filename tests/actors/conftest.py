"""Fixtures of the actor tests: fresh stores, and a running system over them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from actors import ActorSystem

from ._support import Stores, calls


@pytest.fixture
def stores() -> Stores:
    """Fresh in-memory stores and a virtual clock (a module may override it)."""
    return Stores()


@pytest.fixture
async def system(stores: Stores) -> AsyncIterator[ActorSystem]:
    """A system running over ``stores``."""
    async with stores.system() as system:
        yield system


@pytest.fixture(autouse=True)
def _clear_calls() -> Iterator[None]:
    """Start and leave every test with an empty ``calls`` ledger."""
    calls.clear()
    yield
    calls.clear()
