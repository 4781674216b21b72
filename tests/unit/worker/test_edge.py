"""Which failures are a record's (dead-lettered) and which are the worker's (it stops)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError
from faust.exceptions import PartitionsMismatch

from smartgroups.worker.edge import blames_record


def raised_in(module: str, body: str, call: Callable[[], Any] | None = None) -> BaseException:
    """The exception raised by ``body`` run as code of ``module`` (as a handler would call it)."""
    scope: dict[str, Any] = {"__name__": module, "call": call}
    exec(compile(f"def fail():\n    {body}\n", f"<{module}>", "exec"), scope)
    try:
        scope["fail"]()
    except BaseException as exc:
        return exc
    raise AssertionError("did not raise")


def test_a_bug_our_code_hits_on_a_record_blames_the_record() -> None:
    assert blames_record(raised_in("smartgroups.worker.members", "{}['space']"))
    assert blames_record(raised_in("smartgroups.core.membership", "assert False, 'unknown group'"))
    # ... also when the standard library raises it on the record's data
    assert blames_record(
        raised_in("smartgroups.worker.edge", "__import__('base64').b64decode('x')")
    )


def test_a_failure_in_faust_kafka_or_rocksdb_is_the_workers() -> None:
    assert not blames_record(PartitionsMismatch("changelog topic has 0 partitions"))
    assert not blames_record(KafkaTimeoutError())
    assert not blames_record(ConnectionResetError())
    # rocksdict raises a plain Exception, inside the store adapter
    assert not blames_record(raised_in("smartgroups.worker.store", "raise Exception('IO error')"))

    def faust_code() -> None:
        raised = raised_in("faust.tables.base", "raise ValueError('faust state')")
        raise raised

    assert not blames_record(raised_in("smartgroups.worker.members", "call()", faust_code))


@pytest.mark.parametrize("module", ["mode.services", "aiokafka.producer.producer", "rocksdict"])
def test_any_frame_in_the_infrastructure_decides(module: str) -> None:
    def inner() -> None:
        raise raised_in(module, "raise RuntimeError('boom')")

    assert not blames_record(raised_in("smartgroups.worker.definitions", "call()", inner))
