"""The admin API: a mountable WSGI/ASGI app for operators (docs/operations.md, Admin API).

Requests are DataFold-signed by keys holding the ``admin`` scope and verified
by the application's own :class:`~datafold_auth.Verifier`::

    from datafold_auth.admin import AdminApp                    # ASGI: AdminASGIApp

    app.wsgi_app = DispatcherMiddleware(protected, {
        "/register": RegistrationApp(registry, nonces),
        "/admin": AdminApp(registry, verifier, audit=sink),
    })

``keytools admin ...`` is its command line client.
"""

from .asgi import AdminASGIApp
from .core import AdminRoute, AdminService, import_record, parse_import
from .wsgi import AdminApp

__all__ = ["AdminASGIApp", "AdminApp", "AdminRoute", "AdminService", "import_record", "parse_import"]
