"""The worker's logic as services over ports: what happens to each record, with no framework.

* :mod:`.ports` — what the services need from the outside: tables of a partition's state, a
  publisher of output records, the topic names, a clock; and the input :class:`~.ports.Record`.
* :mod:`.messages` — the internal messages the services send each other on the fan-out and
  commands topics (one owner of their shapes).
* :mod:`.members` — member inputs, group copies, backfill scans and time ticks, per partition.
* :mod:`.definitions` — ``group-changes`` commands, one total order per space.
* :mod:`.memory` — in-memory twins of the ports, so the services are tested without Kafka,
  faust or RocksDB.

The worker (:mod:`smartgroups.worker`) wires faust tables and its producer to these ports; the
services import nothing of faust, aiokafka or rocksdict (``make lint`` checks it).
"""
