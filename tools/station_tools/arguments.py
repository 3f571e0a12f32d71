"""Argument types for the command lines (``station``, the simulator): a bad value is one clear
line and exit code 2, as argparse prints an ``ArgumentTypeError``."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import TypeVar

from station_protocol.ids import CHARGER_PATTERN, Layout, is_pile_id
from station_runtime.bus import BrokerAddress

T = TypeVar("T")
Number = TypeVar("Number", int, float, Decimal)


def parsed_by(parse: Callable[[str], T]) -> Callable[[str], T]:
    """An argument type from a parser that raises ``ValueError`` with the user's message."""

    def convert(text: str) -> T:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


layout_arg = parsed_by(Layout.parse)
broker_arg = parsed_by(BrokerAddress.parse)


def number_arg(
    kind: Callable[[str], Number],
    accept: Callable[[Number], bool],
    *,
    unreadable: str,
    refused: str,
) -> Callable[[str], Number]:
    """A number of ``kind`` that ``accept`` approves; the messages end with the given text."""

    def convert(text: str) -> Number:
        try:
            value = kind(text)
        except (ValueError, InvalidOperation):
            raise argparse.ArgumentTypeError(f"{unreadable}: {text!r}") from None
        if (isinstance(value, Decimal) and not value.is_finite()) or not accept(value):
            raise argparse.ArgumentTypeError(f"{refused}, got {text!r}")
        return value

    return convert


def pile_arg(text: str) -> str:
    if not is_pile_id(text):
        raise argparse.ArgumentTypeError(f"a pile is c<i>-p<jj> (for example c1-p01), got {text!r}")
    return text


def charger_arg(text: str) -> str:
    if re.match(CHARGER_PATTERN, text) is None:
        raise argparse.ArgumentTypeError(f"a charger is c<i> (for example c1), got {text!r}")
    return text
