"""Card builders: pure functions from plain values to neutral Cards (plan form, receipt …)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from cards import format as fmt
from cards.explain import combine_rule, explain, formula_number, stored_text
from cards.i18n import Texts, texts
from cards.model import Button, Card, Field, Fields, Form, Input, Markdown, Note, Option, Table
from cards.scale import weight_text

TARGET_HINT = "+2pp / +2% / +0.5 / =3.5"


@dataclass(frozen=True)
class KpiChoice:
    key: str
    name: str
    unit: str = ""
    counted: bool = True  # False: the week's template does not score this KPI


@dataclass(frozen=True)
class FormRow:
    """One item row of the plan form, pre-filled (role section, earlier values) and with its errors."""

    section: str = ""
    text: str = ""
    kpi: str = ""
    target: str = ""
    scope: str = ""
    causes: str = ""
    errors: Mapping[str, str] = field(default_factory=dict)


def plan_form(
    *,
    week: str,
    person_name: str,
    rows: Sequence[FormRow],
    kpis: Sequence[KpiChoice],
    link: str = "",
    error: str = "",
    with_causes: bool = False,
    note: str = "",
) -> Card:
    """The weekly plan form: one row per role section plus spare rows; every item needs a KPI and a target."""
    options = tuple(
        Option(k.key, (f"{k.name}（{k.unit}）" if k.unit else k.name) + ("" if k.counted else " · 不计分"))
        for k in kpis
    )
    inputs: list[Input] = []
    hidden: dict[str, str] = {"week": week}
    for n, row in enumerate(rows, start=1):
        label = f"{n}. {row.section}" if row.section else f"{n}. 其他事项"
        if row.section:
            hidden[f"item{n}_section"] = row.section
        inputs.append(
            Input(
                f"item{n}_text",
                label,
                "text",
                value=row.text,
                placeholder="这周要做的事，例如：优化详情页首屏",
                error=row.errors.get("text", ""),
            )
        )
        inputs.append(
            Input(
                f"item{n}_kpi",
                "关联指标",
                "select",
                options=options,
                value=row.kpi,
                error=row.errors.get("kpi", ""),
            )
        )
        inputs.append(
            Input(
                f"item{n}_target",
                "目标",
                "text",
                value=row.target,
                placeholder=TARGET_HINT,
                error=row.errors.get("target", ""),
            )
        )
        inputs.append(
            Input(
                f"item{n}_scope",
                "范围（可选）",
                "text",
                value=row.scope,
                placeholder="店铺 / SKU / 活动，默认全店",
                error=row.errors.get("scope", ""),
            )
        )
        if with_causes:
            inputs.append(
                Input(
                    f"item{n}_causes",
                    "针对的投诉原因（可选）",
                    "text",
                    value=row.causes,
                    placeholder="物流延迟、产品质量 …",
                    error=row.errors.get("causes", ""),
                )
            )
    blocks: list[Markdown | Note] = [
        Markdown(
            f"**{person_name}** 的 {week} 周计划。每一项都要关联一个指标并写目标：\n"
            "`+2pp` 百分点 · `+2%` 相对变化 · `+0.5` 绝对变化 · `=3.5` 目标值"
        ),
    ]
    if note:
        blocks.append(Note(note))
    buttons = (Button("在网页中填写", url=link),) if link else ()
    return Card(
        title=f"填写本周计划 · {week}",
        theme="red" if error else "blue",
        blocks=tuple(blocks),
        form=Form(
            "plan.submit", tuple(inputs), submit_label="提交计划", values=hidden, error=error, link=link
        ),
        buttons=buttons,
    )


@dataclass(frozen=True)
class ItemView:
    text: str
    kpi_name: str
    unit: str
    baseline: Decimal | None
    target: Decimal | None
    target_text: str
    scope: str = "shop"
    section: str = ""
    counted: bool = True  # False: the week's template does not score this KPI


UNCOUNTED = "本周模板不计此指标（不计分）"


def _item_rows(items: Sequence[ItemView]) -> tuple[tuple[str, ...], ...]:
    rows = []
    for n, item in enumerate(items, start=1):
        scope = "" if item.scope in ("", "shop") else f" @{item.scope}"
        if item.baseline is None and item.target_text:
            level = "基线待首个数据确定"
        elif item.target is None:
            level = "由主管评分"
        else:
            level = fmt.arrow(item.baseline, item.target, item.unit)
        kpi = item.kpi_name if item.counted else f"{item.kpi_name}（不计分）"
        rows.append((f"{n}. {item.text}{scope}", kpi, item.target_text or "—", level))
    return tuple(rows)


def plan_receipt(
    *,
    week: str,
    person_name: str,
    version: int,
    status: str,
    items: Sequence[ItemView],
    submitted_at: str,
    detail_url: str = "",
    note: str = "",
    title: str = "",
) -> Card:
    """What a person sees after filing: each item, its KPI, the baseline and the resolved target level."""
    status_text = {"submitted": "已提交", "late": "已提交（迟交）"}.get(status, status)
    blocks: list[Markdown | Fields | Table | Note] = [
        Fields(
            (
                Field("员工", person_name),
                Field("周", week),
                Field("版本", f"第 {version} 版"),
                Field("状态", status_text),
                Field("提交时间", submitted_at),
            )
        ),
        Table(("事项", "指标", "目标写法", "基线 → 目标"), _item_rows(items)),
    ]
    uncounted = [f"第{n}项 {i.kpi_name}：{UNCOUNTED}" for n, i in enumerate(items, start=1) if not i.counted]
    if uncounted:
        blocks.append(Note("\n".join(uncounted)))
    if note:
        blocks.append(Note(note))
    buttons = [Button("修改计划", action="plan.form", style="default")]
    if detail_url:
        buttons.append(Button("查看详情", url=detail_url))
    return Card(
        title=title or f"本周计划已提交 · {week}",
        theme="green",
        blocks=tuple(blocks),
        buttons=tuple(buttons),
    )


def private_reply_notice(title: str) -> Card:
    """What a group sees when someone's command was answered in their direct chat (no data, no links)."""
    return Card(
        title="已私信回复",
        theme="grey",
        blocks=(Markdown(f"“{title}”已通过私聊发给你，请在与机器人的私聊中查看。"),),
    )


