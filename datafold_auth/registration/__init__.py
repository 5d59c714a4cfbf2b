"""Key registration with proof of possession (docs/protocol.md, Registration).

* :class:`RegistrationApp` (WSGI) and :class:`RegistrationASGIApp` (ASGI)
  serve ``POST {mount}/keys`` and ``GET {mount}/keys/{keyid}``.
* :func:`handle_registration` / :func:`parse_registration_body` are the
  sans-I/O core; :func:`registration_request` builds the client's signed request.
"""

from .asgi import RegistrationASGIApp
from .core import (
    RegistrationBody,
    RegistrationService,
    handle_registration,
    parse_registration_body,
    registration_request,
)
from .wsgi import RegistrationApp

__all__ = [
    "RegistrationASGIApp",
    "RegistrationApp",
    "RegistrationBody",
    "RegistrationService",
    "handle_registration",
    "parse_registration_body",
    "registration_request",
]
