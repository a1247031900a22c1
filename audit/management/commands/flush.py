"""Django's ``flush``, made to work with the append-only custody log.

The log refuses DELETE and TRUNCATE (audit/guards.py). Emptying the whole database is a
superuser's act: on PostgreSQL this command works only for a database superuser (the production
application role is not one, so ``manage.py flush`` there stops before deleting anything); on the
embedded SQLite default it works as Django's. The test runner flushes through this command between
transactional tests.
"""
from django.core.management.base import CommandError
from django.core.management.commands import flush
from django.db import connections

from audit import guards


class Command(flush.Command):
    def handle(self, **options):
        connection = connections[options["database"]]
        original = connection.ops.execute_sql_flush

        def execute_sql_flush(sql_list):
            try:
                with guards.flush_permitted(connection):
                    return original(sql_list)
            except PermissionError as exc:
                raise CommandError(str(exc)) from exc

        connection.ops.execute_sql_flush = execute_sql_flush
        try:
            return super().handle(**options)
        finally:
            del connection.ops.execute_sql_flush