def text_plan_errors(errors: Sequence[str]) -> Card:
    """The answer to a text plan with problems: numbered by line, nothing stored."""
    body = "\n".join(errors)
    return Card(
        title="计划未保存",
        theme="red",
        blocks=(
            Markdown(f"以下问题需要修改，**整份计划都没有保存**：\n{body}"),
            Note(
                "格式：第一行写“计划”，之后每行：事项 指标 目标 [@范围]，例如：优化详情页首屏 支付转化率 +2pp"
            ),
        ),
    )


# ---------------------------------------------------------------- appraisal (issue 4)
# Cards for the weekly appraisal: the explanation card, appeals, template switching, ratings.
# They take the frozen result as stored (``appraisals.items``: JSON rows with exact decimal
# strings), so a card shows exactly what was published.

GRADE_THEMES: Mapping[str, str] = {"S": "green", "A": "green", "B": "blue", "C": "orange", "D": "red"}
MAX_APPEAL_BUTTONS = 3  # one button per item up to this; more items → one button and a select


@dataclass(frozen=True)
class AppraisalView:
    """One published appraisal version, as a card needs it."""

    appraisal_id: int
    person_name: str
    week: str
    version: int
    template: str  # the template's name (or id)
    reason: str  # why this template: "大促模板（双11 10-20–11-11）替代 运营默认模板"
    score: Decimal
    grade: str
    rows: Sequence[Mapping[str, object]]  # scoring.Row.to_dict() as stored
    adjustments: Sequence[Mapping[str, object]] = ()
    flags: Sequence[str] = ()
    version_reason: str = ""


def _dec(value: object) -> Decimal | None:
    return None if value is None or value == "" else Decimal(str(value))


def points(v: Decimal) -> str:
    """Points out of 100 as people read them: one decimal ("107.0", "49.9")."""
    return f"{v.quantize(Decimal('0.1'), rounding='ROUND_HALF_UP')}"  # decimal.ROUND_HALF_UP


