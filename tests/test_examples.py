"""The README's commands and examples run, and say what they promise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(args: list[str], cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_demo_crashes_its_first_run_and_recovers_in_the_second(tmp_path: Path) -> None:
    out = run(["-m", "actors", "demo", "--db", str(tmp_path / "demo.db")], tmp_path)
    first, second = out.split("second run (recovers from the journal):")
    assert "died with exit code 1" in first
    for step in ("reserve_stock", "charge_card"):
        assert f"[first run] {step}(" in first
        assert step not in second.split("order-42 completed:")[0]  # replayed, not rerun
    assert "[second run] ship('order-42') RAN" in second
    assert "parcel 1Z999 handed to carrier" in second


def test_the_quickstart_example_completes_and_is_not_redone(tmp_path: Path) -> None:
    first = run([str(ROOT / "examples" / "quickstart.py")], tmp_path)
    assert "result: shipped" in first
    again = run([str(ROOT / "examples" / "quickstart.py")], tmp_path)
    assert "steps done: 1" in again  # the finished order was found, not rerun
    assert "result: shipped" in again


def test_the_bank_example_transfers_and_does_not_redo_messages_it_took(tmp_path: Path) -> None:
    first = run([str(ROOT / "examples" / "bank.py")], tmp_path)
    assert "bob after transfer: 4" in first
    assert "refused: insufficient funds" in first
    assert "alice: 6" in first
    again = run([str(ROOT / "examples" / "bank.py")], tmp_path)
    assert "alice: 6" in again  # deposit-1 and transfer-1 were taken once, ever
    assert "bob: 4" in again


def test_the_supervision_example_heals_a_crash_sets_aside_a_poison_message(
    tmp_path: Path,
) -> None:
    first = run([str(ROOT / "examples" / "supervision.py")], tmp_path)
    assert "1. stock after reserving 2: 8" in first
    assert "state: (8, ['widget'])" in first  # the crashed turn left no trace
    assert "2. poison message refused: negative quantity -1" in first
    assert "dead letters: [Reserve(sku='gadget', qty=-1)]" in first
    assert "stock after reserving 1: 7" in first
    assert "large payment failed: card declined for 500" in first
    assert "watch: pay-large failed" in first
    again = run([str(ROOT / "examples" / "supervision.py")], tmp_path)
    assert "1. stock after reserving 2: 8" in again  # the same id: the first reply
    assert "3. ['paid 20'" in again
