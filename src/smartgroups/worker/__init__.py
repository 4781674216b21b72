"""The worker: the faust application and the adapters that connect the core to Kafka and RocksDB.

It decodes records at the edge (:mod:`smartgroups.wire`), asks the core
(:mod:`smartgroups.core`) what changes, keeps state in RocksDB tables and sends the outputs.
It never imports the CLI (``make lint`` checks the layers with import-linter).
"""
