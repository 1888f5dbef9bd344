"""One error hierarchy: every error a client can cause maps to a status code and a message.

The REST layer turns a `ModelServerError` into ``{"error": message}`` with its status code
(one function, `rest.error_body`); anything else is a bug and answers 500 without details.
"""

from __future__ import annotations


class ModelServerError(Exception):
    """An error answered to the client with `status_code` and `message`."""

    status_code = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def headers(self) -> dict[str, str]:
        """Response headers that go with this error."""
        return {}


class InvalidInput(ModelServerError):
    """The request is well-formed JSON but not a valid inference request for this model."""

    status_code = 400


class MalformedJSON(InvalidInput):
    """The body is not JSON at all."""


class Unauthorized(ModelServerError):
    status_code = 401

    def __init__(self, message: str, challenge: str = 'Bearer realm="forecast-server"') -> None:
        super().__init__(message)
        self.challenge = challenge

    @property
    def headers(self) -> dict[str, str]:
        return {"www-authenticate": self.challenge}


class ModelNotFound(ModelServerError):
    status_code = 404


class PayloadTooLarge(ModelServerError):
    """The body or the batch exceeds the server's limits."""

    status_code = 413


class ContractViolation(ModelServerError):
    """A forecast the output contract rejects (PREDICTION_OUTPUT_ON_VIOLATION=reject)."""

    status_code = 500


class InjectedFault(ModelServerError):
    """A deliberate failure from PREDICTION_FAULT_ERROR_RATE (tests of rollouts only)."""

    status_code = 500


class ModelNotReady(ModelServerError):
    status_code = 503


class ModelLoadError(Exception):
    """The model could not be loaded; `reason` is the metric label (fetch, checksum, ...)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
