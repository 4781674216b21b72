"""Erasure (CONTRACT §3 ``member.deleted``) and space isolation, checked where the bytes live.

After ``member.deleted``, no live key or value of any RocksDB under the worker's data directory
holds a byte of the member's profile, property values or answers, and the last record of every
changelog key that ever held them is a tombstone or holds none of them. The same member id in
another space keeps everything, and records of one space (a crafted member id with the key
separator included) never change the other's memberships.
"""

from __future__ import annotations

import signal
from pathlib import Path

from rocksdict import AccessType, Options, Rdict
from tests.faults.checker import read_topic
from tests.integration.harness import Cluster
from tests.integration.scenario import Scenario

# Distinctive values: if any of these bytes survive, erasure failed.
A_SECRETS = ("Zyxwvutsrq", "zyx.erase@acme.com", "Qwertzuiop", "Plokijuhyg")
B_SECRETS = ("Bspacekeeps", "keep.b@acme.com", "Mnbvcxylkj", "Asdfghjklo")


def _define(sc: Scenario) -> None:
    sc.define("property.defined", property_id="nick", name="Nick", value_type="text")
    sc.define("question.defined", question_id="motto", name="Motto", value_type="text")
    sc.define("group.created", group_id="static", name="Static", kind="static")
    sc.define("group.created", group_id="acme", name="Acme", kind="smart",
              conditions={"all": [{"field": "profile.email", "op": "email_domain",
                                   "value": ["acme.com"]}]})  # fmt: skip
    sc.wait_results()


def _fill(sc: Scenario, secrets: tuple[str, ...]) -> None:
    name, email, nick, motto = secrets
    sc.upsert("m1", first_name=name, email=email, status="accepted")
    sc.set_property("m1", "nick", nick)
    sc.answer("m1", "motto", motto)
    sc.define("group.member_added", group_id="static", member_id="m1")
    sc.wait_members("acme", {"m1"})
    sc.wait_members("static", {"m1"})


def _live_bytes(data_dir: Path) -> list[bytes]:
    """Every live key and value of every RocksDB under ``data_dir`` (all column families)."""
    found: list[bytes] = []
    for current in sorted(data_dir.rglob("CURRENT")):
        path = str(current.parent)
        options = Options(raw_mode=True)
        for cf in Rdict.list_cf(path, options):
            db = Rdict(path, options, access_type=AccessType.read_only())
            try:
                table = db if cf == "default" else db.get_column_family(cf)
                for key, value in table.items():
                    found += [bytes(key), bytes(value)]
            finally:
                db.close()
    return found


def test_a_deleted_member_leaves_no_byte_in_rocksdb_nor_in_the_changelogs(
    cluster: Cluster,
) -> None:
    worker = cluster.worker()
    worker.start()
    a, b = Scenario(cluster, "ea"), Scenario(cluster, "eb")
    for sc in (a, b):
        _define(sc)
    _fill(a, A_SECRETS)
    _fill(b, B_SECRETS)
    # A crafted id carrying the key separator and the other space's name: refused at the edge.
    a.upsert("eb:m1", email="intruder@other.org", status="declined")
    a.delete_member("m1")
    a.wait_members("acme", set())
    a.wait_members("static", set())
    (letter,) = cluster.wait_records("dead-letters", 1)
    assert dict(letter.headers)["error.code"] == b"schema_error"
    assert b.members("acme") == {"m1"} and b.members("static") == {"m1"}
    assert all(e["space"] == "eb" and e["type"] == "member.added" for e in b.changes())
    reasons = {(e["group_id"], e["reason"]) for e in a.changes() if e["member_id"] == "m1"}
    assert ("acme", "member_deleted") in reasons and ("static", "member_deleted") in reasons
    assert worker.stop(signal.SIGTERM) == 0

    live = b"\n".join(_live_bytes(worker.data_dir))
    assert all(s.encode() in live for s in B_SECRETS), "the scan does not see the live state"
    assert [s for s in A_SECRETS if s.encode() in live] == []

    names = [t for t in _topics(cluster) if t.endswith("-changelog")]
    assert names, "no changelog topic found"
    for topic in names:
        last: dict[bytes | None, bytes | None] = {}
        held: set[bytes | None] = set()
        for record in read_topic(cluster.bootstrap, topic):
            last[record.key] = record.value
            if record.value and any(s.encode() in record.value for s in A_SECRETS):
                held.add(record.key)
        for key in held:
            value = last[key]
            assert value is None or not any(s.encode() in value for s in A_SECRETS), (topic, key)


def _topics(cluster: Cluster) -> list[str]:
    import asyncio

    from aiokafka.admin import AIOKafkaAdminClient

    async def go() -> list[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=cluster.bootstrap)
        await admin.start()
        try:
            return [t for t in await admin.list_topics() if t.startswith(cluster.prefix)]
        finally:
            await admin.close()

    return asyncio.run(go())
