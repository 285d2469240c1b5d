"""System parameters: key/value rows editable on a technical page.

Read them through :func:`get_param` only: it caches the whole table per process and the
cache is dropped whenever a row is written through :func:`set_param` (and, across
processes, after ``CACHE_SECONDS``).
"""

from __future__ import annotations

import threading
import time

from django.conf import settings

from knowlix.models import SystemParameter

CATCHALL_DOMAIN = "mail.catchall.domain"
DEFAULT_FROM = "mail.default.from"
BOUNCE_ALIAS = "mail.bounce.alias"
LOOP_LIMIT = "mail.gateway.loop.threshold"
LOOP_MINUTES = "mail.gateway.loop.minutes"
USE_CUSTOM_SERVERS = "mail.use_custom_servers"
# Routing of incoming mail (read by routing/):
TRUSTED_AUTHSERV_IDS = "mail.gateway.authserv_ids"  # trusted Authentication-Results
DKIM_VERIFY = "mail.gateway.dkim_verify"  # local DKIM check of incoming mail
LOOP_ALLOWLIST = "mail.gateway.loop.allowlist"  # never loop-limited senders
REFUSALS_PER_HOUR = "mail.gateway.refusals_per_hour"  # automatic answers per address

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
}

CACHE_SECONDS = 30.0
_lock = threading.Lock()
_cache: dict[str, str] | None = None
_loaded_at = 0.0


def _load() -> dict[str, str]:
    return dict(SystemParameter.objects.values_list("key", "value"))


def get_param(key: str, default: str | None = None) -> str | None:
    """The parameter's value, else ``default``, else the built-in default."""
    global _cache, _loaded_at
    with _lock:
        if _cache is None or time.monotonic() - _loaded_at > CACHE_SECONDS:
            _cache = _load()
            _loaded_at = time.monotonic()
        value = _cache.get(key)
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
    """``notifications@<catch-all domain>`` (the local part is ``mail.default.from``)."""
    return f"{get_param(DEFAULT_FROM)}@{catchall_domain()}"


def bounce_address() -> str:
    return f"{get_param(BOUNCE_ALIAS)}@{catchall_domain()}"
