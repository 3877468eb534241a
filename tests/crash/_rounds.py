"""What the actor crash tests share: start a worker process, kill it in rounds."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

RunRound = Callable[[Path, random.Random, int], int]
"""Runs one round in a fresh folder, killing at most N times; returns the kills made."""


def start_worker(script: Path, db: Path, ledger: Path, generation: int) -> subprocess.Popen[bytes]:
    """Start ``script DB LEDGER GENERATION`` with its output piped back."""
    return subprocess.Popen(
        [sys.executable, str(script), str(db), str(ledger), str(generation)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def kill_in_rounds(tmp_path: Path, run_round: RunRound, kills: int, per_round: int = 8) -> int:
    """Run rounds (a fresh database each) until at least ``kills`` kills; return the count."""
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    made = 0
    rounds = 0
    while made < kills:
        rounds += 1
        round_dir = tmp_path / f"round{rounds}"
        round_dir.mkdir()
        made += run_round(round_dir, rng, per_round)
    return made


class Generation(NamedTuple):
    """One run of the worker process: its number, its output, whether it was killed."""

    number: int
    out: bytes
    err: bytes
    killed: bool


def generations(
    start: Callable[[int], subprocess.Popen[bytes]],
    rng: random.Random,
    max_kills: int,
    pause: tuple[float, float],
) -> Iterator[Generation]:
    """Run the worker generation after generation until one finishes by itself.

    Each of the first ``max_kills`` runs is SIGKILLed after a random pause drawn from
    ``pause`` (seconds; start-up takes about 0.3 s, then it works); the last run yielded
    is the one that finished. A run that ends any other way fails the test.
    """
    kills = 0
    number = 0
    while True:
        number += 1
        child = start(number)
        if kills < max_kills:
            time.sleep(rng.uniform(*pause))
            child.send_signal(signal.SIGKILL)
        out, err = child.communicate(timeout=120)
        if child.returncode == 0:
            yield Generation(number, out, err, killed=False)
            return
        assert child.returncode == -signal.SIGKILL, err.decode()
        kills += 1
        yield Generation(number, out, err, killed=True)


def start_module(module: str, db: Path, ledger: Path, generation: int) -> subprocess.Popen[bytes]:
    """Start ``python -m module DB LEDGER GENERATION`` from the repository's root.

    For a test module that is its own worker (its package's relative imports work).
    """
    return subprocess.Popen(
        [sys.executable, "-m", module, str(db), str(ledger), str(generation)],
        cwd=Path(__file__).parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
