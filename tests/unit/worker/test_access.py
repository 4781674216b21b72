"""Access to the query API: the tokens file, the bearer check, and the refusal to bind a public
address without tokens (contract section 7, Access)."""

from __future__ import annotations

from pathlib import Path

import pytest

from smartgroups.cli.main import main
from smartgroups.errors import ConfigError, QueryError
from smartgroups.worker.access import Tokens, check_bind, is_loopback

FILE = """
# staff tools
tok-acme acme
tok-two  acme,globex
tok-all  *
"""


def test_a_token_reads_its_spaces_and_every_other_way_in_fails() -> None:
    tokens = Tokens.parse(FILE)
    assert tokens.spaces("Bearer tok-acme") == frozenset({"acme"})
    assert tokens.spaces("bearer tok-two") == frozenset({"acme", "globex"})
    assert tokens.spaces("Bearer tok-all") is None
    for header in (
        None, "", "Bearer", "Bearer ", "tok-acme", "Basic tok-acme", "Bearer tok-acm",
        "Bearer tok-acme2", "Bearer TOK-ACME", "Bearer *", "Bearer acme",
    ):  # fmt: skip
        with pytest.raises(QueryError) as caught:
            tokens.spaces(header)
        assert (caught.value.status, caught.value.code) == (401, "unauthorized")
        assert "tok-" not in caught.value.message


@pytest.mark.parametrize(
    "text",
    ["tok", "tok acme extra", "tok acme:1", "tok ,", "# only a comment\n", "", "tok a b,c"],
)
def test_a_malformed_file_is_refused_by_line_without_showing_the_token(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Tokens.parse(text)
    assert "tok" not in str(caught.value).replace("token", "")


def test_loopback_addresses() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.1.2.3", "::1", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.5", "example.org", ""))


def test_a_public_address_needs_tokens_or_insecure_api(tmp_path: Path) -> None:
    check_bind("127.0.0.1", None, False)
    check_bind("0.0.0.0", tmp_path / "tokens", False)
    check_bind("0.0.0.0", None, True)
    with pytest.raises(ConfigError, match="--insecure-api"):
        check_bind("0.0.0.0", None, False)


def test_the_worker_refuses_to_start_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMARTGROUPS_DATA_DIR", str(tmp_path))
    assert main(["worker", "--web-host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("smartgroups: SMARTGROUPS_WEB_HOST=0.0.0.0")
    assert "Traceback" not in err
    bad = tmp_path / "tokens"
    bad.write_text("secret-token\n")
    assert main(["worker", "--api-tokens-file", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "line 1" in err and "secret-token" not in err
    assert main(["worker", "--api-tokens-file", str(tmp_path / "missing")]) == 2
    assert "cannot read SMARTGROUPS_API_TOKENS_FILE" in capsys.readouterr().err
