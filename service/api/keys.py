"""The key a request presents (X-API-Key or Authorization: Bearer) and whose it is. Every comparison with a
configured secret is made in constant time, and against every secret, so timing tells nothing.

A caller is named once per request (`caller_of`), and the name is what the rate limit counts and the metrics
label: "api:<consumer>" for each API key (MOVIEGENRE_API_KEYS's "name:key" pairs; MOVIEGENRE_API_KEY, one key taken
whole, is "api:default"), "admin", "editor:<name>"."""
from __future__ import annotations

import hmac
import ipaddress

from pydantic import SecretStr
from starlette.datastructures import Headers

from service.settings import Settings

ANONYMOUS = "anonymous"  # the metrics' name for a request without a valid key


def presented_key(headers) -> str:
    """The API key a request presents, as X-API-Key or Authorization: Bearer ("" for none)."""
    header = headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return headers.get("x-api-key", "")


def matches(presented: str, secret: SecretStr | None) -> bool:
    return secret is not None and hmac.compare_digest(presented.encode(), secret.get_secret_value().encode())


def named(presented: str, tokens: dict[str, str]) -> str | None:
    """The name of the token presented, of `tokens` (token → name); None for none."""
    found = None
    for token, name in tokens.items():
        if hmac.compare_digest(presented.encode(), token.encode()):
            found = name
    return found


def editor_named(presented: str, settings: Settings) -> str | None:
    """The name of the editor token presented (MOVIEGENRE_FEEDBACK_TOKEN); None for none."""
    return named(presented, settings.corrections.editors())


def key_owner(presented: str, settings: Settings) -> str | None:
    """Who a valid key belongs to ("api:<consumer>", "admin" or "editor:<name>"); None for no key or one nobody
    was given. The rate limit counts a request by this, so a key made up per request buys no allowance of its own."""
    if not presented:
        return None
    consumer, editor = named(presented, settings.service.api_keys()), editor_named(presented, settings)
    owners = [(f"api:{consumer}", consumer is not None), ("admin", matches(presented, settings.service.admin_token)),
              (f"editor:{editor}", editor is not None)]
    return next((owner for owner, valid in owners if valid), None)


def caller_of(scope, settings: Settings) -> str | None:
    """The owner of the key a request presents (key_owner), worked out once and kept in its scope's state."""
    state = scope.setdefault("state", {})
    if "caller" not in state:
        state["caller"] = key_owner(presented_key(Headers(scope=scope)), settings)
    return state["caller"]


def may_classify(caller: str | None, settings: Settings) -> bool:
    """/classify is open without MOVIEGENRE_API_KEY; with it, only to the holders of an API key."""
    return not settings.service.api_keys() or (caller or "").startswith("api:")


def client_of(scope, settings: Settings) -> str:
    """Whom a request is counted against: a valid key's owner, else the client's address (IPv6 by its /64)."""
    owner = caller_of(scope, settings)
    if owner is not None:
        return f"key:{owner}"
    host = (scope.get("client") or ("unknown",))[0]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return f"address:{host}"
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return f"address:{address.ipv4_mapped}"
        return f"address:{ipaddress.ip_network(f'{address}/64', strict=False)}"
    return f"address:{address}"
