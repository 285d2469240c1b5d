"""The strict environment readers behind settings."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from knowlix.env import env_bool, env_int, env_list, env_secret


def test_env_bool_refuses_anything_but_true_or_false(monkeypatch):
    """A typo such as 'ture' is an error, not False."""
    monkeypatch.setenv("X_FLAG", "ture")
    with pytest.raises(ImproperlyConfigured, match="X_FLAG must be true or false"):
        env_bool("X_FLAG", False)
    monkeypatch.setenv("X_FLAG", "False")
    assert env_bool("X_FLAG", True) is False
    monkeypatch.delenv("X_FLAG")
    assert env_bool("X_FLAG", True) is True


def test_env_int_and_list(monkeypatch):
    """Whole numbers are checked; lists drop blanks."""
    monkeypatch.setenv("X_NUM", "12x")
    with pytest.raises(ImproperlyConfigured):
        env_int("X_NUM", 1)
    monkeypatch.setenv("X_LIST", " a, ,b ")
    assert env_list("X_LIST") == ["a", "b"]


def test_env_secret_reads_a_file(monkeypatch, tmp_path):
    """NAME_FILE wins over NAME so secrets can come from mounted files."""
    secret = tmp_path / "secret"
    secret.write_text("from-file\n")
    monkeypatch.setenv("X_SECRET", "from-env")
    monkeypatch.setenv("X_SECRET_FILE", str(secret))
    assert env_secret("X_SECRET") == "from-file"
    monkeypatch.setenv("X_SECRET_FILE", str(tmp_path / "missing"))
    with pytest.raises(ImproperlyConfigured, match="cannot read"):
        env_secret("X_SECRET")
