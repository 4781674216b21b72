"""The pure core: conditions, catalog guards, matching and membership decisions.

Nothing here imports faust, aiokafka, rocksdict or reads the clock or the environment; time is
always passed in. Everything is deterministic and total on its documented inputs.
"""
