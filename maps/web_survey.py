"""The survey-entry and acceptance-desk pages' texts (issue 21 points 4 and 5), zh-CN first: the pages
use ``s`` for these beside ``t`` (maps/web.py's shared texts). Coded values (verdicts, service kinds,
round kinds, redo states, the four standards) take their labels from layers/vocabulary.toml.

An import's row problems come from geo/ in English (``Problem.reason``, also the API's ``reason``);
:func:`problem_zh` says them in Chinese for the page's table, the English kept beside it.
"""

from __future__ import annotations

import re
from typing import Any

from geo.programme import surveys

TEXTS: dict[str, dict[str, str]] = {
    "zh": {
        "surveys": "入户调查",
        "entry": "录入答卷",
        "import": "批量导入",
        "answers": "小区答卷",
        "entry_about": "一户一轮只计一份答卷。小区只列出您调查范围内的小区。",
        "zone": "小区",
        "building": "楼栋",
        "household": "户号",
        "household_hint": "如 5-2-301",
        "answered_on": "调查日期",
        "satisfied": "总体是否满意",
        "yes": "满意",
        "no": "不满意",
        "scores": "分项评分（1～5 分，5 分最好；未答可不选）",
        "score_none": "未答",
        "remark": "居民意见（备注）",
        "round": "调查轮次",
        "round_hint": "可不填：默认为调查日期的年份",
        "round_kind": "新建轮次的类型",
        "kind_default": "按默认（首次验收）",
        "surveyor": "调查员",
        "save": "保存答卷",
        "replace": "替换该户本轮已有答卷",
        "saved": "已保存答卷 #{id}：{zone} {household}（轮次 {round}）",
        "replaced": "已替换答卷 #{id}：{zone} {household}（轮次 {round}）",
        "duplicate": "该户本轮已有答卷（#{id}），一户一轮只计一份答卷。"
        "如确需替换，请勾选“替换该户本轮已有答卷”后再保存。",
        "satisfied_missing": "请选择总体是否满意",
        "no_zones": "您的账号没有可调查的小区，请联系管理员设定调查范围。",
        "import_title": "导入调查答卷（CSV / XLSX）",
        "import_about": "整个文件一并校验：有一行出错则全部不导入，下表列出每一行的问题。",
        "file": "文件（.csv 或 .xlsx）",
        "import_round": "本文件的调查轮次",
        "import_round_hint": "可不填：按每行的“轮次”列，否则按调查日期的年份",
        "upload": "上传并导入",
        "columns": "可识别的列（表头用中文或英文均可）",
        "template": "下载空白模板（CSV）",
        "column": "列",
        "headers": "可用的表头",
        "required": "必填",
        "optional": "可选",
        "imported": "已导入 {rows} 行：新增 {inserted} 份，替换 {replaced} 份（批次 {batch}，轮次 {rounds}）",
        "rejected": "文件中 {bad} 行有误（共 {rows} 行），未导入任何答卷。请改正后重新上传。",
        "row": "行",
        "problem": "问题",
        "original": "原文",
        "answers_of": "{zone}的答卷",
        "choose_zone": "选择小区",
        "show": "查看",
        "n_answers": "答卷",
        "n_satisfied": "满意",
        "rate": "满意度",
        "interval": "95% 置信区间",
        "reached": "入户覆盖率",
        "kind": "轮次类型",
        "no_answers": "本轮没有答卷。",
        "open": "更正 / 撤回",
        "answer": "答卷",
        "correct": "更正答卷",
        "withdraw": "撤回答卷",
        "reason": "原因（必填）",
        "new_version": "该轮结论已签发：确认更正，之后须重新签发新版本",
        "corrected": "已更正答卷 #{id}",
        "withdrawn": "已撤回答卷 #{id}",
        "batch_withdrawn": "已撤回导入批次 #{id}（{n} 份答卷），该文件可重新导入",
        "withdraw_batch": "撤回整个导入批次 #{id}",
        "batch_about": "该答卷由文件导入：撤回整个批次后，改正的文件可重新导入。",
        "withdrawn_state": "已撤回",
        "counting": "计入统计",
        "history": "更正记录",
        "no_history": "没有更正或撤回记录。",
        "back_to_zone": "返回小区答卷",
        "unchanged": "未改变的项不会更正。",
        "by": "操作人",
        "why": "原因",
        "at": "时间",
        "action": "操作",
    },
    "en": {
        "surveys": "Survey",
        "entry": "Enter an answer",
        "import": "Import a file",
        "answers": "A zone's answers",
        "entry_about": "One answer per household per round. Only the zones of your survey scope are listed.",
        "zone": "Zone",
        "building": "Building",
        "household": "Household",
        "household_hint": "e.g. 5-2-301",
        "answered_on": "Date of the visit",
        "satisfied": "Satisfied overall",
        "yes": "Satisfied",
        "no": "Not satisfied",
        "scores": "Scores by kind of service (1 to 5, 5 best; leave out what was not answered)",
        "score_none": "n/a",
        "remark": "Remark",
        "round": "Survey round",
        "round_hint": "optional: the visit's year by default",
        "round_kind": "Kind of a new round",
        "kind_default": "default (first acceptance)",
        "surveyor": "Surveyor",
        "save": "Save the answer",
        "replace": "Replace this household's answer of the round",
        "saved": "Answer #{id} saved: {zone} {household} (round {round})",
        "replaced": "Answer #{id} replaced: {zone} {household} (round {round})",
        "duplicate": "This household already answered in this round (#{id}): one answer per household per "
        "round. To replace it, tick “Replace this household's answer of the round” and save again.",
        "satisfied_missing": "Choose whether the household is satisfied",
        "no_zones": "Your account has no zone to survey: ask an administrator to set your scope.",
        "import_title": "Import survey answers (CSV / XLSX)",
        "import_about": "The whole file is checked first: one bad row and nothing is imported; "
        "the table lists every row's problems.",
        "file": "File (.csv or .xlsx)",
        "import_round": "Round of this file",
        "import_round_hint": "optional: each row's round column, else the visit's year",
        "upload": "Upload and import",
        "columns": "Columns understood (Chinese or English headers)",
        "template": "Download an empty template (CSV)",
        "column": "Column",
        "headers": "Headers accepted",
        "required": "required",
        "optional": "optional",
        "imported": "{rows} rows imported: {inserted} new, {replaced} replaced (batch {batch}, rounds {rounds})",
        "rejected": "{bad} of {rows} rows are invalid: nothing was imported. Correct them and upload again.",
        "row": "Row",
        "problem": "Problem",
        "original": "As reported",
        "answers_of": "Answers of {zone}",
        "choose_zone": "Zone",
        "show": "Show",
        "n_answers": "Answers",
        "n_satisfied": "Satisfied",
        "rate": "Satisfaction",
        "interval": "95% interval",
        "reached": "Households reached",
        "kind": "Kind of round",
        "no_answers": "No answers in this round.",
        "open": "Correct / withdraw",
        "answer": "Answer",
        "correct": "Correct the answer",
        "withdraw": "Withdraw the answer",
        "reason": "Reason (required)",
        "new_version": "The round's verdict was issued: correct anyway and issue a new version afterwards",
        "corrected": "Answer #{id} corrected",
        "withdrawn": "Answer #{id} withdrawn",
        "batch_withdrawn": "Import batch #{id} withdrawn ({n} answers): the file can be imported again",
        "withdraw_batch": "Withdraw the whole import batch #{id}",
        "batch_about": "This answer came from a file: withdraw the whole batch, then import the corrected file.",
        "withdrawn_state": "Withdrawn",
        "counting": "Counting",
        "history": "Corrections",
        "no_history": "No correction or withdrawal.",
        "back_to_zone": "Back to the zone's answers",
        "unchanged": "What is left unchanged is not corrected.",
        "by": "By",
        "why": "Reason",
        "at": "When",
        "action": "Action",
    },
}

