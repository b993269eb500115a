"""The one place that lists the handler modules: importing them registers their commands and actions.

Handler modules import ``handlers.router`` (downwards) and decorate their functions on its
``router``; nothing in ``handlers/`` imports this module, so registration has no back import.
"""

from __future__ import annotations

import handlers.alerts
import handlers.appeals
import handlers.appraisal_runs
import handlers.commands
import handlers.held
import handlers.plans
import handlers.progress
import handlers.ratings
import handlers.reminder_commands
import handlers.reminders
import handlers.template_switches
import handlers.welcome
from handlers.router import Router, router

REGISTERING = (
    handlers.alerts,
    handlers.appeals,
    handlers.appraisal_runs,
    handlers.commands,
    handlers.held,
    handlers.plans,
    handlers.progress,
    handlers.ratings,
    handlers.reminder_commands,
    handlers.reminders,
    handlers.template_switches,
    handlers.welcome,
)


def default_router() -> Router:
    """The router with every handler module above registered (they register once, on import)."""
    return router
