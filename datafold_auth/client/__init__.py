"""HTTP client adapters that sign requests with a :class:`~datafold_auth.signer.Signer`.

* :class:`DatafoldAuth` (``datafold_auth.client.requests``) for ``requests``;
* :class:`DatafoldHttpxAuth` (``datafold_auth.client.httpx``) for ``httpx``, sync and async.

Each is imported on first use, so only the HTTP library you use must be installed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .httpx import DatafoldHttpxAuth
    from .requests import DatafoldAuth


def __getattr__(name: str) -> Any:
    if name == "DatafoldAuth":
        from .requests import DatafoldAuth

        return DatafoldAuth
    if name == "DatafoldHttpxAuth":
        from .httpx import DatafoldHttpxAuth

        return DatafoldHttpxAuth
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DatafoldAuth", "DatafoldHttpxAuth"]
