"""Hook specifications: registry and nonce-store plugins, audit forwarding, permissions (the plugin contract).

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

Two more hooks let an application plug in without a backend:
``datafold_auth_audit_event`` receives every audit entry once it is
appended (forward it to your own logging), and ``datafold_auth_authorize``
lets an existing permission system decide the scope checks of
:mod:`datafold_auth.permissions`. Register such a plugin at start-up with
``datafold_auth.plugin_manager().register(my_plugin)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from ..audit import AuditEntry
    from ..middleware import Identity
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


@hookspec
def datafold_auth_audit_event(entry: AuditEntry) -> None:
    """Called with every audit entry after it was appended to a registry's log (lifecycle events and
    rejected requests; see :mod:`datafold_auth.audit`).

    Runs in the thread that appended it (the request's thread for lifecycle events,
    the audit sink's thread for rejected requests): keep it quick. An exception is
    logged on ``datafold_auth.audit`` and otherwise ignored.

    Args:
        entry: the :class:`~datafold_auth.audit.AuditEntry` (``seq``, ``time``, ``event``,
            ``keyid``, ``client_id``, ``actor``, ``reason``, ``request_id``, ``data``, ``hash``).
    """


@hookspec(firstresult=True)
def datafold_auth_authorize(identity: Identity, scopes: tuple[str, ...], request: Any) -> bool | None:
    """Decide whether ``identity`` may use a resource that requires ``scopes``.

    Called by every scope check of :mod:`datafold_auth.permissions` (the Flask, Django
    and Starlette/FastAPI helpers and the admin API). The first implementation that
    returns ``True`` or ``False`` decides; when all return ``None`` the default rule
    applies: every required scope is among ``identity.scopes`` (the key's scopes).

    Args:
        identity: the verified :class:`~datafold_auth.middleware.Identity` (client_id, keyid, scopes).
        scopes: the scopes the route requires.
        request: the framework's request object (Flask ``request``, Django ``HttpRequest``,
            Starlette ``Request``), or ``None`` where there is none.

    Returns:
        ``True`` (allow), ``False`` (answer ``403 insufficient_scope``) or ``None`` (no opinion).
    """
