"""Hook specifications for registry and nonce-store plugins (the plugin contract).

A plugin is any object or module with functions marked by :data:`hookimpl`.
Third-party packages publish one through the ``datafold_auth.registry``
entry-point group in their packaging metadata::

    [options.entry_points]
    datafold_auth.registry =
        myregistry = my_package.datafold_plugin

The built-in backends (``memory://`` and ``sqlite:///path``) are plugins
registered the same way, so a third-party plugin can serve any other URL
scheme. Lookups are ``firstresult``: the first plugin that returns something
other than ``None`` wins, and a plugin returns ``None`` for URLs it does not
handle. docs/registry.md has a worked example.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from ..nonce import NonceStore
    from . import KeyRegistry

PROJECT = "datafold_auth"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec(firstresult=True)
def datafold_auth_open_registry(url: str, options: dict[str, Any]) -> KeyRegistry | None:
    """Open a key registry for ``url`` if this plugin handles its scheme.

    Args:
        url: the registry URL given by the operator, e.g. ``sqlite:///var/lib/df/keys.db``.
        options: backend keyword options (may be empty); unknown ones should raise ``TypeError``.

    Returns:
        an object implementing :class:`datafold_auth.registry.KeyRegistry`, or
        ``None`` if this plugin does not handle the URL.
    """


@hookspec(firstresult=True)
def datafold_auth_open_nonce_store(url: str, options: dict[str, Any]) -> NonceStore | None:
    """Open a nonce store for ``url`` (e.g. ``memory://``) if this plugin handles it.

    Returns:
        an object implementing :class:`datafold_auth.nonce.NonceStore`, or ``None``.
    """
