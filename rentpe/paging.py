"""Paged lists: one `Page` for every list shown a page at a time (search results, saved listings,
the moderators' queues and audit log), and the page number a request asks for.

Below the features (see .importlinter), so each feature pages its lists the same way.
"""
import math
from dataclasses import dataclass

from flask import request


@dataclass
class Page:
    """One page of a list: its items, its number (from 1) and whether another page follows. A
    counted list (search) also knows its total and page size, so its pager can show page numbers;
    `query` is what the list answers (search: its `SearchQuery`, for the pager's links)."""

    items: list
    number: int
    has_next: bool
    total: int | None = None
    per_page: int | None = None
    query: object = None

    @classmethod
    def of_rows(cls, rows, number, per_page):
        """The page from up to `per_page + 1` rows read at its offset: an extra row means more follow."""
        return cls(items=rows[:per_page], number=number, has_next=len(rows) > per_page)

    @classmethod
    def counted(cls, items, number, per_page, total, query=None):
        pages = max(math.ceil(total / per_page), 1)
        return cls(items=items, number=number, has_next=number < pages, total=total, per_page=per_page,
                   query=query)

    @property
    def has_previous(self):
        return self.number > 1

    @property
    def pages(self):
        """How many pages the list has (counted lists only; else None)."""
        return max(math.ceil(self.total / self.per_page), 1) if self.total is not None else None

    @property
    def first_index(self):
        return (self.number - 1) * self.per_page + 1 if self.total else 0

    @property
    def last_index(self):
        return min(self.number * self.per_page, self.total)

    def window(self, around=2):
        """Page numbers for a counted list's pager: first, last and `around` each side of the
        current one, with None where numbers are skipped."""
        shown = {1, self.pages, *range(self.number - around, self.number + around + 1)}
        numbers, previous = [], 0
        for number in sorted(n for n in shown if 1 <= n <= self.pages):
            if number > previous + 1:
                numbers.append(None)
            numbers.append(number)
            previous = number
        return numbers


def page_arg(max_page):
    """The `page` query argument: a positive number of at most five digits, capped at `max_page`;
    1 for anything else."""
    raw = request.args.get("page", "")
    return min(int(raw), max_page) if raw.isdecimal() and 0 < len(raw) < 6 and int(raw) > 0 else 1
