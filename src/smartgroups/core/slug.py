"""Group slugs: the normalised, URL-safe name of a group, unique in its space (contract §3).

A slug is lowercase ASCII letters and digits in runs separated by single hyphens, with no hyphen
at either end, at most :data:`MAX_SLUG` characters: ``"The Poool Team is SUPER nice!"`` becomes
``"the-poool-team-is-super-nice"``.

Decisions (the contract is silent):

* **Accents** are transliterated by compatibility decomposition (NFKD) and dropping what is not
  ASCII afterwards: ``"Équipe Crème"`` → ``"equipe-creme"``, ``"ﬁn"`` → ``"fin"``. Characters
  with no ASCII decomposition (``"日本"``, ``"ß"``, emoji) act as separators.
* Every other run of characters that are not ASCII letters or digits becomes one hyphen.
* An **empty result** (``"!!!"``, ``"日本"``) is no slug: :func:`normalize_slug` returns ``""``
  and an explicit slug that normalises to nothing is rejected as ``invalid`` by the catalog.
* Slugs longer than :data:`MAX_SLUG` are cut there (and a trailing hyphen dropped).
"""

from __future__ import annotations

import re
import unicodedata

MAX_SLUG = 200
"""The longest slug kept; longer ones are cut."""

_SEPARATORS = re.compile(r"[^a-z0-9]+")


def normalize_slug(text: str) -> str:
    """The slug of ``text`` (see the module docstring); ``""`` when nothing usable remains."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = _SEPARATORS.sub("-", ascii_text.lower()).strip("-")
    if len(slug) > MAX_SLUG:
        slug = slug[:MAX_SLUG].rstrip("-")
    return slug


def with_suffix(base: str, suffix: object) -> str:
    """``base-suffix`` (``suffix`` a number or a slug), ``base`` cut so the result fits MAX_SLUG."""
    tail = f"-{suffix}"
    return base[: MAX_SLUG - len(tail)].rstrip("-") + tail
