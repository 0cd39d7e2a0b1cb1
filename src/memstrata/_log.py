"""memstrata's loggers: the standard ``logging`` tree under ``"memstrata"``.

The library installs no handlers (an application decides where records go) and
logs what an operator needs — recoveries on open, damaged records found,
migrations, compactions — never once per operation on the hot path.

>>> get_logger("traces").name
'memstrata.traces'
"""

from __future__ import annotations

import logging

__all__ = ["get_logger", "logger"]

logger = logging.getLogger("memstrata")


def get_logger(name: str) -> logging.Logger:
    """The child logger ``memstrata.<name>`` of one package."""
    return logger.getChild(name)