appraisal_formula = explain  # one explanation model for the card and the page (cards/explain.py)


def _row_block(row: Mapping[str, object], tr: Texts) -> Markdown:
    unit = str(row.get("unit", ""))
    weight, contribution = _dec(row.get("weight")) or Decimal(0), _dec(row.get("contribution")) or Decimal(0)
    head = tr(
        "card.row_head",
        name=row.get("name"),
        weight=weight_text(weight),
        points=points(contribution),
    )
    lines = [head]
    text, scope = str(row.get("text") or ""), str(row.get("scope") or "")
    if text:
        lines.append(tr("card.row_item", text=text) + (f" @{scope}" if scope and scope != "shop" else ""))
    if row.get("kind", "metric") == "metric" and row.get("status") != "unplanned":
        b, t, a = _dec(row.get("baseline")), _dec(row.get("target")), _dec(row.get("actual"))
        lines.append(tr("card.row_levels", levels=fmt.arrow(b, t, unit), actual=fmt.value(a, unit)))
    lines.append(appraisal_formula(row, tr.locale))
    if row.get("curve"):
        lines.append(tr("explain.curve_line", curve=stored_text(str(row.get("curve")), tr.locale)))
    return Markdown("\n".join(lines))


def shares_a_kpi(rows: Sequence[Mapping[str, object]]) -> bool:
    """Do two plan items count on one KPI (the card and the page then state how they combine)?"""
    keys = [r.get("kpi") for r in rows if r.get("status") not in ("outside", "excluded")]
    return len(keys) != len(set(keys))


def appraisal_card(
    view: AppraisalView, *, can_appeal: bool = True, detail_url: str = "", locale: str = "zh-CN"
) -> Card:
    """The explanation card: score, grade, template and why, one block per KPI with its formula, flags.
    ``locale`` words the whole card; names (person, KPI, template) are shown as they are."""
    tr = texts(locale)
    summary = [
        Field(tr("card.employee"), view.person_name),
        Field(tr("card.week"), view.week),
        Field(tr("card.score"), points(view.score)),
        Field(tr("card.grade"), view.grade),
        Field(tr("card.template"), view.template),
        Field(tr("card.why_template"), view.reason),
    ]
    if view.version > 1:
        reason = view.version_reason or tr("card.recalculated")
        summary.append(
            Field(tr("card.version"), tr("card.version_value", version=view.version, reason=reason))
        )
    blocks: list[Markdown | Fields | Note] = [Fields(tuple(summary))]
    blocks.extend(_row_block(row, tr) for row in view.rows)
    for adj in view.adjustments:
        amount = _dec(adj.get("points")) or Decimal(0)
        if amount:
            line = tr(
                "explain.adjustment",
                name=adj.get("name"),
                count=formula_number(_dec(adj.get("count")) or Decimal(0)),
                per=formula_number(_dec(adj.get("per")) or Decimal(0)),
                points=points(amount),
                low=adj.get("low"),
                high=adj.get("high"),
            )
            blocks.append(Markdown(line))
    parts = [
        points(_dec(r.get("contribution")) or Decimal(0))
        for r in view.rows
        if r.get("weight") not in ("0", 0)
    ]
    formula = " + ".join(parts) or "0"
    label = tr("card.total_label")
    for adj in view.adjustments:
        amount = _dec(adj.get("points")) or Decimal(0)
        if amount:
            label = tr("card.total_label_adjusted")
            formula += f" − {points(-amount)}" if amount < 0 else f" + {points(amount)}"
    total = tr("card.total", label=label, formula=formula, score=points(view.score), grade=view.grade)
    blocks.append(Markdown(total))
    if shares_a_kpi(view.rows):
        blocks.append(Note(combine_rule(locale)))
    if view.flags:
        blocks.append(
            Note(tr("card.flags") + "\n" + "\n".join(f"· {stored_text(flag, locale)}" for flag in view.flags))
        )
    buttons: list[Button] = []
    appealable = [r for r in view.rows if r.get("status") not in ("outside", "excluded")]
    if can_appeal and appealable:
        if len(appealable) <= MAX_APPEAL_BUTTONS:
            seen: set[str] = set()
            for row in appealable:
                key = str(row.get("kpi"))
                if key in seen:
                    continue
                seen.add(key)
                buttons.append(
                    Button(
                        tr("card.appeal_item", name=row.get("name")),
                        action="appraisal.appeal",
                        value={"appraisal": str(view.appraisal_id), "kpi": key},
                    )
                )
        else:
            buttons.append(
                Button(
                    tr("card.appeal_some"),
                    action="appraisal.appeal",
                    value={"appraisal": str(view.appraisal_id)},
                )
            )
    if detail_url:
        buttons.append(Button(tr("card.details"), url=detail_url))
    return Card(
        title=tr(
            "card.appraisal_title",
            week=view.week,
            name=view.person_name,
            score=points(view.score),
            grade=view.grade,
        ),
        theme=GRADE_THEMES.get(view.grade, "blue"),  # type: ignore[arg-type]
        blocks=tuple(blocks),
        buttons=tuple(buttons),
    )


