"""Errors the model raises, each carrying the HTTP status the real API would answer with.

The model has no HTTP in it, but every refusal it makes maps to exactly one documented
status (docs/reference/stacks-api.md §1, "Documented error codes"), so the status travels
with the error and the HTTP layer only has to render `{"message": ...}`.
"""

from __future__ import annotations


class EmulatorError(Exception):
    status = 500

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class BadRequestError(EmulatorError):
    status = 400


class UnauthorizedError(EmulatorError):
    status = 401


class ForbiddenError(EmulatorError):
    status = 403


class NotFoundError(EmulatorError):
    status = 404


class MethodNotAllowedError(EmulatorError):
    status = 405


class ConflictError(EmulatorError):
    status = 409


class ValidationError(EmulatorError):
    status = 422


class LockedError(EmulatorError):
    status = 423
