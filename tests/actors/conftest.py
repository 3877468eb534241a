"""Fixtures of the actor tests: fresh stores, and a running system over them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from actors import ActorSystem

from ._support import Stores


@pytest.fixture
def stores() -> Stores:
    """Fresh in-memory stores and a virtual clock (a module may override it)."""
    return Stores()


@pytest.fixture
async def system(stores: Stores) -> AsyncIterator[ActorSystem]:
    """A system running over ``stores``."""
    async with stores.system() as system:
        yield system
