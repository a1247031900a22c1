"""Pagination that stays fast on a million recordings.

An exact ``COUNT(*)`` over a commune's whole year of recordings costs hundreds of milliseconds on
PostgreSQL, on every list request. Counts are therefore exact up to ``EXACT_COUNT_LIMIT`` rows; above
that, the planner's estimate is given and flagged (``count_exact: false``; the pages say "environ").
"""
import json

from django.core.paginator import EmptyPage, Page, PageNotAnInteger, Paginator
from django.db import connections
from django.utils.functional import cached_property
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response

EXACT_COUNT_LIMIT = 1_000


def capped_count(queryset) -> tuple[int, bool]:
    """(count, exact): exact below the limit, else the database's estimate (never below the limit)."""
    seen = queryset.order_by()[:EXACT_COUNT_LIMIT + 1].count()
    if seen <= EXACT_COUNT_LIMIT:
        return seen, True
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return queryset.count(), True  # the embedded SQLite default holds small communes
    sql, params = queryset.order_by().query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return max(int(plan[0]["Plan"]["Plan Rows"]), EXACT_COUNT_LIMIT + 1), False


class _EstimatedPage(Page):
    """A page whose successor is known by reading one row more, not from the (estimated) count."""

    def __init__(self, object_list, number, paginator, has_next: bool):
        super().__init__(object_list, number, paginator)
        self._has_next = has_next

    def has_next(self) -> bool:
        return self._has_next


class CappedCountPaginator(Paginator):
    def validate_number(self, number):
        if self.count_exact:
            return super().validate_number(number)
        try:
            number = int(number)
        except (TypeError, ValueError):
            raise PageNotAnInteger("That page number is not an integer") from None
        if number < 1:
            raise EmptyPage("That page number is less than 1")
        return number

    def page(self, number):
        """With an estimated count, the page is whatever the rows hold: never cut short by the estimate."""
        number = self.validate_number(number)
        if self.count_exact:
            return super().page(number)
        bottom = (number - 1) * self.per_page
        rows = list(self.object_list[bottom:bottom + self.per_page + 1])
        if not rows and number > 1:
            raise EmptyPage("That page contains no results")
        return _EstimatedPage(rows[:self.per_page], number, self, has_next=len(rows) > self.per_page)

    @cached_property
    def _counted(self) -> tuple[int, bool]:
        return capped_count(self.object_list)

    @cached_property
    def count(self) -> int:
        return self._counted[0]

    @property
    def count_exact(self) -> bool:
        return self._counted[1]


class RecordingPagination(PageNumberPagination):
    """``count`` (exact up to 1,000, else estimated), ``count_exact``, ``next``, ``previous``, ``results``."""

    django_paginator_class = CappedCountPaginator

    def get_paginated_response(self, data):
        return Response({
            "count": self.page.paginator.count, "count_exact": self.page.paginator.count_exact,
            "next": self.get_next_link(), "previous": self.get_previous_link(), "results": data,
        })

    def get_paginated_response_schema(self, schema):
        body = super().get_paginated_response_schema(schema)
        body["properties"]["count_exact"] = {"type": "boolean",
                                             "description": "false when count is the database's estimate (> 1,000)"}
        return body
