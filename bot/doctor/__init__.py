"""``planloop doctor``: one checklist per configured bot against its real tenant (``runner.run``).

Each platform has its own module (``feishu``, ``dingtalk``, ``wecom``) that yields ``Line``s;
``common`` holds what every platform shares (the stream connection, the webhook address, the
team data); ``http`` talks only to the bot's configured ``api_base`` hosts; ``texts`` has the
sentences in zh-CN (the default, ``[server] locale``) and en-US. See docs/doctor.md.
"""