def appeal_form(
    *,
    appraisal_id: int,
    week: str,
    items: Sequence[KpiChoice],
    kpi: str = "",
    error: str = "",
    link: str = "",
) -> Card:
    """An employee contests one item of an appraisal, with a note (data late, wrong scope …)."""
    inputs = []
    if kpi:
        chosen = next((i for i in items if i.key == kpi), None)
        intro = f"对 {week} 考核中“{chosen.name if chosen else kpi}”一项提出申诉。"
    else:
        intro = f"对 {week} 考核中的某一项提出申诉。"
        inputs.append(
            Input(
                "kpi",
                "申诉哪一项",
                "select",
                options=tuple(Option(i.key, i.name) for i in items),
                required=True,
            )
        )
    inputs.append(
        Input(
            "note",
            "申诉理由",
            "textarea",
            required=True,
            placeholder="例如：数据晚到了，周日的数据还没进系统；范围写错了，应为 A 店",
        )
    )
    values = {"appraisal": str(appraisal_id)}
    if kpi:
        values["kpi"] = kpi
    return Card(
        title=f"申诉 · {week}",
        theme="red" if error else "orange",
        blocks=(Markdown(intro), Note("主管会收到你的申诉：接受后会生成新版本的考核结果，驳回会附上回复。")),
        form=Form(
            "appraisal.appeal.submit",
            tuple(inputs),
            submit_label="提交申诉",
            values=values,
            error=error,
            link=link,
        ),
    )


@dataclass(frozen=True)
class AppealView:
    appeal_id: int
    person_name: str
    week: str
    kpi_name: str
    unit: str
    kind: str  # metric | rating | checklist
    note: str
    row: Mapping[str, object]  # the contested row as published
    status: str = "open"
    reply: str = ""


def appeal_review(view: AppealView, *, error: str = "", link: str = "") -> Card:
    """The leader's card for an open appeal: accept with a corrected value, accept by excluding, or reject."""
    what = {"rating": "更正后的星级（1–5）", "checklist": "更正后的完成任务数"}.get(
        view.kind, f"更正后的实际值（{view.unit or '无单位'}）"
    )
    inputs = (
        Input(
            "decision",
            "处理",
            "select",
            options=(
                Option("correct", "接受：更正数值"),
                Option("exclude", "接受：剔除此项"),
                Option("reject", "驳回"),
            ),
            required=True,
        ),
        Input("value", what, "number", placeholder="选“更正数值”时填写"),
        Input("reply", "回复员工", "textarea", placeholder="驳回时必须写明理由"),
    )
    return Card(
        title=f"考核申诉 · {view.person_name} · {view.week}",
        theme="red" if error else "orange",
        blocks=(
            Fields((Field("员工", view.person_name), Field("周", view.week), Field("申诉项", view.kpi_name))),
            Markdown(f"**申诉理由**：{view.note}"),
            Markdown(f"**已发布的计算**：{appraisal_formula(view.row)}"),
            Note("接受会生成新版本的考核结果并写明原因；所有处理都会记入审计日志。"),
        ),
        form=Form(
            "appraisal.appeal.decide",
            inputs,
            submit_label="提交处理",
            values={"appeal": str(view.appeal_id)},
            error=error,
            link=link,
        ),
    )


