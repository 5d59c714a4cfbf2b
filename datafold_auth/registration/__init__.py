"""Key registration with proof of possession (docs/protocol.md, Registration).

* :class:`RegistrationApp` (WSGI) and :class:`RegistrationASGIApp` (ASGI)
  serve ``POST {mount}/keys`` and ``GET {mount}/keys/{keyid}``, and the key
  lifecycle: ``POST {mount}/keys/{keyid}/rotate|revoke|approve`` and
  ``GET {mount}/clients/{client_id}/keys`` (docs/protocol.md section 7).
* :func:`handle_registration` / :func:`parse_registration_body` are the
  sans-I/O core; :func:`registration_request` builds the client's signed request.
"""

from .asgi import RegistrationASGIApp
from .core import (
    NEW_KEY_LABEL,
    NEW_KEY_TAG,
    RegistrationBody,
    RegistrationService,
    ScopeNotAllowed,
    approval_request,
    client_keys_url,
    handle_registration,
    handle_rotation,
    lifecycle_request,
    parse_registration_body,
    registration_request,
    revocation_request,
    rotation_request,
)
from .wsgi import RegistrationApp

__all__ = [
    "NEW_KEY_LABEL",
    "NEW_KEY_TAG",
    "RegistrationASGIApp",
    "RegistrationApp",
    "RegistrationBody",
    "RegistrationService",
    "ScopeNotAllowed",
    "approval_request",
    "client_keys_url",
    "handle_registration",
    "handle_rotation",
    "lifecycle_request",
    "parse_registration_body",
    "registration_request",
    "revocation_request",
    "rotation_request",
]
