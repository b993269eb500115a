"""The backup and restore procedure of docs/ops/backup.md, as an operator runs it, on both databases:
back up while the data is there, lose data, restore, and find every row again."""

from __future__ import annotations

import sqlite3

from sqlalchemy import delete, func, select

from bot.cli.commands import main
from storage.models import Person, Plan, PlanItem


def count(db, model) -> int:  # noqa: ANN001
    with db() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_backup_then_restore_brings_every_row_back(config, sim, demo_team, db, engine, tmp_path, capsys):
    sim.say("lilei", "计划\n优化详情页首屏 支付转化率 +2pp\n差评回访 投诉率 -10%")
    before = (count(db, Person), count(db, Plan), count(db, PlanItem))
    assert before[1:] == (1, 2)
    archive = tmp_path / "planloop.backup"

    assert main(["--config", config, "db", "backup", str(archive)]) == 0
    assert archive.stat().st_size > 0
    with db() as s, s.begin():  # the accident
        s.execute(delete(PlanItem))
        s.execute(delete(Plan))
    assert count(db, Plan) == 0

    engine.dispose()  # "stop serve and worker": nothing holds a connection while restoring
    assert main(["--config", config, "db", "restore", str(archive)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("已备份：") and "已恢复：" in out and "下一步：planloop db upgrade" in out
    assert main(["--config", config, "db", "upgrade"]) == 0
    assert (count(db, Person), count(db, Plan), count(db, PlanItem)) == before


def test_restore_refuses_a_file_that_is_not_a_backup(config, engine, tmp_path, capsys):
    junk = tmp_path / "junk.backup"
    junk.write_bytes(b"not a database at all" * 100)
    assert main(["--config", config, "db", "restore", str(junk)]) == 1
    err = capsys.readouterr().err
    assert (
        "planloop: " in err
        and ("不是完好的 SQLite 数据库" in err or "pg_restore 失败" in err)
        or ("file is not a database" in err)
    )


def test_a_missing_backup_is_named(config, tmp_path, capsys):
    assert main(["--config", config, "db", "restore", str(tmp_path / "nope")]) == 1
    assert f"没有备份文件 {tmp_path / 'nope'}" in capsys.readouterr().err


def test_a_sqlite_backup_is_a_plain_database_file(tmp_path, capsys):
    path = tmp_path / "p.toml"
    path.write_text(f'[server]\ndatabase_url = "sqlite:///{tmp_path / "live.db"}"\n')
    assert main(["--config", str(path), "db", "upgrade"]) == 0
    assert main(["--config", str(path), "db", "backup", str(tmp_path / "copy.db")]) == 0
    with sqlite3.connect(tmp_path / "copy.db") as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert copy.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)
