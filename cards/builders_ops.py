"""Card builders for notices to admins: a message the relay gave up on, a source failing for an hour."""

from __future__ import annotations

from datetime import datetime

from cards.model import Card, Field, Fields, Markdown, Note

MAX_ERROR = 500


def _clip(text: str) -> str:
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 1] + "…"


def delivery_dead_card(
    *, message_id: str, bot_id: str, channel: str, target: str, title: str, attempts: int, error: str
) -> Card:
    return Card(
        title="消息投递失败",
        theme="red",
        blocks=(
            Markdown(f"一条消息尝试 {attempts} 次仍未送达，已停止重试：**{title}**"),
            Fields(
                (
                    Field("机器人", bot_id),
                    Field("发送到", f"{channel}:{target}"),
                    Field("消息 id", message_id),
                )
            ),
            Note(f"最后的错误：{_clip(error) or '（无）'}"),
        ),
    )


def source_failing_card(
    *, source_id: str, since: datetime, failures: int, error: str, tz_label: str = ""
) -> Card:
    return Card(
        title=f"数据源 {source_id} 持续失败",
        theme="red",
        blocks=(
            Markdown(
                f"数据源 **{source_id}** 从 {since:%m-%d %H:%M}{tz_label} 起连续 {failures} 次拉取失败，进度和考核数据可能不是最新。"
            ),
            Note(f"数据源返回的错误：{_clip(error)}"),
            Note("恢复后会自动继续；这条通知在本次故障期间只发一次。"),
        ),
    )


def delivery_unknown_card(
    *, message_id: str, bot_id: str, channel: str, target: str, title: str, attempts: int, error: str
) -> Card:
    """A send that went out and got no answer, on a channel that cannot tell a repeat: a person decides."""
    return Card(
        title="消息可能未送达",
        theme="orange",
        blocks=(
            Markdown(
                f"发送 **{title}** 时平台没有应答，消息可能已经到达，也可能没有。"
                "为免重复，planloop 不会自动重发。"
            ),
            Fields(
                (
                    Field("机器人", bot_id),
                    Field("发送到", f"{channel}:{target}"),
                    Field("消息 id", message_id),
                )
            ),
            Markdown(f"请到群里确认；未收到时重发：`planloop outbox resend {message_id}`"),
            Note(f"最后的错误：{_clip(error) or '（无）'}"),
        ),
    )
