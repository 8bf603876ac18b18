"""The key a request presents (X-API-Key or Authorization: Bearer) and whose it is. Every comparison with a
configured secret is made in constant time, and against every secret, so timing tells nothing."""
from __future__ import annotations

import hmac

from pydantic import SecretStr

from service.settings import Settings


def presented_key(headers) -> str:
    """The API key a request presents, as X-API-Key or Authorization: Bearer ("" for none)."""
    header = headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return headers.get("x-api-key", "")


def matches(presented: str, secret: SecretStr | None) -> bool:
    return secret is not None and hmac.compare_digest(presented.encode(), secret.get_secret_value().encode())


def editor_named(presented: str, settings: Settings) -> str | None:
    """The name of the editor token presented (MOVIEGENRE_FEEDBACK_TOKEN); None for none."""
    found = None
    for token, name in settings.editors().items():
        if hmac.compare_digest(presented.encode(), token.encode()):
            found = name
    return found


def key_owner(presented: str, settings: Settings) -> str | None:
    """Who a valid key belongs to ("api", "admin" or "editor:<name>"); None for no key or one nobody was given.
    The rate limit counts a request by this, so a key made up per request buys no allowance of its own."""
    if not presented:
        return None
    editor = editor_named(presented, settings)
    owners = [("api", matches(presented, settings.api_key)), ("admin", matches(presented, settings.admin_token)),
              (f"editor:{editor}", editor is not None)]
    return next((owner for owner, valid in owners if valid), None)
