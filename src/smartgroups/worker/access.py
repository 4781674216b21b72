"""Who may ask the query API what (contract section 7, Access).

``SMARTGROUPS_API_TOKENS_FILE`` holds one token per line, ``TOKEN SPACE[,SPACE...]`` or
``TOKEN *`` (every space); blank lines and lines starting with ``#`` are ignored. With it, every
``/v1`` request but ``/v1/health`` needs ``Authorization: Bearer TOKEN``: none or an unknown one
is ``401 unauthorized``; a space outside the token's list is ``404 space_not_found``, the same
answer as a space that does not exist. Tokens are compared in constant time and never logged
or echoed (a malformed file is reported by line number only).

Binding (decisions where the contract is silent): loopback addresses are ``127.0.0.0/8``,
``::1`` and ``localhost``; any other ``SMARTGROUPS_WEB_HOST`` without a tokens file is refused
unless ``--insecure-api`` is given.
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from smartgroups.core.ids import is_id
from smartgroups.errors import ConfigError, QueryError


@dataclass(frozen=True, slots=True)
class Tokens:
    """The tokens of a tokens file and the spaces each may read (None: every space)."""

    grants: tuple[tuple[bytes, frozenset[str] | None], ...]

    @classmethod
    def parse(cls, text: str, source: str = "SMARTGROUPS_API_TOKENS_FILE") -> Tokens:
        grants: list[tuple[bytes, frozenset[str] | None]] = []
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split()
            if len(parts) != 2:
                raise ConfigError(
                    f"{source} line {number} is not 'TOKEN SPACE[,SPACE...]' or 'TOKEN *' "
                    "(one token, one space, then the spaces separated by commas)"
                )
            token, spaces = parts
            if spaces == "*":
                grants.append((token.encode(), None))
                continue
            names = [s for s in spaces.split(",") if s]
            if not names or not all(is_id(s) for s in names):
                raise ConfigError(
                    f"{source} line {number} names a space that is not a valid id "
                    "(use letters, digits and _ . @ + -, commas between spaces)"
                )
            grants.append((token.encode(), frozenset(names)))
        if not grants:
            raise ConfigError(f"{source} holds no token (add a line 'TOKEN SPACE' or 'TOKEN *')")
        return cls(tuple(grants))

    @classmethod
    def load(cls, path: Path) -> Tokens:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"cannot read SMARTGROUPS_API_TOKENS_FILE {path}: {exc.__class__.__name__} "
                "(give a readable UTF-8 file)"
            ) from None
        return cls.parse(text)

    def spaces(self, header: str | None) -> frozenset[str] | None:
        """The spaces the request's ``Authorization`` header may read (None: every space);
        ``401 unauthorized`` when it carries no known token."""
        scheme, _, token = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise QueryError(401, "unauthorized", "send 'Authorization: Bearer TOKEN'")
        given = token.strip().encode()
        found: frozenset[str] | None = frozenset()
        known = False
        for candidate, spaces in self.grants:  # every token compared: no early exit
            if hmac.compare_digest(candidate, given):
                known, found = True, spaces
        if not known:
            raise QueryError(401, "unauthorized", "the bearer token is not known")
        return found


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the API on this machine."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip()).is_loopback
    except ValueError:
        return False


def check_bind(host: str, tokens_file: Path | None, insecure: bool) -> None:
    """Refuse (``ConfigError``, exit 2) to serve personal data on the network without tokens."""
    if is_loopback(host) or tokens_file is not None or insecure:
        return
    raise ConfigError(
        f"SMARTGROUPS_WEB_HOST={host} would serve the query API to the network without tokens "
        "(set SMARTGROUPS_API_TOKENS_FILE, bind 127.0.0.1, or pass --insecure-api)"
    )
