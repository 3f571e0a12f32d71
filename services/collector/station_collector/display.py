"""What the pile display says, in the driver's words (English, then Chinese).

A pile display has a few short lines; every refusal says why, so the driver knows whether
to top up, call the operator or try another card.
"""

from __future__ import annotations

from station_protocol.messages import VerificationResult
from station_protocol.zigbee import Display

REFUSALS: dict[VerificationResult, tuple[str, str]] = {
    VerificationResult.UNKNOWN: ("Card not recognised", "卡片无法识别"),
    VerificationResult.BLOCKED: ("Card blocked - call operator", "卡片已冻结，请联系运营方"),
    VerificationResult.EXPIRED: ("Card expired", "卡片已过期"),
    VerificationResult.INSUFFICIENT_BALANCE: ("Balance too low - top up", "余额不足，请充值"),
    VerificationResult.ALREADY_CHARGING: (
        "Card already charging elsewhere",
        "该卡正在其他充电桩充电",
    ),
}


def refused(result: VerificationResult) -> Display:
    english, chinese = REFUSALS.get(result, ("Card refused", "卡片被拒绝"))
    return Display(lines=["Charge refused", english, chinese, f"reason: {result.value}"])


def waiting_for(what: str, window: float, tariff: list[str]) -> Display:
    """The prompt, and the price in effect (billing's lines), so the driver knows it first."""
    if what == "card":
        prompt = ["Gun connected", f"Swipe your card within {window:.0f} s", "请刷卡"]
    else:
        prompt = ["Card read", f"Plug in the gun within {window:.0f} s", "请插枪"]
    return Display(lines=[*prompt, *tariff])


def verifying() -> Display:
    return Display(lines=["Checking card...", "正在验证"])


def charging() -> Display:
    return Display(lines=["Charging", "Swipe the same card to stop", "充电中，再次刷卡结束"])


def busy() -> Display:
    return Display(lines=["Pile in use by another card", "充电桩正在使用"])


def unavailable(what: str) -> Display:
    return Display(lines=[f"{what} unavailable", "Please try again", "服务暂不可用，请重试"])


def finishing() -> Display:
    return Display(lines=["Finishing...", "正在结算"])


def out_of_service(codes: list[str]) -> Display:
    return Display(lines=["Out of service", "暂停服务", *codes[:2]])


def available() -> Display:
    return Display(lines=["Ready", "Plug in and swipe your card", "请插枪并刷卡"])


def maintenance() -> Display:
    """Shown while the pile is in maintenance, so that a driver goes to another pile."""
    return Display(lines=["In maintenance", "Please use another pile", "维护中，请使用其他充电桩"])


def refused_in_maintenance() -> Display:
    """A swipe on a pile in maintenance: refused, and why."""
    return Display(
        lines=["Charge refused", "Pile in maintenance", "充电桩维护中", "reason: maintenance"]
    )