def appeal_result(view: AppealView, *, new_score: Decimal | None = None, new_grade: str = "") -> Card:
    """What the employee (and the leader, as a receipt) sees once an appeal is decided."""
    if view.status == "accepted":
        body = f"你对“{view.kpi_name}”的申诉已被接受。"
        if new_score is not None:
            body += f"新版本考核：**{points(new_score)} 分 {new_grade}**。"
        theme = "green"
    else:
        body = f"你对“{view.kpi_name}”的申诉被驳回。"
        theme = "grey"
    blocks: list[Markdown | Note] = [Markdown(body)]
    if view.reply:
        blocks.append(Markdown(f"**主管回复**：{view.reply}"))
    return Card(title=f"申诉结果 · {view.week}", theme=theme, blocks=tuple(blocks))  # type: ignore[arg-type]


@dataclass(frozen=True)
class TemplateChoice:
    id: str
    name: str
    note: str = ""  # "双11 10-20–11-11", "场景：物流高峰" …


AUTO_TEMPLATE = "auto"  # the switch card's option that ends manual switches
NO_END = "none"  # the switch card's "不设截止" (WeCom option ids may not be empty)


def template_switch_card(
    *,
    team_name: str,
    current: str,
    choices: Sequence[TemplateChoice],
    until: Sequence[Option] = (),
    error: str = "",
) -> Card:
    """A leader's one-click template switch: pick a template (or back to the rule) and an end date.

    Selects only, so the card works the same on every platform (WeCom cards cannot mix a form
    with callback buttons); any other end date can be typed: 切换模板 模板id 至 12-01."""
    options = tuple(Option(c.id, f"{c.name}（{c.note}）" if c.note else c.name) for c in choices)
    options += (Option(AUTO_TEMPLATE, "恢复自动选择"),)
    ends = tuple(until) or (Option(NO_END, "不设截止"),)
    return Card(
        title=f"切换考核模板 · {team_name}",
        theme="red" if error else "blue",
        blocks=(
            Fields((Field("团队", team_name), Field("当前", current or "按规则自动选择"))),
            Note(
                "手动切换优先于场景、时段和员工类型，到期后恢复按规则选择。"
                "其他截止日期可发送：切换模板 模板id 至 12-01"
            ),
        ),
        form=Form(
            "template.switch",
            (
                Input("template", "切换到", "select", options=options, required=True),
                Input("until", "截止（含当天）", "select", options=ends, value=ends[0].value),
            ),
            submit_label="切换",
            error=error,
        ),
    )


def template_switched(*, team_name: str, template: str, window: str, replaced: str, by: str) -> Card:
    """The receipt of a switch, posted to the leader (and the team chat)."""
    body = f"**{by}** 将 {team_name} 的考核模板切换为 **{template}**（{window}）。"
    if replaced:
        body += f"\n原来：{replaced}"
    return Card(
        title=f"考核模板已切换 · {team_name}", theme="green", blocks=(Markdown(body),), toast="已切换"
    )


def rating_form(
    *,
    week: str,
    people: Sequence[KpiChoice],
    kpis: Sequence[KpiChoice],
    error: str = "",
    weeks: Sequence[str] = (),
    link: str = "",
) -> Card:
    """A leader rates a non-metric KPI (1–5 stars) or records a checklist's done / planned tasks."""
    week_options = tuple(Option(w, w) for w in (weeks or (week,)))
    return Card(
        title="主管评分 / 任务完成登记",
        theme="red" if error else "blue",
        blocks=(
            Markdown("评分类指标选 1–5 星；清单类指标（如学习进度）填完成数和计划数。"),
            Note("1 星 0 % · 2 星 60 % · 3 星 80 % · 4 星 100 % · 5 星 120 %（模板可另定）"),
        ),
        form=Form(
            "appraisal.rate",
            (
                Input("week", "周", "select", options=week_options, value=week, required=True),
                Input(
                    "person",
                    "员工",
                    "select",
                    options=tuple(Option(p.key, p.name) for p in people),
                    required=True,
                ),
                Input(
                    "kpi", "指标", "select", options=tuple(Option(k.key, k.name) for k in kpis), required=True
                ),
                Input(
                    "stars",
                    "星级（评分类）",
                    "select",
                    options=tuple(Option(str(n), f"{n} 星") for n in range(1, 6)),
                ),
                Input("done", "完成任务数（清单类）", "number"),
                Input("planned", "计划任务数（清单类，可选）", "number"),
            ),
            submit_label="保存",
            error=error,
            link=link,
        ),
    )


