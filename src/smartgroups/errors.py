"""The one exception tree of smartgroups.

::

    SmartGroupsError          exit_status 1
     +-- ConfigError          2  bad flags or environment; the process refuses to start
     +-- UsageError           2  a command-line argument or a file it names cannot be used
     |    +-- ProduceError    2  a line of ``smartgroups produce``'s file; nothing was sent
     +-- KafkaClientError     2  Kafka answered with an error the CLI cannot work around
     |    +-- KafkaUnreachable   no broker of the bootstrap list answered in time
     |    +-- KafkaAccessError   the broker refused the TLS handshake, the SASL login or an ACL
     +-- TopicMissing         2  a topic the command reads or writes does not exist
     +-- TopologyError        2  an existing topic has the wrong partition count or cleanup policy
     +-- BrokerError          1  the local development broker failed to fetch, start or stop
     +-- RuleError            1  a group-changes command is rejected (``code``: the contract's)
     +-- PreviewError         2  ``smartgroups preview`` cannot run (bad file, rejected definition)
     +-- NotRunning           2  an operation needs the app's workers and none is running
     +-- Unfinished           1  an operation the workers run did not report back in time
     +-- QueryError           1  a query API request cannot be answered (HTTP status and code)

``smartgroups`` (``smartgroups.cli.main``) prints any of these as one line on stderr,
``smartgroups: <cause> (<what to fix>)``, and exits with its ``exit_status``: 2 for every mistake
the user can fix (flags, environment, files, the broker's address or credentials). So every
message names its cause and, in parentheses, the fix. Anything else that escapes is a bug and
keeps its traceback.

aiokafka's exceptions never cross the CLI's boundary with Kafka (``smartgroups.cli.connect``):
they are translated there into the ``Kafka*`` classes above.

Data problems on the stream (bad records) are *not* exceptions: the edge turns them into dead
letters or ``command.rejected`` results, and the stream goes on.
"""

from __future__ import annotations


class SmartGroupsError(Exception):
    """Base of every error raised by smartgroups; ``exit_status`` is what the CLI returns."""

    exit_status: int = 1


class ConfigError(SmartGroupsError):
    """A setting is missing or malformed. Fix the flag or variable named in the message."""

    exit_status = 2


class UsageError(SmartGroupsError):
    """A command-line argument, or a file it names, cannot be used; nothing was done."""

    exit_status = 2


class ProduceError(UsageError):
    """A line of ``smartgroups produce``'s input cannot be published; nothing was sent."""


class KafkaClientError(SmartGroupsError):
    """Kafka failed a request of the CLI in a way the user has to fix (broker, network, access)."""

    exit_status = 2


class KafkaUnreachable(KafkaClientError):
    """No broker of the bootstrap list answered within the connection bound."""


class KafkaAccessError(KafkaClientError):
    """The broker answered but refused us: TLS handshake, SASL login or authorization (ACL)."""


class TopicMissing(SmartGroupsError):
    """A topic the command needs does not exist (the worker creates them on its first start)."""

    exit_status = 2


class TopologyError(SmartGroupsError):
    """An existing topic does not fit the configuration (partitions or compaction).

    The worker refuses to start rather than route keys to the wrong partitions. Recreate the topic
    or set ``SMARTGROUPS_PARTITIONS`` to the existing count.
    """

    exit_status = 2


class BrokerError(SmartGroupsError):
    """The local development broker failed; the message carries the tail of its log."""


class Fenced(SmartGroupsError):
    """The member loop may no longer own its partitions (it was paused past the consumer
    group's session timeout, or the group dropped it): it sends nothing more and stops."""


class ChangelogLost(SmartGroupsError):
    """A faust table's write was lost: its changelog record could not be delivered (the
    changelog misses a write that no replay of the input repairs), or RocksDB refused the
    delivered write; the worker stops."""


class RecordTooLarge(SmartGroupsError):
    """A record the worker must produce does not fit in one producer batch."""


class RuleError(SmartGroupsError):
    """A definition command is rejected with one of the contract's codes (section 3)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class PreviewError(SmartGroupsError):
    """``smartgroups preview`` cannot complete; ``exit_status`` is what the command returns."""

    def __init__(self, message: str, exit_status: int = 2) -> None:
        super().__init__(message)
        self.exit_status = exit_status


class NotRunning(SmartGroupsError):
    """An operation the workers carry out (``reconcile``) finds no worker of the app."""

    exit_status = 2


class Unfinished(SmartGroupsError):
    """The workers did not report the end of an operation in time (it goes on without the CLI)."""

    exit_status = 1


class QueryError(SmartGroupsError):
    """A query API request cannot be answered: the contract's ``code`` (section 7), its HTTP
    ``status`` and, for ``503 unavailable``, how many seconds to wait (``Retry-After``)."""

    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None):
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
