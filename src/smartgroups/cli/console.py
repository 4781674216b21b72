"""What ``smartgroups worker`` shows: a banner, its own log lines, the framework's only on ask.

Decisions (the contract is silent on the worker's output):

* The banner and ``--demo``'s change lines go to standard output, plain text (no colours, no
  cursor codes: faust's progress spinner is switched off). Log records go to standard error as
  ``[time] LEVEL logger: message``.
* ``--log-level info`` (the default) shows smartgroups' own records at INFO and above and the
  framework's (faust, mode, aiokafka, aiohttp) at WARNING and above, plus one line per finished
  rebalance, ``Worker ready``: faust's own "Worker ready" (logged when every assigned partition
  is recovered and processing resumes) re-labelled ``smartgroups.worker``. Operators and the
  integration harness read that line; faust's ~170 other start-up INFO lines are not shown.
  Lines in mode's service form (``[^-App]: Starting...``) are the framework's, whatever the
  logger: a faust class subclassed in our package logs under our module's name.
* ``--log-level debug`` shows smartgroups at DEBUG and the framework at INFO (its DEBUG records
  are per-request noise; raise them with a logging config of your own if ever needed).
* ``warning`` and ``error`` show only those, from everyone ("Worker ready" included at neither).
* ``SMARTGROUPS_LOG_FORMAT=json`` (or ``--log-format json``) writes each record as one JSON
  object per line instead (:class:`JsonFormatter`), with the same filtering.
* Known-benign framework records are lowered to INFO (so shown at ``debug`` only), each with its
  reason in :data:`BENIGN`. Every other framework ERROR stays an ERROR.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from smartgroups import __version__

LEVELS = ("debug", "info", "warning", "error")
FRAMEWORKS = ("faust", "mode", "aiokafka", "aiohttp")
_READY_LOGGER = "faust.tables.recovery"
_READY = "Worker ready"
_SERVICE = "[^"  # how mode's services prefix their log lines: "[^--Consumer]: Starting..."
_FORMAT = "[%(asctime)s] %(levelname)s %(name)s: %(message)s"

BENIGN: tuple[tuple[str, str], ...] = (
    # aiokafka logs every failed coordinator lookup at ERROR, then retries when the error is
    # retriable. On a broker's first consumer group (a fresh `make run`) the broker answers
    # "not available" until it has created __consumer_offsets, a second or two: healthy. A
    # coordinator that never comes shows as a worker that never logs "Worker ready".
    ("aiokafka.consumer.group_coordinator", "GroupCoordinatorNotAvailableError"),
    # The member loop's first offset lookups right after its topics were created can reach a
    # broker whose metadata does not name the new leader yet; aiokafka logs the retriable
    # NotLeaderForPartition at ERROR, refreshes its metadata and asks again, within a second.
    ("aiokafka.consumer.fetcher", "NotLeaderForPartitionError"),
)
"""(logger, text in the message) of framework ERROR records that are part of a healthy start."""


def configure_logging(level: str, stream: TextIO | None = None, *, as_json: bool = False) -> None:
    """Send log records to ``stream`` (standard error) as the module docstring says; one JSON
    object per line with ``as_json`` (:class:`JsonFormatter`)."""
    ours = logging.getLevelName(level.upper())
    framework = logging.INFO if ours <= logging.DEBUG else max(ours, logging.WARNING)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if as_json else logging.Formatter(_FORMAT))
    handler.addFilter(_Chatter(ours, framework))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(ours)
    for name in FRAMEWORKS:
        logging.getLogger(name).setLevel(framework)
    if ours <= logging.INFO:  # its one INFO line we keep must be created to be seen
        logging.getLogger(_READY_LOGGER).setLevel(logging.INFO)


COORDINATES = ("topic", "partition", "offset")
"""Record attributes (``extra=``) a JSON line carries when a log call gives them."""


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``time`` (RFC 3339, UTC, milliseconds), ``level``,
    ``logger``, ``message``, the :data:`COORDINATES` of the input concerned when the call gave
    them, and ``exception`` (the traceback as text) when there is one. What goes into a message
    is the caller's business: smartgroups' own never carry a value, a secret or personal data
    (contract section 8); this formatter adds nothing of the record but the fields above."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC)
        line: dict[str, Any] = {
            "time": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in COORDINATES:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, ensure_ascii=False, default=str)


class _Chatter(logging.Filter):
    """Ours at ``ours`` and above; the framework's at ``framework`` and above; "Worker ready"."""

    def __init__(self, ours: int, framework: int) -> None:
        super().__init__()
        self.ours = ours
        self.framework = framework

    def filter(self, record: logging.LogRecord) -> bool:
        if _ours(record):
            return record.levelno >= self.ours
        if record.levelno >= logging.ERROR and _benign(record):
            record.levelno, record.levelname = logging.INFO, "INFO"
        if record.name == _READY_LOGGER and record.getMessage().endswith(_READY):
            if record.levelno < self.ours:
                return False
            record.name, record.msg, record.args = "smartgroups.worker", _READY, ()
            return True
        return record.levelno >= self.framework


def _ours(record: logging.LogRecord) -> bool:
    """A record of smartgroups' own code: a faust service defined in our package (the app)
    still logs faust's lifecycle ("[^-App]: Starting..."), which is the framework's."""
    if record.name != "smartgroups" and not record.name.startswith("smartgroups."):
        return False
    return not record.getMessage().startswith(_SERVICE)


def _benign(record: logging.LogRecord) -> bool:
    return any(record.name == name and text in record.getMessage() for name, text in BENIGN)


def banner(settings: Any, *, demo: bool) -> str:
    """The start banner: what this worker is, where it connects, where it keeps state."""
    prefix = settings.topic_prefix or "(none)"
    host = getattr(settings, "web_host", "127.0.0.1")
    lines = [
        f"smartgroups {__version__} worker{' --demo' if demo else ''}",
        f"  broker      {settings.bootstrap_servers} ({settings.security_protocol})",
        f"  app id      {settings.app_id}   topic prefix {prefix}",
        f"  partitions  {settings.partitions}",
        f"  data dir    {settings.data_dir}",
        f"  http        http://{host}:{settings.web_port}/",
    ]
    return "\n".join(lines)
