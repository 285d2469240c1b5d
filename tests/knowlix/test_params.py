"""System parameters: stored rows, defaults, and the cached accessor."""

from knowlix import params


def test_defaults_apply_until_a_row_is_written(db, settings):
    """Without rows the built-in defaults and the environment's domain apply."""
    settings.KNOWLIX_CATCHALL_DOMAIN = "acme.test"
    params.clear_cache()
    assert params.default_from_address() == "notifications@acme.test"
    params.set_param(params.DEFAULT_FROM, "hello")
    params.set_param(params.CATCHALL_DOMAIN, "Company.COM")
    assert params.default_from_address() == "hello@company.com"
    assert params.bounce_address() == "bounce@company.com"


def test_cache_is_dropped_on_write(db, django_assert_num_queries):
    """Reads hit the database once; a write makes the next read fresh."""
    params.clear_cache()
    with django_assert_num_queries(1):
        params.get_param("a.key")
        params.get_param("b.key")
    params.set_param("a.key", "1")
    assert params.get_param("a.key") == "1"
