"""Cells of a CSV that a spreadsheet opens: neutralised against formula injection (OWASP's
"CSV Injection" guidance).

A cell that a spreadsheet would take as a formula (it begins with ``=``, ``+``, ``-``, ``@``, a tab
or a carriage return, or their full-width forms that some spreadsheets also read) gets a leading
apostrophe, which makes it text; every cell is quoted, so that a separator or a quote inside a
motif cannot start a new cell. An officer's motif ``=HYPERLINK("http://evil.example/";"voir")``
is then shown as it was typed to the DPO, the legal staff and the mayor who open the register.
"""
from __future__ import annotations

import csv

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def cell_neutralise(value) -> object:
    """The value as a spreadsheet must show it: numbers as they are, text never as a formula."""
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    text = str(value)
    # Leading spaces or line breaks do not stop a spreadsheet from reading what follows as a formula.
    if text.lstrip(" \n").startswith(FORMULA_TRIGGERS):
        return "'" + text
    return text


def csv_writer(stream, *, delimiter: str = ";"):
    """A csv writer that quotes every cell; pass each row through ``row_neutralise``."""
    return csv.writer(stream, delimiter=delimiter, quoting=csv.QUOTE_ALL)


def row_neutralise(row) -> list:
    return [cell_neutralise(v) for v in row]
