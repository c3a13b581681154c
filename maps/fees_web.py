"""The fees pages' texts (issue 21 point 6), zh-CN first with ``lang=en``, and how a payments file's
row problems read in Chinese. Labels of coded values (fee categories, bases) come from the vocabulary.
"""

from __future__ import annotations

import re

TEXTS: dict[str, dict[str, str]] = {
    "zh": {
        "fees": "收费管理",
        "fees_about": "先服务后收费：各小区的收费标准、起始收费月份与收费率（按户数、按金额），"
        "地图颜色表示按金额计的收费率。",
        "months": "统计月份",
        "from": "自",
        "to": "至",
        "show": "查看",
        "zone": "小区",
        "subdistrict": "街道",
        "standard": "收费标准",
        "document": "批准文号",
        "no_standard": "未核定",
        "first_month": "起始收费月份",
        "no_service": "未登记物业服务",
        "bills": "应收户次",
        "bills_paid": "已缴户次",
        "billed": "应收金额（元）",
        "paid": "实收金额（元）",
        "rate_households": "收费率（户数）",
        "rate_amount": "收费率（金额）",
        "no_bills": "无账单",
        "legend": "收费率（金额）",
        "buildings": "楼栋",
        "building": "楼栋",
        "households": "住户",
        "occupied": "入住",
        "arrears": "欠费住户",
        "no_arrears": "没有欠费住户。",
        "unit": "单元",
        "room": "户号",
        "owed": "欠费（元）",
        "months_owed": "欠费月份",
        "phone": "联系电话",
        "phone_masked": "电话号码按个人信息保护规定部分隐藏。",
        "pay": "登记缴费",
        "pay_about": "登记一户某月的缴费；不填户号则登记整栋楼的月度合计（须填缴费户数）。",
        "period": "所属月份",
        "amount": "缴费金额（元）",
        "paid_on": "缴费日期",
        "households_paid": "缴费户数（整栋合计时）",
        "save": "保存",
        "recorded": "已登记缴费",
        "import": "导入缴费记录",
        "import_about": "上传 CSV 或 XLSX 文件：全部行无误才导入，有错误时列出每一行的问题，不导入任何一行。",
        "file": "文件（CSV/XLSX）",
        "upload": "上传并导入",
        "columns": "可识别的列名",
        "column": "列",
        "names": "可用列名",
        "imported": "已导入 {n} 条缴费记录",
        "row": "行",
        "problem": "问题",
        "rejected": "文件有 {n} 处错误，未导入任何记录：",
        "choose": "请选择",
        "back_to_fees": "返回收费管理",
        "details": "明细",
    },
    "en": {
        "fees": "Fees",
        "fees_about": "Serve first, charge after: each zone's fee standard, first chargeable month and collection "
        "rate (by households, by amount); the map's colours are the rate by amount.",
        "months": "Months",
        "from": "from",
        "to": "to",
        "show": "Show",
        "zone": "Zone",
        "subdistrict": "Sub-district",
        "standard": "Fee standard",
        "document": "Approval document",
        "no_standard": "none approved",
        "first_month": "First chargeable month",
        "no_service": "no property service recorded",
        "bills": "Bills",
        "bills_paid": "Paid in full",
        "billed": "Billed (yuan)",
        "paid": "Paid (yuan)",
        "rate_households": "Rate (households)",
        "rate_amount": "Rate (amount)",
        "no_bills": "no bills",
        "legend": "Collection rate (amount)",
        "buildings": "Buildings",
        "building": "Building",
        "households": "Households",
        "occupied": "Occupied",
        "arrears": "Households in arrears",
        "no_arrears": "No household owes anything.",
        "unit": "Unit",
        "room": "Room",
        "owed": "Owed (yuan)",
        "months_owed": "Months owed",
        "phone": "Phone",
        "phone_masked": "Phone numbers are partly hidden as the personal-data rules require.",
        "pay": "Record a payment",
        "pay_about": "One household's payment for a month; without a room, a building's monthly total (with the "
        "households it covers).",
        "period": "Month",
        "amount": "Amount (yuan)",
        "paid_on": "Paid on",
        "households_paid": "Households covered (building total)",
        "save": "Save",
        "recorded": "Payment recorded",
        "import": "Import payments",
        "import_about": "Upload a CSV or XLSX file: imported only when every row is valid; otherwise every row's "
        "problems are listed and nothing is imported.",
        "file": "File (CSV/XLSX)",
        "upload": "Upload and import",
        "columns": "Columns understood",
        "column": "Column",
        "names": "Names accepted",
        "imported": "{n} payments imported",
        "row": "Row",
        "problem": "Problem",
        "rejected": "The file has {n} problems; nothing was imported:",
        "choose": "Choose",
        "back_to_fees": "Back to fees",
        "details": "Details",
    },
}

# a payments file's row problems (geo/programme/fees.py writes them in English) as they read in Chinese
_PROBLEMS_ZH: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^missing$"), "未填写"),
    (re.compile(r"^building '(.*)' does not exist$"), "楼栋 {0} 不存在"),
    (re.compile(r"^household (.*) is not in the register$"), "住户 {0} 不在住户登记表中"),
    (re.compile(r"^'(.*)' is not a month \(YYYY-MM\)$"), "“{0}”不是月份（年-月）"),
    (re.compile(r"^'(.*)' is not a positive amount$"), "“{0}”不是正数金额"),
    (re.compile(r"^'(.*)' is not a date \(YYYY-MM-DD\)$"), "“{0}”不是日期（年-月-日）"),
    (re.compile(r"^(.*) is in the future$"), "{0} 晚于今天"),
    (re.compile(r"^(.*) is before (.*)$"), "{0} 早于 {1}"),
    (re.compile(r"^'(.*)' is not a count$"), "“{0}”不是户数"),
    (re.compile(r"^before the first chargeable month (\S+)"), "先服务后收费：{0} 起方可收费"),
    (re.compile(r"^zone '(.*)' has no service start"), "先服务后收费：小区 {0} 尚未登记物业服务开始日期"),
    (re.compile(r"^control character (.*) is not allowed in text$"), "含有不允许的控制字符 {0}"),
)


def problem_zh(reason: str) -> str:
    """A row problem's reason in Chinese (the English one when no pattern knows it)."""
    for pattern, text in _PROBLEMS_ZH:
        found = pattern.match(reason)
        if found:
            return text.format(*found.groups())
    return reason


def rate_class(rate: float | None) -> str:
    """The colour class of a collection rate (the map's legend bins)."""
    if rate is None:
        return "rate-none"
    for limit, name in ((95, "rate-5"), (85, "rate-4"), (70, "rate-3"), (50, "rate-2")):
        if rate >= limit:
            return name
    return "rate-1"