# ---------------------------------------------------------------- digests and reminders (issue 11)
# Plan reminders, the leader's "who has not planned" list, the weekly appraisal table and the
# start-of-week summary (a leader card with personal scores, a group card with aggregates and
# lag flags only). Texts come from cards.i18n, so every builder takes the locale's ``Texts``.
# Dates and times arrive already formatted in the team's zone.

MAX_DIGEST_LAG_ROWS = 20  # lagging items listed on a summary before "另有 N 项"
MAX_LEAVE_BUTTONS = 3  # per-person leave buttons on the missing-plans card (DingTalk shows 5 buttons)
GRADE_ORDER = ("S", "A", "B", "C", "D")


def _signed(v: Decimal) -> str:
    return f"+{points(v)}" if v > 0 else f"−{points(-v)}" if v < 0 else "±0.0"


def grade_counts(grades: Mapping[str, int]) -> str:
    """ "S 1 · A 3 · B 2 · C 0 · D 1" (every band, so a missing one reads as 0, not as forgotten)."""
    bands = [*GRADE_ORDER, *sorted(g for g in grades if g not in GRADE_ORDER)]
    return " · ".join(f"{g} {grades.get(g, 0)}" for g in bands)


def plan_reminder_card(
    tr: Texts,
    *,
    week: str,
    days: str,
    person_name: str,
    deadline: str,
    link: str = "",
    late: bool = False,
    leader_name: str = "",
) -> Card:
    """A direct reminder to file this week's plan: a button opens the form (``plan.form``), and the
    signed web form for platforms whose cards have no text inputs. ``leader_name``: a leader's nudge."""
    body = tr(
        "reminder.late_body" if late else "reminder.body", name=person_name, days=days, deadline=deadline
    )
    buttons = [Button(tr("button.fill"), action="plan.form", style="primary")]
    if link:
        buttons.append(Button(tr("button.web"), url=link))
    title = (
        tr("reminder.nudge_title", leader=leader_name, week=week)
        if leader_name
        else tr("reminder.title", week=week)
    )
    return Card(
        title=title,
        theme="orange",
        blocks=(Markdown(body), Note(tr("reminder.hint"))),
        buttons=tuple(buttons),
    )


@dataclass(frozen=True)
class MissingPlan:
    """A member without a plan at the deadline; ``state``: reminded | paused | unreminded."""

    person_id: str
    name: str
    state: str = "reminded"


def plan_missing_card(
    tr: Texts,
    *,
    team_id: str,
    team_name: str,
    week: str,
    days: str,
    deadline: str,
    missing: Sequence[MissingPlan],
    on_leave: Sequence[str] = (),
    leave_until: str = "",
) -> Card:
    """To the leader at the deadline: who has not planned, with a remind-again button and, for a short
    list, a one-click leave (to ``leave_until``, the week's Sunday) per person."""
    rows = tuple((m.name, tr(f"missing.{m.state}")) for m in missing)
    blocks: list[Markdown | Table | Note] = [
        Markdown(tr("missing.body", deadline=deadline, days=days)),
        Table((tr("missing.member"), tr("missing.state")), rows),
    ]
    if on_leave:
        blocks.append(Note(tr("missing.on_leave", names=tr.names(on_leave))))
    blocks.append(Note(tr("missing.hint")))
    buttons: list[Button] = []
    if any(m.state != "paused" for m in missing):
        buttons.append(
            Button(tr("button.remind_again"), "plan.remind", {"team": team_id, "week": week}, style="primary")
        )
    buttons.append(Button(tr("button.team_progress"), "progress.show"))
    if len(missing) <= MAX_LEAVE_BUTTONS and leave_until:
        buttons.extend(
            Button(
                tr("button.leave", name=m.name), "leave.mark", {"person": m.person_id, "until": leave_until}
            )
            for m in missing
        )
    return Card(
        title=tr("missing.title", team=team_name, week=week, count=len(missing)),
        theme="orange",
        blocks=tuple(blocks),
        buttons=tuple(buttons),
    )


