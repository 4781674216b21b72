"""Holds live answers of the query API to the committed OpenAPI document (``schemas/``)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

DOC_PATH = Path(__file__).resolve().parents[2] / "schemas" / "openapi.json"
DOC: dict[str, Any] = json.loads(DOC_PATH.read_text(encoding="utf-8"))
_URI = "urn:smartgroups:openapi"
_REGISTRY: Registry[Any] = Registry().with_resource(
    _URI, Resource(contents=DOC, specification=DRAFT202012)
)


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def _response_pointer(template: str, method: str, status: str) -> str:
    """The JSON pointer of a response's body schema (through a ``$ref``'d response)."""
    pointer = f"/paths/{_escape(template)}/{method}/responses/{status}"
    response = DOC["paths"][template][method]["responses"][status]
    if "$ref" in response:
        pointer = str(response["$ref"]).removeprefix("#")
    return f"{pointer}/content/application~1json/schema"


def template_of(path: str) -> str:
    """The document's path template that ``path`` (no query string) is an instance of."""
    for template in DOC["paths"]:
        pattern = re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            return str(template)
    raise AssertionError(f"{path} is not in the OpenAPI document")


def check_answer(method: str, path: str, answer: tuple[int, dict[str, str], Any]) -> None:
    """Fail unless the document declares ``answer``'s status for the operation of ``path`` and
    its body validates against that response's schema (and a 503 carries ``Retry-After``)."""
    status, headers, body = answer
    template = template_of(path.partition("?")[0])
    operation = DOC["paths"][template][method.lower()]
    responses = operation["responses"]
    assert str(status) in responses, f"{method} {template}: {status} is not documented: {body}"
    pointer = _response_pointer(template, method.lower(), str(status))
    validator = Draft202012Validator({"$ref": f"{_URI}#{pointer}"}, registry=_REGISTRY)
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
    assert not errors, f"{method} {template} {status}: {errors[0].message} in {body}"
    if status == 503:
        assert "Retry-After" in headers
