"""Row 9 of issue 17: the CLI never replays a file name's control characters, and a database it
cannot open is one line naming it and the cause."""

from __future__ import annotations

import pytest

from bot.cli.commands import main
from bot.cli.terminal import shown

HOSTILE_NAMES = [
    "\x1b[2J\x1b[31mreport.csv",
    "a\nplanloop: 全部导入成功.csv",
    "b\rc.csv",
    "\x1b]8;;https:evil.example\x07link\x1b]8;;\x07.csv",
    "x\u202egpj.csv",
    "tab\there.csv",
    "del\x7f.csv",
    "c1\x9b31m.csv",
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\x1b[2J", "\\x1b[2J"),
        ("a\nb", "a\\nb"),
        ("x\u202ey", "x\\u202ey"),
        ("\x07", "\\x07"),
        ("\x9b", "\\x9b"),
        ("销售日报 2026-11.csv", "销售日报 2026-11.csv"),
    ],
)
def test_shown_table(text, expected):
    assert shown(text) == expected


def _no_controls(text: str) -> None:
    for ch in text:
        assert ch == "\n" or ch.isprintable(), repr(ch)


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_import_prints_a_hostile_file_name_escaped(tmp_path, engine, capsys, name):
    config = tmp_path / "planloop.toml"
    config.write_text(f'[server]\ndatabase_url = "{engine.url.render_as_string(hide_password=False)}"\n')
    path = tmp_path / name
    path.write_text("日期,指标,数值\n2026-11-23,pay_amount,abc\n", encoding="utf-8")
    main(["--config", str(config), "import", str(path)])
    missing = tmp_path / ("missing-" + name)
    assert main(["--config", str(config), "import", str(missing)]) == 1
    out = capsys.readouterr()
    for stream in (out.out, out.err):
        _no_controls(stream)
    assert shown(name) in out.out + out.err
    assert len(out.err.strip().splitlines()) == 2  # one row error line, one "no such file" line


@pytest.mark.parametrize(
    ("url", "names"),
    [
        ("sqlite:///{tmp}/no/such/folder/planloop.db", ["no/such/folder/planloop.db", "不存在"]),
        (
            "postgresql+psycopg://postgres:hunter2@127.0.0.1:5432/planloop_hostile_missing",
            ["planloop_hostile_missing", "does not exist"],
        ),
    ],
    ids=["sqlite-folder", "postgres-database"],
)
def test_db_upgrade_on_a_missing_database_is_one_line_and_exit_1(tmp_path, capsys, url, names):
    config = tmp_path / "planloop.toml"
    config.write_text(f'[server]\ndatabase_url = "{url.format(tmp=tmp_path)}"\n')
    assert main(["--config", str(config), "db", "upgrade"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("planloop: 打不开数据库 ")
    assert all(n in err for n in names), err
    assert "hunter2" not in err and "Traceback" not in err