@dataclass(frozen=True)
class ScoreRow:
    """One person's published result as the leader's table shows it."""

    name: str
    score: Decimal
    grade: str
    template: str
    version: int = 1


def appraisal_table_card(
    tr: Texts, *, team_name: str, week: str, rows: Sequence[ScoreRow], published_at: str
) -> Card:
    """To the leader after the weekly run: score and grade per person, highest first."""
    ordered = sorted(rows, key=lambda r: (-r.score, r.name))
    table = tuple(
        (
            r.name,
            points(r.score) + (tr("table.version", version=r.version) if r.version > 1 else ""),
            r.grade,
            r.template,
        )
        for r in ordered
    )
    grades: dict[str, int] = {}
    for r in rows:
        grades[r.grade] = grades.get(r.grade, 0) + 1
    average = sum((r.score for r in rows), Decimal(0)) / len(rows) if rows else None
    return Card(
        title=tr("table.title", team=team_name, week=week),
        theme="blue",
        blocks=(
            Markdown(tr("table.body", count=len(rows), at=published_at)),
            Fields(
                (
                    Field(tr("table.average"), points(average) if average is not None else tr("no_data")),
                    Field(tr("table.grades"), grade_counts(grades)),
                )
            ),
            Table((tr("table.member"), tr("table.score"), tr("table.grade"), tr("table.template")), table),
            Note(tr("table.note")),
        ),
    )


@dataclass(frozen=True)
class MemberWeek:
    """One member's last week on the leader's summary; ``planned`` False: no plan that week."""

    name: str
    planned: bool
    completion: Decimal | None = None  # average over the items with data
    lagging: int = 0
    score: Decimal | None = None
    grade: str = ""
    delta: Decimal | None = None  # score change vs the week before


@dataclass(frozen=True)
class Mover:
    name: str
    before: Decimal
    after: Decimal


@dataclass(frozen=True)
class LagFlag:
    name: str
    text: str
    kpi_name: str
    completion: Decimal | None = None


@dataclass(frozen=True)
class TemplateLine:
    """A template in force this week for ``count`` members, why, and whether it is new this week."""

    template: str
    reason: str
    count: int
    new: bool = False


@dataclass(frozen=True)
class WeekDigest:
    """Everything the start-of-week summary says, computed by ``handlers.digests``."""

    team_name: str
    week: str  # this week
    last_week: str
    last_days: str  # "11-16–11-22"
    members: Sequence[MemberWeek]
    average_completion: Decimal | None
    average_score: Decimal | None
    grades: Mapping[str, int]
    movers: Sequence[Mover]
    lagging: Sequence[LagFlag]
    not_planned: Sequence[str]
    on_leave: Sequence[str]
    templates: Sequence[TemplateLine]
    planned: int  # plans filed this week so far
    eligible: int  # members expected to plan this week

    @property
    def empty(self) -> bool:
        return not any(m.planned or m.score is not None for m in self.members)


def _overview(tr: Texts, d: WeekDigest) -> Fields:
    return Fields(
        (
            Field(tr("summary.last_week"), tr("summary.week_days", week=d.last_week, days=d.last_days)),
            Field(tr("summary.avg_completion"), tr.percent(d.average_completion)),
            Field(
                tr("summary.avg_score"),
                points(d.average_score) if d.average_score is not None else tr("no_data"),
            ),
            Field(tr("summary.grades"), grade_counts(d.grades)),
            Field(tr("summary.planned"), tr("summary.planned_value", planned=d.planned, eligible=d.eligible)),
        )
    )


def _templates_block(tr: Texts, d: WeekDigest) -> Markdown:
    lines = [tr("summary.templates")]
    for t in d.templates:
        line = tr(
            "summary.template_line",
            template=t.template,
            reason=t.reason,
            count=tr("people", count=t.count),
        )
        lines.append(line + (tr("summary.template_new") if t.new else ""))
    return Markdown("\n".join(lines))