DESK_TEXTS: dict[str, dict[str, str]] = {
    "zh": {
        "acceptance": "验收台",
        "about": "每个小区按其评定轮次的答卷和四项标准计算结论；签发后结论冻结为带编号的验收文书。",
        "zone": "小区",
        "subdistrict": "街道",
        "verdict": "结论",
        "failed": "未达标项",
        "satisfaction": "满意度",
        "interval": "95% 置信区间",
        "answers": "答卷",
        "round": "评定轮次",
        "issue": "签发状态",
        "redo": "补课整改",
        "redo_plan": "补课整改计划",
        "criterion": "事项",
        "unit": "责任单位",
        "due": "整改期限",
        "state": "状态",
        "overdue": "已超期",
        "no_redo": "没有补课整改事项。",
        "standards": "四项标准",
        "met": "达标",
        "not_met": "未达标",
        "off": "本年度不考核",
        "history": "验收经过",
        "no_history": "尚未签发验收结论。",
        "number": "文书编号",
        "version": "版本",
        "issued_at": "签发时间",
        "issued_by": "签发人",
        "pdf": "文书 PDF",
        "downloads": "下载",
        "summary_pdf": "全区验收汇总（PDF）",
        "summary_xlsx": "全区验收汇总（XLSX）",
        "zone_map": "小区图",
        "snapshot": "小区图快照（PNG）",
        "draft_pdf": "当前数据报告（PDF，未签发）",
        "issue_title": "签发验收结论",
        "issue_round": "轮次（可不填：按评定轮次）",
        "new_version": "签发更正后的新版本",
        "reason": "原因（签发新版本时必填）",
        "issue_button": "签发",
        "issued": "已签发 {number}（{verdict}）",
        "issuing": "正在签发并生成文书，请稍候……",
        "issue_all": "签发全部可签发的小区",
        "issue_all_about": "有本轮答卷、尚未签发且无待完成补课事项的小区，一次签发。",
        "issued_all": "已签发 {n} 个小区：{numbers}",
        "not_issued": "未签发的小区及原因",
        "items_done": "已完成 {done} / {total} 项，超期 {overdue} 项",
        "open_zone": "详情",
        "all_zones": "全部小区",
    },
    "en": {
        "acceptance": "Acceptance desk",
        "about": "Each zone's verdict is computed from the answers of its judged round and the four standards; "
        "issued, it is frozen as a numbered acceptance document.",
        "zone": "Zone",
        "subdistrict": "Sub-district",
        "verdict": "Verdict",
        "failed": "Criteria not met",
        "satisfaction": "Satisfaction",
        "interval": "95% interval",
        "answers": "Answers",
        "round": "Judged round",
        "issue": "Issued",
        "redo": "Redo work",
        "redo_plan": "Redo plan",
        "criterion": "Item",
        "unit": "Responsible unit",
        "due": "Deadline",
        "state": "State",
        "overdue": "overdue",
        "no_redo": "No redo items.",
        "standards": "The four standards",
        "met": "met",
        "not_met": "not met",
        "off": "not judged this year",
        "history": "Verdict history",
        "no_history": "No verdict issued yet.",
        "number": "Document number",
        "version": "Version",
        "issued_at": "Issued",
        "issued_by": "Issued by",
        "pdf": "Document PDF",
        "downloads": "Downloads",
        "summary_pdf": "District summary (PDF)",
        "summary_xlsx": "District summary (XLSX)",
        "zone_map": "Zone map",
        "snapshot": "Zone map snapshot (PNG)",
        "draft_pdf": "Report of today's figures (PDF, not issued)",
        "issue_title": "Issue the verdict",
        "issue_round": "Round (optional: the judged round)",
        "new_version": "Issue a corrected new version",
        "reason": "Reason (required for a new version)",
        "issue_button": "Issue",
        "issued": "Issued {number} ({verdict})",
        "issuing": "Issuing and drawing the document…",
        "issue_all": "Issue every zone that can be",
        "issue_all_about": "Zones with answers in their round, not issued yet and no redo items waiting, at once.",
        "issued_all": "{n} zones issued: {numbers}",
        "not_issued": "Zones not issued, and why",
        "items_done": "{done} of {total} done, {overdue} overdue",
        "open_zone": "Details",
        "all_zones": "All zones",
    },
}

