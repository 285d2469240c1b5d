"""System parameters: key/value rows editable on a technical page.

Read them through :func:`get_param` only: it caches the whole table per process and the
cache is dropped whenever a row is written through :func:`set_param` (and, across
processes, after ``CACHE_SECONDS``).
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings

from knowlix.models import SystemParameter
from knowlix.param_rules import (  # noqa: F401  (the keys: params.X everywhere)
    BOUNCE_ALIAS,
    CATCHALL_DOMAIN,
    DEFAULT_FROM,
    DKIM_VERIFY,  # local DKIM check of incoming mail
    LOOP_ALLOWLIST,  # never loop-limited senders
    LOOP_LIMIT,
    LOOP_MINUTES,
    QUEUE_LIFETIME_DAYS,  # days outgoing mail may wait (maximal_queue_lifetime)
    REFUSALS_PER_HOUR,  # automatic answers per address
    TRUSTED_AUTHSERV_IDS,  # trusted Authentication-Results
    USE_CUSTOM_SERVERS,
    is_valid,
)

logger = logging.getLogger(__name__)

DEFAULTS: dict[str, str] = {
    DEFAULT_FROM: "notifications",
    BOUNCE_ALIAS: "bounce",
    LOOP_LIMIT: "20",
    LOOP_MINUTES: "120",
    USE_CUSTOM_SERVERS: "false",
    TRUSTED_AUTHSERV_IDS: "",
    DKIM_VERIFY: "true",
    LOOP_ALLOWLIST: "",
    REFUSALS_PER_HOUR: "3",
    QUEUE_LIFETIME_DAYS: "5",
}

CACHE_SECONDS = 30.0
_lock = threading.Lock()
_cache: dict[str, str] | None = None
_loaded_at = 0.0


def _load() -> dict[str, str]:
    """The stored values; one that breaks its key's rules (written before they
    existed, or straight into the database) is ignored: the default applies."""
    values = {}
    for key, value in SystemParameter.objects.values_list("key", "value"):
        if value and not is_valid(key, value):
            logger.error("system parameter %s: invalid value ignored", key)
            continue
        values[key] = value
    return values


def get_param(key: str, default: str | None = None) -> str | None:
    """The parameter's value, else ``default``, else the built-in default."""
    global _cache, _loaded_at
    cache = _cache  # fresh: read without the lock (routing reads ~20 a message)
    if cache is None or time.monotonic() - _loaded_at > CACHE_SECONDS:
        with _lock:
            if _cache is None or time.monotonic() - _loaded_at > CACHE_SECONDS:
                _cache = _load()
                _loaded_at = time.monotonic()
            cache = _cache
    value = cache.get(key)
    if value not in (None, ""):
        return value
    if default is not None:
        return default
    if key == CATCHALL_DOMAIN:
        return settings.KNOWLIX_CATCHALL_DOMAIN or "example.com"
    return DEFAULTS.get(key)


def get_bool_param(key: str) -> bool:
    return (get_param(key) or "").strip().lower() in {"1", "true", "yes", "on"}


def get_int_param(key: str) -> int:
    try:
        return int(get_param(key) or DEFAULTS.get(key, "0"))
    except ValueError:
        return int(DEFAULTS.get(key, "0"))


def set_param(key: str, value: str) -> None:
    SystemParameter.objects.update_or_create(key=key, defaults={"value": value})
    clear_cache()


def clear_cache() -> None:
    global _cache
    with _lock:
        _cache = None


def catchall_domain() -> str:
    return (get_param(CATCHALL_DOMAIN) or "example.com").strip().lower()


def default_from_address() -> str:
    """``mail.default.from`` when it is a full address, else that local part at
    the catch-all domain (``notifications@<catch-all domain>``)."""
    value = (get_param(DEFAULT_FROM) or DEFAULTS[DEFAULT_FROM]).strip()
    return value if "@" in value else f"{value}@{catchall_domain()}"


def bounce_address() -> str:
    return f"{get_param(BOUNCE_ALIAS)}@{catchall_domain()}"
