"""What the `cmlapi` stand-in hands back: API v2 answers with their fields as attributes, as the
generated client's models have them, and the generated client's async handle and error."""

from __future__ import annotations

from typing import Any


class ApiException(Exception):
    def __init__(self, status: int, reason: str, body: str) -> None:
        super().__init__(f"({status}) {reason}: {body}")
        self.status, self.reason, self.body = status, reason, body


class Record:
    """One API v2 object: `record.models[0].access_key`, `record.to_dict()`."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getattr__(self, name: str) -> Any:
        try:
            value = self.__dict__["_data"][name]
        except KeyError:
            raise AttributeError(name) from None
        return _wrapped(value)

    def to_dict(self) -> dict[str, Any]:
        return dict(self._data)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Record) and other._data == self._data

    def __repr__(self) -> str:
        return repr(self._data)


def _wrapped(value: Any) -> Any:
    if isinstance(value, dict):
        return Record(value)
    if isinstance(value, list):
        return [_wrapped(v) for v in value]
    return value


class AsyncResult:
    """What `async_req=True` returns: the answer, through `.get()`."""

    def __init__(self, result: Any) -> None:
        self._result = result

    def get(self, timeout: float | None = None) -> Any:
        return self._result

    def ready(self) -> bool:
        return True
