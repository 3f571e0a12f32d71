"""The meter rule: what a pile could have counted is believed, nothing else."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from station_protocol.plausibility import (
    METER_MAX,
    MeterCredit,
    RatedPowers,
    Verdict,
    in_range,
    within_rating,
)


def steady(credit: MeterCredit, start: Decimal, kw: Decimal, every: float, count: int) -> Decimal:
    """Feed ``count`` readings of a pile drawing ``kw``, one every ``every`` seconds."""
    energy = start
    for i in range(count):
        energy += kw * Decimal(repr(every)) / 3600
        assert credit.judge(energy.quantize(Decimal("0.001")), i * every) is Verdict.BELIEVED
    return energy.quantize(Decimal("0.001"))


def test_absurd_values_are_out_of_range() -> None:
    credit = MeterCredit()
    for value in (Decimal("1E+308"), Decimal("NaN"), Decimal("Infinity"), Decimal(-1)):
        assert credit.judge(value, 0.0) is Verdict.OUT_OF_RANGE
    assert credit.energy is None
    assert in_range(METER_MAX) and not in_range(METER_MAX + 1)


def test_a_jump_of_100_kwh_on_a_charging_pile_is_too_fast_and_changes_nothing() -> None:
    credit = MeterCredit(rated_power=Decimal(350))
    last = steady(credit, Decimal("1000"), Decimal(50), 1.0, 30)
    assert credit.judge(last + 100, 30.0) is Verdict.TOO_FAST
    assert credit.energy == last
    # The real readings after it go on being believed.
    assert credit.judge(last + Decimal("0.014"), 31.0) is Verdict.BELIEVED


def test_backwards_is_refused_and_the_last_believed_reading_kept() -> None:
    credit = MeterCredit()
    assert credit.judge(Decimal("12.5"), 0.0) is Verdict.BELIEVED
    assert credit.judge(Decimal("12.4"), 1.0) is Verdict.BACKWARDS
    assert credit.energy == Decimal("12.5")


def test_readings_queued_during_an_outage_may_arrive_at_once() -> None:
    """Ten minutes at 300 kW unheard, then every reading of those minutes in one bunch."""
    credit = MeterCredit(rated_power=Decimal(350))
    energy = steady(credit, Decimal(0), Decimal(300), 1.0, 10)
    t = 10.0 + 600.0
    for _ in range(600):
        energy += Decimal(300) / 3600
        assert credit.judge(energy.quantize(Decimal("0.001")), t) is Verdict.BELIEVED
        t += 0.001


def test_a_steady_pile_never_banks_more_than_a_burst() -> None:
    credit = MeterCredit(rated_power=Decimal(350), burst=60.0)
    last = steady(credit, Decimal(0), Decimal(0), 1.0, 3600)  # an hour idle, reporting
    assert credit.judge(last + 7, 3600.0) is Verdict.TOO_FAST  # 60 s at 350 kW is 6.1 kWh
    assert credit.judge(last + 6, 3600.5) is Verdict.BELIEVED


@given(
    kw=st.decimals(min_value=0, max_value=350, places=1),
    every=st.sampled_from([0.1, 0.5, 1.0, 5.0, 30.0]),
)
def test_any_pile_within_its_rating_is_always_believed(kw: Decimal, every: float) -> None:
    steady(MeterCredit(rated_power=Decimal(350)), Decimal("123.456"), kw, every, 50)


def test_a_session_is_bounded_by_rating_times_duration() -> None:
    assert within_rating(Decimal("9.7"), 100.0, Decimal(350))  # 350 kW x 100 s = 9.72 kWh
    assert not within_rating(Decimal("100.008"), 10.0, Decimal(350))


def test_rated_powers_per_pile() -> None:
    powers = RatedPowers(Decimal(350), (("c1-p01", Decimal(22)),))
    assert powers.of("c1-p01") == Decimal(22)
    assert powers.of("c1-p02") == Decimal(350)
