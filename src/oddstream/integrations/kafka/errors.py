"""The error every compat surface raises on purpose: an HTTP status, a Confluent error
code and a message, answered as ``{"error_code": int, "message": str}``."""

from __future__ import annotations


class ConfluentError(Exception):
    """An error with the status and body a Confluent server would answer."""

    def __init__(self, status: int, error_code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message

    def body(self) -> dict[str, object]:
        """The JSON body Confluent clients parse."""
        return {"error_code": self.error_code, "message": self.message}