# The file's fields that must be filled in every row (the others may stay empty).
REQUIRED = ("zone", "household", "answered_on", "surveyor", "satisfied")


def _cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def column_label(field: str, lang: str) -> str:
    """What a person calls an import column: its first Chinese header (zh), its own name (en)."""
    names = surveys.COLUMNS.get(field, (field,))
    if lang == "en":
        return field.removeprefix("score_").replace("_", " ")
    return next((n for n in names if _cjk(n)), field)


def columns(lang: str) -> list[dict[str, Any]]:
    """The import's columns as the page lists them: label, every header accepted, required or not."""
    return [
        {"field": f, "label": column_label(f, lang), "headers": names, "required": f in REQUIRED}
        for f, names in surveys.COLUMNS.items()
    ]


def template_csv(lang: str) -> bytes:
    """The import's header row as a CSV file teams fill in (UTF-8 with BOM: spreadsheets read it)."""
    names = [column_label(f, lang) if lang == "zh" else f for f in surveys.COLUMNS]
    return ("\ufeff" + ",".join(names) + "\r\n").encode("utf-8")


# geo/'s English reasons (surveys._check_row, io/tabular.py, rounds.problems_of_use) → Chinese
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^(missing|\w+ is required)$"), "缺少{col}"),
    (re.compile(r"^zone '(.*)' does not exist$"), "小区「{0}」不存在"),
    (re.compile(r"^zone '(.*)' is not in your survey scope$"), "小区「{0}」不在您的调查范围内"),
    (re.compile(r"^'(.*)' is not 是/否 \(yes/no\)$"), "「{0}」不是 是/否"),
    (re.compile(r"^\w+: '(.*)' is not a score from 1 to 5$|^'(.*)' is not a score from 1 to 5$"), "评分应为 1～5"),
    (re.compile(r"^'(.*)' is not a date \(YYYY-MM-DD\)$"), "「{0}」不是日期（年-月-日）"),
    (re.compile(r"^(\S+) is in the future$"), "日期 {0} 晚于今天"),
    (re.compile(r"^(\S+) is before (\S+)$"), "日期 {0} 早于 {1}"),
    (
        re.compile(r"^household '(.*)' of zone '(.*)' is also on row (\d+)"),
        "户号 {0} 与第 {2} 行是同一户（一户一轮只计一份答卷）",
    ),
    (
        re.compile(r"^household '(.*)' of zone '(.*)' already answered in round (.*): answer #(\d+) of (\S+) by (.*)$"),
        "户号 {0} 在轮次「{2}」已有答卷 #{3}（{4}，调查员 {5}）",
    ),
    (re.compile(r"^round must be 1 to (\d+) characters$"), "调查轮次名称应为 1 至 {0} 个字符"),
    (re.compile(r"^control character (.*) is not allowed in text$"), "含有不允许的控制字符"),
    (re.compile(r"^round '(.*)' is a (\w+) \((.*)\) round, not (\w+) \((.*)\)$"), "调查轮次「{0}」是{2}轮次，不是{4}"),
    (
        re.compile(r"^zone '(.*)' is not covered by round '(.*)' \(it covers: (.*)\)$"),
        "小区「{0}」不在调查轮次「{1}」范围内",
    ),
]


def problem_zh(field: str, reason: str, lang: str = "zh") -> str:
    """A row problem (or a form field's) in the page's language: Chinese from geo/'s English reason,
    the English itself when no pattern knows it (or for ``lang='en'``)."""
    if lang == "en":
        return reason
    for pattern, text in _PATTERNS:
        found = pattern.match(reason)
        if found:
            return text.format(*(g or "" for g in found.groups()), col=column_label(field, "zh"))
    return reason
