"""Every periodic task in the beat schedule exists under the name beat sends."""

import pytest

from knowlix.celery import app


@pytest.mark.parametrize("entry", sorted(app.conf.beat_schedule))
def test_beat_entry_names_a_registered_task(entry):
    """A typo or a moved task would be discarded by the worker as unregistered."""
    app.loader.import_default_modules()
    assert app.conf.beat_schedule[entry]["task"] in app.tasks
