"""Whole HTML pages for /p/ (plan form, plan detail, appraisal detail, friendly refusals).

Pure: plain view values in, an HTML document out; every user string is escaped. Mobile-first
(work-chat in-app browsers), zh-CN, readable and submittable without JavaScript: the only
script is the plan form's live target preview, which the server also fills in on load.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from html import escape

from cards import charts, scale
from cards import format as fmt
from cards.explain import COMBINE_RULE, explain
from cards.model import Card, Form, Input
from cards.render.html import markdown
from cards.render.html import render as render_card

STYLE = """
:root{--blue:#3370ff;--green:#2ea121;--orange:#f80;--red:#f54a45;--grey:#8f959e;--line:#dee0e3}
*{box-sizing:border-box}
body{margin:0;font:15px/1.55 -apple-system,"PingFang SC","Microsoft YaHei","Noto Sans CJK SC",sans-serif;
 background:#f5f6f7;color:#1f2329;-webkit-text-size-adjust:100%}
header.top{background:var(--blue);color:#fff;padding:12px 16px}
header.top h1{font-size:17px;margin:0}
header.top .sub{font-size:13px;opacity:.9}
main{max-width:760px;margin:0 auto;padding:12px}
section,.panel{background:#fff;border:1px solid var(--line);border-radius:8px;padding:12px;margin:0 0 12px}
h2{font-size:16px;margin:0 0 8px}
label{display:block;font-size:13px;color:#646a73;margin:8px 0 2px}
input,select,textarea{font:inherit;width:100%;padding:9px 10px;border:1px solid #c9cdd4;border-radius:6px;
 background:#fff;min-height:42px}
fieldset{border:1px solid var(--line);border-radius:8px;margin:0 0 12px;padding:8px 12px 12px;background:#fff}
legend{font-weight:600;padding:0 4px}
button,.btn{display:inline-block;font:inherit;padding:10px 18px;border-radius:6px;border:1px solid var(--blue);
 background:var(--blue);color:#fff;text-decoration:none;min-height:42px;cursor:pointer}
.btn.plain{background:#fff;color:var(--blue)}
.submit{position:sticky;bottom:0;background:#f5f6f7;padding:8px 0}
.submit button{width:100%}
.err{color:var(--red);font-size:13px;margin-top:2px}
.alert{background:#fff0f0;border:1px solid var(--red);color:var(--red);border-radius:8px;padding:10px 12px;margin:0 0 12px}
.notice{background:#fff7e8;border:1px solid #ffd591;border-radius:8px;padding:10px 12px;margin:0 0 12px}
.ok{background:#effaf0;border:1px solid var(--green);border-radius:8px;padding:10px 12px;margin:0 0 12px}
output.pv{display:block;font-size:13px;color:#646a73;margin-top:4px;min-height:1.2em}
output.pv.bad{color:var(--red)}
.muted,.note{color:var(--grey);font-size:13px}
table{border-collapse:collapse;width:100%;font-size:14px}
th,td{border-bottom:1px solid #eef0f1;padding:6px 4px;text-align:left;vertical-align:top}
th a{color:inherit}
td.num,th.num{text-align:right;white-space:nowrap}
.scroll{overflow-x:auto}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:0}
dl.kv dt{color:var(--grey)}dl.kv dd{margin:0}
.lag{color:var(--orange);font-weight:600}
.done{color:var(--green);font-weight:600}
.badge{display:inline-block;border-radius:10px;padding:0 8px;font-size:12px;background:#eef0f1}
.badge.lag{background:#fff3e0}
.grade{font-size:28px;font-weight:700;color:var(--blue)}
svg.chart{display:block;max-width:100%;height:auto}
.formula{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:13px;color:#373c43;word-break:break-all}
.card{background:#fff;border:1px solid var(--line);border-radius:8px;overflow:hidden;margin:0 0 12px}
.card .title{color:#fff;padding:8px 12px;font-weight:600;background:var(--blue)}
.card.theme-green .title{background:var(--green)}.card.theme-red .title{background:var(--red)}
.card>div,.card>dl,.card>table{margin:8px 12px}
.card .fields{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px}
.card .fields dt{color:var(--grey)}.card .fields dd{margin:0}
code{background:#eef0f1;border-radius:4px;padding:0 4px;font-size:13px}
.bare .card{border:0;margin:0 0 12px}.bare .card .title{display:none}
textarea{min-height:96px}
.buttons{display:flex;gap:8px;flex-wrap:wrap;margin:12px 0}
@media (min-width:640px){.row2{display:grid;grid-template-columns:1fr 1fr;gap:0 12px}}
"""

# ---------------------------------------------------------------- the document shell


def document(title: str, body: str, *, subtitle: str = "", script: str = "", script_nonce: str = "") -> str:
    """A whole page. ``script`` runs only with ``script_nonce`` (the page's CSP allows nothing else)."""
    sub = f'<div class="sub">{escape(subtitle)}</div>' if subtitle else ""
    tail = f'<script nonce="{escape(script_nonce)}">{script}</script>' if script and script_nonce else ""
    return (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer"><meta name="robots" content="noindex, nofollow">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f'<header class="top"><h1>{escape(title)}</h1>{sub}</header><main>{body}</main>{tail}</body></html>'
    )


def message_page(title: str, text: str, *, hint: str = "") -> str:
    """A friendly page for a refused or broken link: says what to do, shows no data."""
    more = f'<p class="muted">{escape(hint)}</p>' if hint else ""
    return document(title, f'<section role="alert"><p>{escape(text)}</p>{more}</section>')


# ---------------------------------------------------------------- the plan form


@dataclass(frozen=True)
class KpiInfo:
    """What the form page knows of a KPI: the preview script resolves targets from ``baseline``."""

    key: str
    name: str
    unit: str
    direction: str  # up | down
    kind: str  # metric | rating | checklist
    baseline: Decimal | None
    scope: str = "shop"
    uncounted: str = ""  # "本周模板不计此指标（不计分）" when the week's template does not count it


_ITEM = re.compile(r"^item(\d+)_(\w+)$")
_ROLE = {"text": "text", "kpi": "kpi", "target": "target", "scope": "scope", "causes": "causes"}


def _control(field: Input, role: str = "") -> str:
    ident = f'id="f-{escape(field.name)}" name="{escape(field.name)}"'
    data = f' data-role="{role}"' if role else ""
    invalid = ' aria-invalid="true"' if field.error else ""
    if field.kind == "select":
        opts = "".join(
            f'<option value="{escape(o.value)}"{" selected" if o.value == field.value else ""}>'
            f"{escape(o.label)}</option>"
            for o in field.options
        )
        return f'<select {ident}{data}{invalid}><option value="">请选择</option>{opts}</select>'
    if field.kind == "textarea":
        return (
            f'<textarea {ident}{data}{invalid} placeholder="{escape(field.placeholder)}">'
            f"{escape(field.value)}</textarea>"
        )
    kind = "number" if field.kind == "number" else "text"
    return (
        f'<input type="{kind}" {ident}{data}{invalid} value="{escape(field.value)}" '
        f'placeholder="{escape(field.placeholder)}" autocomplete="off">'
    )


def _field(field: Input, label: str = "", role: str = "") -> str:
    text = label or field.label
    err = f'<div class="err" id="e-{escape(field.name)}">{escape(field.error)}</div>' if field.error else ""
    return f'<label for="f-{escape(field.name)}">{escape(text)}</label>{_control(field, role)}{err}'


def _grouped(form: Form) -> tuple[dict[int, dict[str, Input]], list[Input]]:
    items: dict[int, dict[str, Input]] = {}
    loose: list[Input] = []
    for one in form.inputs:
        m = _ITEM.match(one.name)
        if m:
            items.setdefault(int(m.group(1)), {})[m.group(2)] = one
        else:
            loose.append(one)
    return items, loose


def _kpi_json(kpis: Sequence[KpiInfo]) -> str:
    data = {
        k.key: {
            "name": k.name,
            "unit": k.unit,
            "direction": k.direction,
            "kind": k.kind,
            "baseline": None if k.baseline is None else f"{k.baseline:f}",
            "scope": k.scope,
            "whole": k.unit in fmt.WHOLE_UNITS,
            "uncounted": k.uncounted,
        }
        for k in kpis
    }
    # "<" escaped so no value can close the <script> element
    return json.dumps(data, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e")


_CODE = re.compile(r"`([^`<>]+)`")


def _code(html_text: str) -> str:
    """`+2pp` -> <code>+2pp</code> in already escaped text (the chat cards show the backticks)."""
    return _CODE.sub(r"<code>\1</code>", html_text)


def plan_form_page(
    card: Card,
    *,
    post_url: str,
    nonce: str,
    kpis: Sequence[KpiInfo],
    previews: Mapping[int, tuple[str, bool]],
    script_nonce: str,
    notice: str = "",
) -> str:
    """The chat card's plan form as a page: one fieldset per item, a live preview of each target."""
    form = card.form
    if form is None:  # pragma: no cover - the caller passes the plan form card
        raise ValueError("the plan form card has no form")
    parts: list[str] = []
    intro = "".join(
        f'<div class="md">{_code(markdown(b.text))}</div>' for b in card.blocks if hasattr(b, "text")
    )
    parts.append(f'<section class="intro">{intro}</section>')
    if notice:
        parts.append(f'<div class="notice">{escape(notice)}</div>')
    if form.error:
        parts.append(f'<div class="alert" role="alert">{escape(form.error)}</div>')
    parts.append(f'<form method="post" action="{escape(post_url)}" class="planform" accept-charset="utf-8">')
    for name, value in form.values.items():
        parts.append(f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">')
    parts.append(f'<input type="hidden" name="_nonce" value="{escape(nonce)}">')
    items, loose = _grouped(form)
    for n in sorted(items):
        fields = items[n]
        text = fields.get("text")
        legend = text.label if text else f"{n}."
        parts.append(f'<fieldset class="item" data-item="{n}"><legend>{escape(legend)}</legend>')
        if text:
            parts.append(_field(text, "要做的事", "text"))
        parts.append('<div class="row2"><div>')
        if "kpi" in fields:
            parts.append(_field(fields["kpi"], role="kpi"))
        parts.append("</div><div>")
        if "target" in fields:
            parts.append(_field(fields["target"], role="target"))
        parts.append("</div></div>")
        shown, bad = previews.get(n, ("", False))
        parts.append(
            f'<output class="pv{" bad" if bad else ""}" id="pv-{n}" aria-live="polite">{escape(shown)}</output>'
        )
        for key in ("scope", "causes"):
            if key in fields:
                parts.append(_field(fields[key], role=_ROLE[key]))
        for key, extra in fields.items():
            if key not in _ROLE:
                parts.append(_field(extra))
        parts.append("</fieldset>")
    for one in loose:
        parts.append(f'<div class="panel">{_field(one)}</div>')
    parts.append(
        f'<div class="submit"><button type="submit">{escape(form.submit_label)}</button></div></form>'
    )
    rows = "".join(
        f"<tr><td>{escape(k.name)}</td><td>{escape(_direction(k))}</td>"
        f'<td class="num">{escape(_baseline_text(k))}</td></tr>'
        for k in kpis
    )
    parts.append(
        '<section><h2>指标与当前基线</h2><div class="scroll"><table class="kpis">'
        '<thead><tr><th>指标</th><th>方向</th><th class="num">当前基线</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></div>"
        '<p class="muted">基线取提交时的最新数据；范围不是全店时，以该范围的数据为准。</p></section>'
    )
    parts.append(f'<script type="application/json" id="kpi-data">{_kpi_json(kpis)}</script>')
    return document(card.title, "".join(parts), script=PREVIEW_JS, script_nonce=script_nonce)


def _direction(k: KpiInfo) -> str:
    if k.kind == "rating":
        return "主管评分"
    if k.kind == "checklist":
        return "任务数"
    return "越高越好" if k.direction == "up" else "越低越好"


def _baseline_text(k: KpiInfo) -> str:
    if k.kind != "metric":
        return "—"
    return fmt.value(k.baseline, k.unit) if k.baseline is not None else "暂无数据"


# The preview mirrors appraisal.targets (parse_target + resolve) and cards.format.value, word for
# word; tests run it in Chromium against the Python functions. ES5 for old in-app webviews.
PREVIEW_JS = r"""
(function () {
  var node = document.getElementById('kpi-data');
  if (!node) { return; }
  var KPIS = JSON.parse(node.textContent || '{}');
  var RE = /^([+\-]|=\s*-?)\s*(\d+(?:\.\d+)?|\.\d+)\s*(pp|个百分点|百分点|%)?$/i;
  function norm(t) {
    if (t.normalize) { t = t.normalize('NFKC'); }  // full-width ２ｐｐ from a Chinese IME
    return t.replace(/＋/g, '+').replace(/[－−]/g, '-').replace(/％/g, '%').replace(/＝/g, '=')
      .replace(/．/g, '.').replace(/，/g, ',').replace(/,/g, '');
  }
  function round2(v) {
    var s = v < 0 ? -1 : 1;
    return s * Number(Math.round(Number(Math.abs(v) + 'e2')) + 'e-2');
  }
  function group(t) {
    var neg = t.charAt(0) === '-', body = neg ? t.slice(1) : t, p = body.split('.');
    p[0] = p[0].replace(/\B(?=(\d{3})+(?!\d))/g, ',');
    return (neg ? '-' : '') + p.join('.');
  }
  function value(v, unit, whole) {
    if (v === null) { return '—'; }
    var t, r = round2(v);
    if (whole) { return group(String((v < 0 ? -1 : 1) * Math.round(Math.abs(v)))) + ' ' + unit; }
    if (unit === '%') { return r.toFixed(2) + ' %'; }
    if (Math.abs(v) >= 1000) {
      t = (Math.round(v) === v) ? group(v.toFixed(0)) : group(r.toFixed(2));
    } else {
      t = r.toFixed(2);
      if (/\.00$/.test(t)) { t = t.slice(0, -3); }
    }
    return unit ? t + ' ' + unit : t;
  }
  function plain(n) { return String(Number(n)); }
  function preview(key, text, scope) {
    var k = KPIS[key];
    if (!k) { return ['', false]; }
    if (k.kind === 'rating') { return ['由主管评分，无需写目标', false]; }
    var b = k.baseline === null ? null : parseFloat(k.baseline);
    var raw = (text || '').trim();
    if (!raw) {
      if (k.kind === 'checklist') { return ['写计划完成的任务数，例如 =5', false]; }
      return [b === null ? '暂无基线数据' : '当前基线 ' + value(b, k.unit, k.whole), false];
    }
    var m = RE.exec(norm(raw));
    if (!m) { return ['目标“' + raw + '”看不懂：请写 +2pp（百分点）、+2%（相对）、+0.5（绝对变化）或 =3.5（目标值）', true]; }
    var num = parseFloat(m[2]), sign = m[1].replace(/ /g, ''), unit = (m[3] || '').toLowerCase();
    var kind, amount, percent = false;
    if (num > 1e12) { return ['目标“' + raw + '”大得不合理', true]; }
    if (sign.charAt(0) === '=') {
      if (unit !== '' && unit !== '%') { return ['目标值“' + raw + '”不要带单位：写 =3.5', true]; }
      kind = 'level'; amount = sign === '=-' ? -num : num; percent = unit === '%';
    } else {
      amount = sign === '+' ? num : -num;
      if (unit === 'pp' || unit === '个百分点' || unit === '百分点') { kind = 'pp'; }
      else if (unit === '%') {
        if (amount > 10000) { return ['目标“' + raw + '”大得不合理（超过 +10000%）', true]; }
        if (amount <= -100) { return ['目标“' + raw + '”：相对下降不能达到或超过 100%', true]; }
        kind = 'relative';
      } else { kind = 'delta'; }
    }
    var name = k.name || '该指标';
    if (k.kind === 'checklist') {
      if (kind !== 'level' || Math.floor(amount) !== amount || amount < 1) {
        return [name + '的目标写计划完成的任务数，例如 =5', true];
      }
      return ['计划完成 ' + plain(amount) + ' 个任务', false];
    }
    if (kind === 'pp' && k.unit !== '%') {
      return [name + '的单位是“' + (k.unit || '无') + '”，不能用百分点（pp）；请用 +数值 或 +%', true];
    }
    var where = scope.replace(/^@+/, '');
    if (where && where !== k.scope) {
      return ['范围“' + where + '”的基线在提交时按该范围的数据确定', false];
    }
    if (b === null && kind !== 'level') { return ['还没有数据：基线待首个数据确定', false]; }
    if (kind === 'level' && percent && k.unit !== '%') {
      return [name + '的单位是“' + (k.unit || '无') + '”，目标值不要带 %：写 =' + plain(amount), true];
    }
    var level;
    if (kind === 'level') { level = amount; }
    else if (kind === 'relative') {
      if (b === 0) { return [name + '当前为 0，相对目标没有意义；请用 +数值 或 =目标值', true]; }
      level = b + Math.abs(b) * amount / 100;
    } else { level = b + amount; }
    if (b !== null) {
      if (level === b) { return [name + '的目标等于基线（' + plain(b) + '），无法衡量完成度', true]; }
      var better = k.direction === 'up' ? level > b : level < b;
      if (!better) {
        var way = k.direction === 'up' ? '越高越好，目标应高于' : '越低越好，目标应低于';
        return [name + way + '基线（' + plain(b) + '）', true];
      }
    }
    if (k.unit === '%' && level < 0 && (b === null || b >= 0)) { return [name + '的目标低于 0%', true]; }
    if (b === null) { return ['目标 ' + value(level, k.unit, k.whole) + '（基线待首个数据确定）', false]; }
    return [value(b, k.unit, k.whole) + ' → ' + value(level, k.unit, k.whole), false];
  }
  window.planloopPreview = preview;
  function refresh(set) {
    var kpi = set.querySelector('[data-role=kpi]'), target = set.querySelector('[data-role=target]');
    var scope = set.querySelector('[data-role=scope]'), out = set.querySelector('output.pv');
    var text = set.querySelector('[data-role=text]');
    if (!kpi || !target || !out) { return; }
    var r = preview(kpi.value, target.value, scope ? scope.value.trim() : '');
    var k = KPIS[kpi.value], filled = (text && text.value) || target.value;
    if (k && k.uncounted && filled) { r[0] = r[0] ? r[0] + '；' + k.uncounted : k.uncounted; }
    out.textContent = r[0];
    out.className = r[1] ? 'pv bad' : 'pv';
  }
  var sets = document.querySelectorAll('fieldset.item');
  for (var i = 0; i < sets.length; i++) {
    (function (set) {
      var h = function () { refresh(set); };
      set.addEventListener('input', h);
      set.addEventListener('change', h);
      refresh(set);
    })(sets[i]);
  }
})();
"""


def _bare(card: Card) -> str:
    """The card's blocks as on the chat card, without its title bar (the page header has it)."""
    body = render_card(replace(card, form=None, buttons=tuple(b for b in card.buttons if b.url)))
    return f'<div class="bare">{body}</div>'


def card_page(card: Card) -> str:
    """A handler's answer shown as a page (a refusal it explained, a confirmation)."""
    return document(card.title, _bare(card))


def form_page(card: Card, *, post_url: str, nonce: str) -> str:
    """Any other chat form as a page (appeal, appeal review, rating): the same fields, no script."""
    form = card.form
    if form is None:  # pragma: no cover - the caller checks
        raise ValueError("the card has no form")
    parts = [_bare(replace(card, buttons=()))]
    if form.error:
        parts.append(f'<div class="alert" role="alert">{escape(form.error)}</div>')
    parts.append(f'<form method="post" action="{escape(post_url)}" class="cardpage" accept-charset="utf-8">')
    for name, value in form.values.items():
        parts.append(f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">')
    parts.append(f'<input type="hidden" name="_nonce" value="{escape(nonce)}">')
    parts.append('<section class="fields">')
    for one in form.inputs:
        label = f"{one.label}（必填）" if one.required else one.label
        parts.append(_field(one, label))
    parts.append("</section>")
    parts.append(
        f'<div class="submit"><button type="submit">{escape(form.submit_label)}</button></div></form>'
    )
    return document(card.title, "".join(parts))


def receipt_page(card: Card, *, banner: str, links: Sequence[tuple[str, str]]) -> str:
    """The receipt after a web submit: the same card the chat gets; its buttons are the chat's
    (a callback, an absolute link), the page's own links replace them."""
    web_card = replace(card, buttons=())
    buttons = "".join(
        f'<a class="btn{" plain" if i else ""}" href="{escape(url)}">{escape(label)}</a>'
        for i, (label, url) in enumerate(links)
    )
    ok = f'<div class="ok" role="status">{escape(banner)}</div>' if banner else ""
    body = f'{ok}{render_card(web_card)}<div class="buttons">{buttons}</div>'
    return document(card.title, body)


# ---------------------------------------------------------------- plan detail


def empty_page(title: str, text: str, *, subtitle: str = "", links: Sequence[tuple[str, str]] = ()) -> str:
    """A page with nothing to show yet (no plan this week), and what to do about it."""
    return document(title, f"<section><p>{escape(text)}</p></section>{links_html(links)}", subtitle=subtitle)


@dataclass(frozen=True)
class PlanItemView:
    n: int
    text: str
    section: str
    kpi_name: str
    unit: str
    direction: str
    kind: str
    scope: str
    target_text: str
    baseline: Decimal | None
    target: Decimal | None
    day_labels: tuple[str, ...] = ()
    values: tuple[Decimal | None, ...] = ()
    expected: tuple[Decimal | None, ...] = ()
    off_days: tuple[bool, ...] = ()
    latest: Decimal | None = None
    completion: Decimal | None = None
    pace: Decimal | None = None
    lagging: bool = False


@dataclass(frozen=True)
class PlanView:
    person_name: str
    week: str
    version: int
    status: str
    submitted_at: str
    items: tuple[PlanItemView, ...]
    elapsed: int
    workdays: int
    lag_margin: int
    links: tuple[tuple[str, str], ...] = ()
    pace_note: str = ""


def _item_state(item: PlanItemView) -> str:
    if item.kind == "rating":
        return '<span class="badge">由主管评分</span>'
    if item.completion is None:
        return '<span class="badge">暂无数据</span>'
    if item.completion >= 1:
        return f'<span class="done">已达成 {escape(fmt.percent(item.completion))}</span>'
    if item.lagging:
        return f'<span class="badge lag lagflag">落后：完成 {escape(fmt.percent(item.completion))}</span>'
    return f'<span class="badge">正常：完成 {escape(fmt.percent(item.completion))}</span>'


def _two_lines(label: str) -> str:
    """ "11-23 一" -> "一" over "11-23": seven dates side by side do not fit a phone on one line."""
    first, _, second = label.partition(" ")
    return f"{second}\n{first}" if second else first


def _item_section(item: PlanItemView, view: PlanView) -> str:
    scope = "" if item.scope in ("", "shop") else f" @{item.scope}"
    if item.kind == "rating":
        level = "由主管评分"
    elif item.baseline is None:
        level = "基线待首个数据确定"
    else:
        level = fmt.arrow(item.baseline, item.target, item.unit)
    kv = (
        f"<dt>指标</dt><dd>{escape(item.kpi_name)}</dd>"
        f"<dt>目标写法</dt><dd>{escape(item.target_text or '—')}</dd>"
        f"<dt>基线 → 目标</dt><dd>{escape(level)}</dd>"
        f"<dt>最新值</dt><dd>{escape(fmt.value(item.latest, item.unit))}</dd>"
        f"<dt>应有进度</dt><dd>{escape(fmt.percent(item.pace) if item.pace is not None else '—')}</dd>"
        f"<dt>状态</dt><dd>{_item_state(item)}</dd>"
    )
    chart = ""
    if item.day_labels:
        target = f"，目标 {fmt.value(item.target, item.unit)}" if item.target is not None else ""
        seen = "；".join(
            f"{d} {fmt.value(v, item.unit)}"
            for d, v in zip(item.day_labels, item.values, strict=False)
            if v is not None
        )
        desc = f"{item.kpi_name} 本周每日数值：{seen or '暂无'}{target}；虚线为按已过工作日计算的应有进度。"
        axis = scale.item_axis(item.baseline, item.target, item.unit, (*item.values, *item.expected))
        chart = charts.pace_chart(
            ident=f"item-{item.n}",
            title=f"{item.n}. {item.text} · {item.kpi_name}",
            desc=desc,
            labels=tuple(_two_lines(d) for d in item.day_labels),
            actual=item.values,
            expected=item.expected,
            unit=axis.unit,
            off_days=item.off_days,
            y_range=(axis.lo, axis.hi),
            step=axis.step,
            marks=axis.marks,
        )
        table = "".join(
            f'<tr><td>{escape(d)}</td><td class="num">{escape(fmt.value(v, item.unit))}</td>'
            f'<td class="num">{escape(fmt.value(e, item.unit))}</td></tr>'
            for d, v, e in zip(item.day_labels, item.values, item.expected or (None,) * 7, strict=False)
        )
        chart += (
            '<details><summary class="muted">逐日数据</summary><div class="scroll"><table>'
            '<thead><tr><th>日期</th><th class="num">实际</th><th class="num">应有水平</th></tr></thead>'
            f"<tbody>{table}</tbody></table></div></details>"
        )
    lag = " lagging" if item.lagging else ""
    return (
        f'<section class="item{lag}" id="item-{item.n}"><h2>{item.n}. {escape(item.text)}{escape(scope)}</h2>'
        f'<dl class="kv">{kv}</dl>{chart}</section>'
    )


def plan_page(view: PlanView) -> str:
    status = {"submitted": "已提交", "late": "已提交（迟交）"}.get(view.status, view.status)
    lagging = sum(1 for i in view.items if i.lagging)
    lag_text = f'<span class="lag">{lagging} 项</span>' if lagging else "无"
    summary = (
        f'<section><dl class="kv"><dt>员工</dt><dd>{escape(view.person_name)}</dd>'
        f"<dt>周</dt><dd>{escape(view.week)}</dd><dt>版本</dt><dd>第 {view.version} 版 · {escape(status)}</dd>"
        f"<dt>提交时间</dt><dd>{escape(view.submitted_at)}</dd>"
        f"<dt>工作日</dt><dd>已过 {view.elapsed} / {view.workdays} 天</dd>"
        f"<dt>落后项</dt><dd>{lag_text}</dd></dl>"
        f'<p class="muted">应有进度 = 已过工作日 ÷ 本周工作日；完成度比应有进度低 {view.lag_margin} 个百分点以上'
        f"（从第 3 个工作日起）标为落后。{escape(view.pace_note)}</p></section>"
    )
    body = summary + "".join(_item_section(i, view) for i in view.items) + links_html(view.links)
    return document(f"计划详情 · {view.week}", body, subtitle=view.person_name)


def links_html(links: Sequence[tuple[str, str]]) -> str:
    if not links:
        return ""
    inner = "".join(f'<a class="btn plain" href="{escape(url)}">{escape(label)}</a>' for label, url in links)
    return f'<div class="buttons">{inner}</div>'


# ---------------------------------------------------------------- appraisal detail


@dataclass(frozen=True)
class FormulaRow:
    kpi_name: str
    unit: str
    direction: str
    kind: str
    weight: Decimal | None
    baseline: Decimal | None = None
    target: Decimal | None = None
    actual: Decimal | None = None
    raw: Decimal | None = None
    completion: Decimal | None = None
    contribution: Decimal | None = None
    stars: int | None = None
    done: int | None = None
    planned: int | None = None
    status: str = "ok"
    text: str = ""
    curve: str = ""
    kpi: str = ""


@dataclass(frozen=True)
class AppraisalView:
    person_name: str
    week: str
    version: int
    template: str
    reason: str
    score: Decimal
    grade: str
    rows: tuple[FormulaRow, ...]
    flags: tuple[str, ...] = ()
    version_reason: str = ""
    history: tuple[tuple[str, Decimal | None, str], ...] = ()  # (week, score, grade), oldest first
    cap_points: Decimal = Decimal(150)  # the template's cap: the history chart's axis ends there


@dataclass(frozen=True)
class TeamRow:
    person_id: str
    name: str
    role: str
    score: Decimal | None
    grade: str
    template: str
    url: str


@dataclass(frozen=True)
class TeamTable:
    team_name: str
    week: str
    rows: tuple[TeamRow, ...]
    sort: str
    descending: bool
    sort_links: Mapping[str, str] = field(default_factory=dict)


def _n(v: Decimal | None, unit: str = "") -> str:
    return fmt.value(v, unit)


def _muted(text: str) -> str:
    return f'<div class="muted">{escape(text)}</div>' if text else ""


def _points(v: Decimal | None) -> str:
    return "—" if v is None else f"{v.quantize(Decimal('0.1'))}"


def formula(row: FormulaRow) -> str:
    """The arithmetic behind one row's contribution: the card's explanation (cards/explain.py) and
    the points it adds."""
    if row.kind == "adjustment":
        return f"加减分项，计 {_points(row.contribution)} 分"
    tail = f" × 权重 {scale.weight_text(row.weight)} = {_points(row.contribution)} 分"
    return explain({**row.__dict__, "name": row.kpi_name}) + tail


def _history_section(view: AppraisalView) -> str:
    if not view.history:
        return ""
    labels = tuple(w.split("-")[-1] for w, _, _ in view.history)
    desc = "；".join(f"{w} {_points(s)} 分 {g}".strip() for w, s, g in view.history)
    axis = scale.score_axis(view.cap_points)
    chart = charts.history_chart(
        ident="history",
        title=f"{view.person_name} 最近 {len(view.history)} 周得分",
        desc=f"每周得分（虚线为 100 分，纵轴到封顶 {scale.weight_text(view.cap_points)} 分）：{desc}",
        labels=labels,
        values=[s for _, s, _ in view.history],
        notes=[g for _, _, g in view.history],
        y_range=(axis.lo, axis.hi),
        step=axis.step,
        unit=axis.unit,
        marks=axis.marks,
    )
    return f'<section class="history"><h2>最近 {len(view.history)} 周得分</h2>{chart}</section>'


def appraisal_page(
    view: AppraisalView | None,
    *,
    person_name: str,
    week: str,
    tables: Sequence[TeamTable] = (),
    links: Sequence[tuple[str, str]] = (),
) -> str:
    parts: list[str] = []
    if view is None:
        parts.append(f"<section><p>{escape(person_name)} 在 {escape(week)} 还没有考核结果。</p></section>")
    else:
        parts.append(
            '<section class="score"><dl class="kv">'
            f'<dt>得分</dt><dd><span class="grade">{escape(_points(view.score))}</span> 分</dd>'
            f'<dt>等级</dt><dd><span class="grade">{escape(view.grade)}</span></dd>'
            f"<dt>模板</dt><dd>{escape(view.template)}</dd>"
            f"<dt>选用原因</dt><dd>{escape(view.reason)}</dd>"
            f"<dt>版本</dt><dd>第 {view.version} 版{escape('：' + view.version_reason if view.version_reason else '')}</dd>"
            "</dl></section>"
        )
        rows = "".join(
            f"<tr><td>{escape(r.kpi_name)}{_muted(r.text)}</td>"
            f'<td class="num">{escape(scale.weight_text(r.weight))}</td>'
            f'<td class="num">{escape(fmt.percent(r.completion) if r.completion is not None else "—")}</td>'
            f'<td class="num">{escape(_points(r.contribution))}</td></tr>'
            f'<tr class="formula-row"><td colspan="4" class="formula">{escape(formula(r))}</td></tr>'
            for r in view.rows
        )
        parts.append(
            '<section><h2>各指标计算</h2><div class="scroll"><table class="formulas">'
            '<thead><tr><th>指标</th><th class="num">权重</th><th class="num">完成度</th>'
            f'<th class="num">得分</th></tr></thead><tbody>{rows}</tbody></table></div></section>'
        )
        counted = [r.kpi or r.kpi_name for r in view.rows if r.status not in ("outside", "excluded")]
        if len(counted) != len(set(counted)):
            parts.append(f'<section class="notice"><p>{escape(COMBINE_RULE)}</p></section>')
        if view.flags:
            flags = "".join(f"<li>{escape(f)}</li>" for f in view.flags)
            parts.append(f'<section class="notice"><ul>{flags}</ul></section>')
        parts.append(_history_section(view))
    for table in tables:
        parts.append(team_table(table))
    parts.append(links_html(links))
    return document(f"考核详情 · {week}", "".join(parts), subtitle=person_name)


_COLUMNS = (("name", "姓名", ""), ("score", "得分", "num"), ("grade", "等级", ""), ("template", "模板", ""))


def team_table(table: TeamTable) -> str:
    head = []
    for key, label, cls in _COLUMNS:
        mark = (" ▼" if table.descending else " ▲") if key == table.sort else ""
        url = table.sort_links.get(key, "")
        inner = f'<a href="{escape(url)}">{escape(label)}{mark}</a>' if url else escape(label)
        sort = ' aria-sort="descending"' if key == table.sort and table.descending else ""
        if key == table.sort and not table.descending:
            sort = ' aria-sort="ascending"'
        head.append(f'<th class="{cls}"{sort}>{inner}</th>')
    body = "".join(
        f'<tr data-person="{escape(r.person_id)}"><td><a href="{escape(r.url)}">{escape(r.name)}</a></td>'
        f'<td class="num">{escape(_points(r.score))}</td><td>{escape(r.grade or "—")}</td>'
        f"<td>{escape(r.template or '—')}</td></tr>"
        for r in table.rows
    )
    return (
        f'<section class="team"><h2>{escape(table.team_name)} · {escape(table.week)}</h2>'
        f'<div class="scroll"><table class="teamtable"><thead><tr>{"".join(head)}</tr></thead>'
        f"<tbody>{body}</tbody></table></div></section>"
    )
