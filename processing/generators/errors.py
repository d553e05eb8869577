"""Errors every generator client raises, so callers handle one family whatever the backend."""

from __future__ import annotations


class GeneratorError(RuntimeError):
    """A generation call failed; the message names the backend, the target and the cause."""


class MalformedResponse(GeneratorError):
    """The service answered, but not in its documented response shape; names the field."""

    def __init__(self, backend: str, field: str, detail: str) -> None:
        self.field = field
        super().__init__(f"{backend}: malformed response at `{field}`: {detail}")