def _lag_blocks(tr: Texts, d: WeekDigest, *, with_numbers: bool) -> list[Markdown | Table | Note]:
    if not d.lagging:
        return [Markdown(tr("summary.no_lagging"))]
    shown = d.lagging[:MAX_DIGEST_LAG_ROWS]
    out: list[Markdown | Table | Note] = [Markdown(tr("summary.lagging", count=len(d.lagging)))]
    if with_numbers:
        out.append(
            Table(
                (tr("summary.member"), tr("summary.lagging_items"), tr("summary.completion")),
                tuple((f.name, f"{f.text}（{f.kpi_name}）", tr.percent(f.completion)) for f in shown),
            )
        )
    else:
        out.append(
            Markdown(
                "\n".join(tr("summary.lag_flag", name=f.name, text=f.text, kpi=f.kpi_name) for f in shown)
            )
        )
    if len(d.lagging) > len(shown):
        out.append(Note(tr("summary.more", count=len(d.lagging) - len(shown), week=d.last_week)))
    return out


def monday_summary_leader_card(tr: Texts, d: WeekDigest) -> Card:
    """The leader's start-of-week card: last week per person (completion, score, grade, change), the
    biggest movers, items still lagging, who has not planned yet, and the templates in force."""
    blocks: list[Markdown | Fields | Table | Note] = [_overview(tr, d)]
    if d.empty:
        blocks.append(Markdown(tr("summary.nothing")))
    else:

        def key(m: MemberWeek) -> tuple[int, Decimal, str]:
            return (m.score is None, -(m.score or Decimal(0)), m.name)

        rows = tuple(
            (
                m.name,
                tr.percent(m.completion) if m.planned else tr("summary.no_plan"),
                str(m.lagging) if m.lagging else "—",
                points(m.score) if m.score is not None else "—",
                m.grade or "—",
                _signed(m.delta) if m.delta is not None else "—",
            )
            for m in sorted(d.members, key=key)
        )
        blocks.append(
            Table(
                (
                    tr("summary.member"),
                    tr("summary.completion"),
                    tr("summary.lagging_items"),
                    tr("summary.score"),
                    tr("summary.grade"),
                    tr("summary.delta"),
                ),
                rows,
            )
        )
        if d.movers:
            movers = tr.table["sep"].join(
                tr(
                    "summary.mover",
                    name=m.name,
                    before=points(m.before),
                    after=points(m.after),
                    delta=_signed(m.after - m.before),
                )
                for m in d.movers
            )
            blocks.append(Markdown(tr("summary.movers", movers=movers)))
        else:
            blocks.append(Markdown(tr("summary.no_movers")))
        blocks.extend(_lag_blocks(tr, d, with_numbers=True))
    planning = [Field(tr("summary.not_planned"), tr.names(d.not_planned))]
    if d.on_leave:
        planning.append(Field(tr("summary.on_leave"), tr.names(d.on_leave)))
    blocks.append(Fields(tuple(planning)))
    blocks.append(_templates_block(tr, d))
    blocks.append(Note(tr("summary.leader_note")))
    return Card(
        title=tr("summary.title_leader", team=d.team_name, week=d.week),
        theme="orange" if d.lagging else "blue",
        blocks=tuple(blocks),
        buttons=(Button(tr("button.team_progress"), "progress.show"),),
    )


def monday_summary_chat_card(tr: Texts, d: WeekDigest) -> Card:
    """The group chat's start-of-week card: team figures, lag flags and templates; no personal score."""
    blocks: list[Markdown | Fields | Table | Note] = [_overview(tr, d)]
    if d.empty:
        blocks.append(Markdown(tr("summary.nothing")))
    else:
        blocks.extend(_lag_blocks(tr, d, with_numbers=False))
    blocks.append(_templates_block(tr, d))
    blocks.append(Note(tr("summary.private")))
    return Card(
        title=tr("summary.title", team=d.team_name, week=d.week),
        theme="orange" if d.lagging else "blue",
        blocks=tuple(blocks),
    )
