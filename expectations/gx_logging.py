"""Keep Great Expectations' own chatter out of task logs, but not its warnings.

Importing GX logs dozens of INFO lines ("Skipping registering function ... because it is a
closure") from ``great_expectations._docs_decorators``, and every ephemeral context adds a few
more. In an Airflow task, whose logging runs at INFO, they bury the gate's own lines. Raising the
``great_expectations`` logger to WARNING removes exactly that noise: GX's warnings and errors still
reach the log, and nobody else's logging changes. The level must be set before GX is imported,
which is why ``expectations/__init__.py`` calls this.
"""

from __future__ import annotations

import logging

GX_LOGGER_NAME = "great_expectations"


def quiet_gx_logging() -> None:
    """Raise GX's logger to WARNING unless someone configured its level on purpose."""
    logger = logging.getLogger(GX_LOGGER_NAME)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.WARNING)
