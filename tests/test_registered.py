"""handlers/registered.py lists every handler module: the router a fresh interpreter builds from it
knows every command and action the bot had before the modules were split (table taken from 94d27e9)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

# word -> module that answers it; from the router at 94d27e9 (before handlers/appraisals.py was split)
COMMANDS = {
    "?": "handlers.commands",
    "？": "handlers.commands",
    "help": "handlers.commands",
    "帮助": "handlers.commands",
    "plan": "handlers.plans",
    "写计划": "handlers.plans",
    "填计划": "handlers.plans",
    "计划": "handlers.plans",
    "新计划": "handlers.plans",
    "解锁": "handlers.plans",
    "progress": "handlers.progress",
    "进度": "handlers.progress",
    "appraisal": "handlers.appraisal_runs",
    "考核": "handlers.appraisal_runs",
    "rate": "handlers.ratings",
    "评分": "handlers.ratings",
    "switch-template": "handlers.template_switches",
    "切换模板": "handlers.template_switches",
    "取消切换": "handlers.template_switches",
    "恢复模板": "handlers.template_switches",
    "back": "handlers.reminder_commands",
    "leave": "handlers.reminder_commands",
    "请假": "handlers.reminder_commands",
    "销假": "handlers.reminder_commands",
    "pause-reminders": "handlers.reminder_commands",
    "resume-reminders": "handlers.reminder_commands",
    "暂停提醒": "handlers.reminder_commands",
    "恢复提醒": "handlers.reminder_commands",
    "pause-team-reminders": "handlers.reminder_commands",
    "resume-team-reminders": "handlers.reminder_commands",
    "暂停团队提醒": "handlers.reminder_commands",
    "恢复团队提醒": "handlers.reminder_commands",
}
ACTIONS = {
    "appraisal.appeal": "handlers.appeals",
    "appraisal.appeal.submit": "handlers.appeals",
    "appraisal.appeal.decide": "handlers.appeals",
    "appraisal.held.publish": "handlers.held",
    "appraisal.held.repoll": "handlers.held",
    "appraisal.rate": "handlers.ratings",
    "chat.command": "handlers.welcome",
    "leave.mark": "handlers.reminder_commands",
    "plan.form": "handlers.plans",
    "plan.remind": "handlers.reminder_commands",
    "plan.submit": "handlers.plans",
    "plan.unlock": "handlers.plans",
    "progress.help": "handlers.alerts",
    "progress.note": "handlers.alerts",
    "progress.note.save": "handlers.alerts",
    "progress.show": "handlers.alerts",
    "progress.snooze": "handlers.alerts",
    "progress.team.snooze": "handlers.alerts",
    "template.switch": "handlers.template_switches",
    "template.switch.cancel": "handlers.template_switches",
}
PUBLIC_COMMANDS = {"?", "？", "help", "帮助"}

_DUMP = """
import json
from handlers.registered import default_router
r = default_router()
where = lambda table: {k: [fn.__module__, public] for k, (fn, public) in table.items()}
print(json.dumps({
    "commands": where(r._commands), "actions": where(r._actions),
    "fallback": getattr(r._fallback, "__module__", None), "after": [fn.__module__ for fn in r._after],
}))
"""


@pytest.fixture(scope="module")
def registry() -> dict:
    """What a fresh interpreter's router knows after importing handlers.registered only (in this
    process other tests may already have imported a module registered.py forgot)."""
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", _DUMP], cwd=root, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.mark.parametrize(("word", "module"), sorted(COMMANDS.items()))
def test_every_known_command_is_registered(registry, word, module) -> None:
    assert registry["commands"].get(word) == [module, word in PUBLIC_COMMANDS]


@pytest.mark.parametrize(("name", "module"), sorted(ACTIONS.items()))
def test_every_known_action_is_registered(registry, name, module) -> None:
    assert registry["actions"].get(name) == [module, False]


def test_the_fallback_and_the_after_hook_are_registered(registry) -> None:
    assert (registry["fallback"], registry["after"]) == ("handlers.commands", ["handlers.welcome"])
