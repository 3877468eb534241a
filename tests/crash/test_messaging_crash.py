"""SIGKILL a process whose 100 actors pass chains of asks and tells, again and again.

Each of 100 chains is six hops, each hop a message handled by a ``Node`` that forwards
the next one by ``ask`` or ``tell`` (half the chains start with an ask from outside,
half with a tell). Every kill lands while messages are in flight. After the last,
unkilled run, and once more after a clean restart, the nodes' states and the ledger
the driver writes prove:
- every hop of every chain was handled exactly once, by the planned node (the
  ``chain:step`` lists), and nothing else was (the totals);
- every ask between actors got the right reply, once (the ``replies`` lists), and every
  ask from outside got the chain's sum, the same in every generation that printed it;
- every report to the sinks arrived once (``Sink`` actors count them);
- no accepted message was lost: a tell that returned is never sent again, yet its
  chain finished, and no run waited past its limit for a message or reply that sat in
  an inbox (the worker then exits 3, listing the inbox entries still waiting);
- a clean restart handles nothing again (the states do not move).
"""

from __future__ import annotations

import json
import random
import subprocess
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from ._rounds import generations, kill_in_rounds, start_worker
from .messaging_worker import CHAINS, NODES, PLAN, SINKS, TTL, expected_reply, reports, sink_of

CHILD = Path(__file__).with_name("messaging_worker.py")
KILLS = 22


def start(db: Path, ledger: Path, generation: int) -> subprocess.Popen[bytes]:
    return start_worker(CHILD, db, ledger, generation)


def final_states(out: str) -> dict[str, object]:
    states: dict[str, object] = {}
    for line in out.splitlines():
        if line.startswith("state "):
            _, node, state = line.split(" ", 2)
            states[node] = json.loads(state)
    assert out.endswith("done\n")
    return states


def check_states(states: dict[str, object]) -> None:
    expected_seen: dict[str, list[str]] = defaultdict(list)
    expected_replies: dict[str, list[str]] = defaultdict(list)
    for chain, steps in PLAN.items():
        for step, hop in enumerate(steps):
            expected_seen[f"n{hop.node}"].append(f"{chain}:{step}")
            if hop.ask:
                reply = expected_reply(chain, step + 1)
                expected_replies[f"n{hop.node}"].append(f"{chain}:{step + 1}={reply}")
    sinks = [f"sink{i}" for i in range(SINKS)]
    assert sorted(states) == sorted([*sinks, *(f"n{i}" for i in range(NODES))])
    expected_reports: dict[str, list[str]] = defaultdict(list)
    for chain in PLAN:
        expected_reports[sink_of(chain)].extend(reports(chain))
    for sink in sinks:
        done = states.pop(sink)
        assert isinstance(done, list)
        assert sorted(done) == sorted(expected_reports[sink]), f"{sink}: reports twice or never"
    handled: Counter[str] = Counter()
    for node, state in states.items():
        assert isinstance(state, dict)
        seen, replies = state["seen"], state["replies"]
        assert isinstance(seen, list)
        assert isinstance(replies, list)
        handled.update(seen)
        twice = [hop for hop, count in Counter(seen).items() if count > 1]
        assert not twice, f"{node} handled {twice} more than once"
        assert sorted(seen) == sorted(expected_seen[node]), f"{node} handled other hops"
        amounts = sum(PLAN[int(h.split(":")[0])][int(h.split(":")[1])].amount for h in seen)
        assert state["total"] == amounts, f"{node} added an amount twice or not at all"
        assert sorted(replies) == sorted(expected_replies[node]), f"{node} got wrong replies"
    assert sum(handled.values()) == CHAINS * (TTL + 1)


def run_round(tmp: Path, rng: random.Random, max_kills: int) -> int:
    """Kill the child at random moments until it finishes by itself; check; return kills."""
    db, ledger = tmp / "messages.db", tmp / "ledger.txt"
    runs = list(generations(lambda g: start(db, ledger, g), rng, max_kills, (0.3, 1.2)))
    kills = sum(run.killed for run in runs)
    states = final_states(runs[-1].out.decode())
    check_states(dict(states))
    # A clean restart re-asks every chain: the replies come from the journal, and no
    # message is handled again.
    child = start(db, ledger, runs[-1].number + 1)
    again, err = child.communicate(timeout=120)
    assert child.returncode == 0, err.decode()
    assert final_states(again.decode()) == states, "a clean restart changed the states"

    replies: dict[int, set[int]] = defaultdict(set)
    acks: Counter[int] = Counter()
    for line in ledger.read_text().splitlines():
        kind, number, *rest = line.split()
        if kind == "reply":
            replies[int(number)].add(int(rest[0]))
        else:
            acks[int(number)] += 1
    for chain in PLAN:
        if chain % 2 == 0:
            assert replies[chain] == {expected_reply(chain)}, f"chain {chain}: wrong reply"
        else:
            # A tell that returned is never sent again, so its chain finishing proves it
            # was kept; one whose ack a kill cut off is sent again: one ack in all.
            assert acks[chain] == 1, f"chain {chain}: the tell was acknowledged {acks[chain]}x"
    return kills


@pytest.mark.crash
def test_sigkilled_actors_handle_every_accepted_message_exactly_once(tmp_path: Path) -> None:
    assert kill_in_rounds(tmp_path, run_round, KILLS) >= KILLS
