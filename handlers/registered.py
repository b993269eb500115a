"""The one place that lists the handler modules: importing them registers their commands and actions.

Handler modules import ``handlers.router`` (downwards) and decorate their functions on its
``router``; nothing in ``handlers/`` imports this module, so registration has no back import.
"""

from __future__ import annotations

import handlers.alerts
import handlers.appraisals
import handlers.commands
import handlers.held
import handlers.plans
import handlers.progress
import handlers.reminder_commands
import handlers.reminders
import handlers.welcome
from handlers.router import Router, router

REGISTERING = (
    handlers.alerts,
    handlers.appraisals,
    handlers.commands,
    handlers.held,
    handlers.plans,
    handlers.progress,
    handlers.reminder_commands,
    handlers.reminders,
    handlers.welcome,
)


def default_router() -> Router:
    """The router with every handler module above registered (they register once, on import)."""
    return router
