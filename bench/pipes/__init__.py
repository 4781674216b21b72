"""Baseline pipes the benchmark runs beside the worker: raw aiokafka and faust pass-through."""
