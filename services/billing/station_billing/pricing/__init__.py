"""The tariff engine: OCPI 2.2.1 tariffs and charging periods in, CDR totals out.

The rules it follows are those of ``docs/pricing.md`` (the OCPI 2.2.1 text as
corrected on its bug-fix branch, and ours where it is silent). Each is written down in the
module that applies it:

=====================================================  ======================
rule                                                   module
=====================================================  ======================
1 which element (per dimension, first match)           :mod:`.tariff`
2 when restrictions are evaluated (period start, local) :mod:`.restrictions`, :mod:`.localtime`
3 boundaries (inclusive/exclusive, wrap, kWh, duration) :mod:`.restrictions`
4 TIME vs PARKING_TIME from the CDR dimensions         :mod:`.engine`
5 step_size once per session                           :mod:`.engine`
6 FLAT once per session                                :mod:`.engine`
7 VAT per component                                    :mod:`.money`
8 min_price / max_price                                :mod:`.engine`
9 money: Decimal, one half-up rounding at the end      :mod:`.money`, :mod:`.engine`
10 Chinese time of use: one ENERGY price per band      :mod:`station_billing.ocpi_tariffs`
=====================================================  ======================

Building periods from meter readings (rule 2's "a new period at every instant where the
price could change") is the service's part: :mod:`station_billing.metering`.
"""

from station_billing.pricing.cdr import CdrError, session_from_cdr, totals_json
from station_billing.pricing.engine import SessionInput, Totals, price_session
from station_billing.pricing.money import Amount, money_text, round_money
from station_billing.pricing.tariff import CompiledTariff, Period, compile_tariff
from station_billing.pricing.validation import InvalidTariff, Problem, read_tariff

__all__ = [
    "Amount",
    "CdrError",
    "CompiledTariff",
    "InvalidTariff",
    "Period",
    "Problem",
    "SessionInput",
    "Totals",
    "compile_tariff",
    "money_text",
    "price_session",
    "read_tariff",
    "round_money",
    "session_from_cdr",
    "totals_json",
]
