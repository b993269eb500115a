"""`planloop token create | list | revoke` (bot/cli/tokens.py): printed once, stored as a hash,
listed with its state, refused by the API once revoked."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from bot.cli.commands import main
from storage.models import ApiToken

EXAMPLE = str(Path(__file__).parents[1] / "examples" / "team.toml")


def test_create_list_revoke(config, db, client, capsys):
    assert main(["--config", config, "apply", EXAMPLE]) == 0
    capsys.readouterr()
    assert main(["--config", config, "token", "create", "--name", "erp", "--scopes", "plans:read,metrics:write",
                 "--team", "ops", "--expires", "90d"]) == 0  # fmt: skip
    out = capsys.readouterr().out.splitlines()
    assert (
        out[0] == "令牌 1（erp）：metrics:write，plans:read，限团队 ops"
    )  # [server] locale: zh-CN by default
    secret = out[-1]
    assert secret.startswith("pl_") and len(secret) == 46
    with db() as session:
        row = session.scalars(select(ApiToken)).one()
        assert (row.team_id, row.scopes, row.prefix) == ("ops", ["metrics:write", "plans:read"], secret[:11])
        assert secret not in (row.token_hash, row.name)
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/teams", headers=headers).status_code == 200

    assert main(["--config", config, "token", "list"]) == 0
    listed = capsys.readouterr().out
    assert f"1  {secret[:11]}…  erp  active" in listed and "团队=ops" in listed and secret not in listed

    assert main(["--config", config, "token", "revoke", "1"]) == 0
    assert client.get("/api/v1/teams", headers=headers).status_code == 401
    assert main(["--config", config, "token", "list"]) == 0
    assert "erp  revoked" in capsys.readouterr().out
    assert main(["--config", config, "token", "revoke", "7"]) == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["--scopes", "plans:read,everything"], "unknown scope(s) everything"),
        (["--scopes", "plans:read", "--expires", "soon"], "is not a duration"),
        (["--scopes", "plans:read", "--team", "nobody"], "no team with id 'nobody'"),
        (["--scopes", " , "], "name at least one scope"),
    ],
)
def test_create_refuses_with_a_reason(config, capsys, args, message):
    assert main(["--config", config, "token", "create", "--name", "x", *args]) == 2
    assert message in capsys.readouterr().err
