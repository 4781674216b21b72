"""A :class:`~smartgroups.worker.batch_producer.Submission` without a broker: when it counts as
delivered, what it times, and the offsets it reads (the member loop's checkpoint relies on all
three)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from smartgroups.worker.batch_producer import Submission


async def test_a_submission_is_timed_from_its_hand_over_to_its_last_answer() -> None:
    loop = asyncio.get_running_loop()
    submission = Submission()
    first, second = loop.create_future(), loop.create_future()
    submission.add(("changes", 0), first, 2)
    submission.add(("changes", 1), second, 0)
    await asyncio.sleep(0.01)
    first.set_result(SimpleNamespace(offset=40))
    await asyncio.sleep(0)  # the done callbacks run
    assert not submission.done() and submission.delivery_seconds() is None
    await asyncio.sleep(0.01)
    second.set_result(SimpleNamespace(offset=7))
    await asyncio.sleep(0)
    assert submission.done()
    seconds = submission.delivery_seconds()
    assert seconds is not None and 0.02 <= seconds < 1.0
    await submission.delivered()
    assert submission.last_offset("changes", 0) == 42  # the batch's base offset + its last
    assert submission.last_offset("changes", 1) == 7
    assert submission.last_offset("changes", 2) is None  # nothing sent there


async def test_a_failed_batch_answers_the_submission_and_its_failure_is_raised() -> None:
    loop = asyncio.get_running_loop()
    submission = Submission()
    failed = loop.create_future()
    submission.add(("changes", 0), failed, 0)
    failed.set_exception(RuntimeError("the broker refused it"))
    await asyncio.sleep(0)
    assert submission.done() and submission.delivery_seconds() is not None
    with pytest.raises(RuntimeError, match="refused"):
        await submission.delivered()


def test_a_submission_with_nothing_to_send_is_delivered_at_once() -> None:
    submission = Submission()
    assert submission.done() and submission.delivery_seconds() == 0.0
