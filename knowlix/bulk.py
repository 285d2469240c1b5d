"""Insert many rows of one model in few statements, at a fraction of
``bulk_create``'s CPU cost.

For the paths that write many rows at once: a post's fan-out to its followers
(tens of thousands of rows from plain tuples, :func:`insert_rows`) and incoming
mail (about ten new model instances a message, :func:`insert_instances`, which
writes them through :func:`insert_rows`). Django's ``bulk_create`` runs its SQL
compiler over every value of every field, which costs more than the database's
own work there. :func:`insert_rows` writes the same rows:

- every value still goes through its model field's ``get_db_prep_save``, the
  conversion ``bulk_create`` applies (dates, bytes and booleans reach SQLite and
  PostgreSQL as they would from ``bulk_create``); a column with one value for
  every row (``constants``) is converted once, and for Django's own text, integer
  and boolean fields (not subclasses) a ``str``/``int``/``bool``/``None`` value
  (or one of a ``str`` subclass, a ``TextChoices`` member) is passed as it is
  once the field's conversion gave such a value back unchanged, or an ``int``
  wrapped in psycopg's ``Int4``... (their conversion is a type coercion: it never
  depends on the value);
- a field given neither as a column nor as a constant gets its default
  (``auto_now``/``auto_now_add``: now), as a fresh instance would;
- each batch is one ``INSERT`` with ``RETURNING`` the primary keys in row order
  (the order Django's own ``bulk_create`` relies on for both backends): on SQLite
  multi-row ``VALUES`` (as many rows as its parameter limit allows), on
  PostgreSQL ``SELECT ... FROM unnest()`` of one array per column, bound apart
  from the statement in binary form, each array typed without a length (a
  value too long for its column is refused, as by ``bulk_create``, not cut);
- on PostgreSQL, when every column has a plain type (integers, text, booleans,
  bytes, timestamps: a mailing's rows), a batch is a binary ``COPY`` instead,
  the ids taken from the table's sequence first when wanted (about a fifth of
  the server's work of the ``INSERT`` and no arrays built in Python).

:func:`insert_instances` takes new instances of a plain model (automatic primary
key, no parent table, no database default, plain placeholders) and falls back on
``bulk_create`` for anything else, or for a value that is an expression. It checks
each instance as ``bulk_create`` does (related objects must be saved; a foreign
key set before its object was saved takes that object's id), runs each field's
``pre_save`` (``auto_now``...) and sets the new ids on the instances, saved.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from django.db import NotSupportedError, connections, models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import NOT_PROVIDED
from django.db.models.query_utils import DeferredAttribute
from django.utils import timezone

M = TypeVar("M", bound=models.Model)

# Types whose conversion, once seen to be the identity for a field, stays one
# (and any str subclass, a TextChoices member: a text field's conversion keeps any
# str as it is, the others' never do)...
_PLAIN = frozenset({str, int, bool, type(None)})
# ...for these field classes exactly (a subclass may convert by value).
_COERCING = {
    models.CharField,
    models.EmailField,
    models.SlugField,
    models.URLField,
    models.TextField,
    models.IntegerField,
    models.SmallIntegerField,
    models.BigIntegerField,
    models.PositiveIntegerField,
    models.PositiveSmallIntegerField,
    models.PositiveBigIntegerField,
    models.BooleanField,
    models.AutoField,
    models.BigAutoField,
    models.SmallAutoField,
}
# Per field of a row: (its place in the row, its converter), or (None, its value).
Plan = list[tuple[int, Callable[[Any], Any]] | tuple[None, Any]]
# Rows per statement at most, whatever the parameter limit (statement size).
MAX_ROWS = 1000


def _converter(
    field: models.Field, connection: BaseDatabaseWrapper
) -> Callable[[Any], Any]:
    """``field.get_db_prep_save``, skipped for plain types it returns unchanged."""
    prep = field.get_db_prep_save
    identical: set[type] = set()
    target = getattr(field, "target_field", field) if field.is_relation else field
    coercing = type(target) in _COERCING and not field.many_to_many

    def convert(value: Any) -> Any:
        kind = type(value)
        if kind in identical:
            return value
        prepared = prep(value, connection)
        if coercing and (kind in _PLAIN or issubclass(kind, str)):
            if prepared is value:
                identical.add(kind)
            elif kind is int and isinstance(prepared, int) and prepared == value:
                # Django's PostgreSQL operations wrap an int in psycopg's Int2/4/8
                # (a parameter's type): an array column is typed by its cast.
                identical.add(kind)
                return value
        return prepared

    return convert


def _reads_dict(field: models.Field) -> bool:
    """The field's attribute is read from the instance's ``__dict__``."""
    descriptor = getattr(field, "descriptor_class", None)
    return getattr(descriptor, "__get__", None) is DeferredAttribute.__get__


def _has_db_default(field: models.Field) -> bool:
    return getattr(field, "db_default", NOT_PROVIDED) is not NOT_PROVIDED


def _max_params(connection: BaseDatabaseWrapper) -> int:
    if connection.vendor == "sqlite":
        import sqlite3

        connection.ensure_connection()
        getlimit = getattr(connection.connection, "getlimit", None)
        if getlimit is not None:  # Python 3.11+
            return int(getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
        return 999
    return 65535  # PostgreSQL's wire protocol: a 16-bit parameter count


def insert_rows(
    model: type[models.Model],
    *,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    constants: Mapping[str, Any] | None = None,
    returning: bool = False,
    using: str = "default",
) -> list[int]:
    """Insert ``rows`` (values of ``columns``, by field name: ``mail`` or
    ``mail_id`` for a foreign key, whose values are ids) into ``model``'s table,
    with ``constants`` in every row (a foreign key's may be an instance); returns
    the new primary keys in row order when ``returning``."""
    connection = connections[using]
    if returning and not connection.features.can_return_rows_from_bulk_insert:
        raise NotSupportedError("insert_rows(returning=True) needs RETURNING")
    meta = model._meta
    concrete: dict[str, models.Field] = {}
    for f in meta.concrete_fields:
        concrete[f.name] = concrete[f.attname] = f
    named = [*columns, *(constants or {})]
    unknown = [name for name in named if name not in concrete]
    if unknown or len({concrete[name].attname for name in named}) < len(named):
        raise ValueError(f"insert_rows: unknown or doubled columns {named}")
    given = {concrete[name].attname: n for n, name in enumerate(columns)}
    fixed = {concrete[k].attname: v for k, v in (constants or {}).items()}
    fields = [
        f
        for f in meta.concrete_fields
        if not (f.primary_key and isinstance(f, models.AutoField))
        and (f.attname in given or f.attname in fixed or not _has_db_default(f))
    ]
    now = timezone.now()
    # Per field, its place in a row or its value converted once.
    plan: Plan = []
    for f in fields:
        if f.attname in given:
            plan.append((given[f.attname], _converter(f, connection)))
            continue
        if f.attname in fixed:
            value = fixed[f.attname]
        elif getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            value = now
        else:
            value = f.get_default()
        if f.is_relation and isinstance(value, models.Model):
            value = value.pk
        plan.append((None, f.get_db_prep_save(value, connection)))
    q = connection.ops.quote_name
    head = f"INSERT INTO {q(meta.db_table)} ({', '.join(q(f.column) for f in fields)}) "
    tail = f" RETURNING {q(meta.pk.column)}" if returning else ""
    write = _values
    if connection.vendor == "postgresql":
        copyable = _copy_types(fields, connection) is not None and (
            not returning or isinstance(meta.pk, models.AutoField)  # a sequence
        )
        write = _copy if copyable else _unnest
    ids: list[int] = []
    with transaction.atomic(using=using, savepoint=False):
        for batch in _batches(rows, _rows_per_statement(connection, len(fields))):
            ids += write(connection, fields, plan, batch, head, tail)
    return ids


def _rows_per_statement(connection: BaseDatabaseWrapper, width: int) -> int:
    if connection.vendor == "postgresql":  # one array parameter per column
        return MAX_ROWS
    return max(1, min(MAX_ROWS, _max_params(connection) // width))


def _batches(rows: Iterable[Sequence[Any]], size: int) -> Iterator[list[Sequence[Any]]]:
    batch: list[Sequence[Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _run(
    connection: BaseDatabaseWrapper, sql: str, params: list[Any], returning: bool
) -> list[int]:
    with _cursor(connection) as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()] if returning else []


def _cursor(connection: BaseDatabaseWrapper) -> Any:
    """The connection's cursor; on PostgreSQL one that sends the parameters apart
    from the statement (Django's own ``server_side_binding`` cursor class), so
    megabytes of mail bytes go as bytes, not as hex text psycopg writes into the
    statement and the server parses back (through Django's cursor wrapper still:
    logged, counted, wrapped like any other statement)."""
    if connection.vendor != "postgresql":
        return connection.cursor()
    from django.db.backends.postgresql.base import (  # type: ignore[attr-defined]
        ServerBindingCursor,
    )

    connection.ensure_connection()
    cursor = ServerBindingCursor(connection.connection)
    return connection._prepare_cursor(cursor)  # type: ignore[attr-defined]


def _converted(plan: Plan, batch: list[Sequence[Any]]) -> Iterator[list[Any]]:
    """Each row's values, as many as ``plan`` has fields: the constants in
    place, then the row's own values converted."""
    template = [value if place is None else None for place, value in plan]
    varying = [
        (n, place, value) for n, (place, value) in enumerate(plan) if place is not None
    ]
    for row in batch:
        values = template.copy()
        for n, place, convert in varying:
            values[n] = convert(row[place])
        yield values


def _values(
    connection: BaseDatabaseWrapper,
    fields: list[models.Field],
    plan: Plan,
    batch: list[Sequence[Any]],
    head: str,
    tail: str,
) -> list[int]:
    """``VALUES (...), (...)``: one parameter per value (SQLite)."""
    params: list[Any] = []
    for values in _converted(plan, batch):
        params += values
    one = "(" + ", ".join(["%s"] * len(fields)) + ")"
    sql = head + "VALUES " + ", ".join([one] * len(batch)) + tail
    return _run(connection, sql, params, bool(tail))


def _unnest(
    connection: BaseDatabaseWrapper,
    fields: list[models.Field],
    plan: Plan,
    batch: list[Sequence[Any]],
    head: str,
    tail: str,
) -> list[int]:
    """``SELECT ... FROM unnest(column arrays)``: one parameter per column, so
    the statement stays short (PostgreSQL; Django's own ``bulk_create`` inserts
    so there, and relies on ``RETURNING`` keeping the arrays' order too)."""
    constants: list[Any] = []
    columns: list[list[Any]] = []
    arrays: list[str] = []
    select: list[str] = []
    for f, (place, value) in zip(fields, plan, strict=True):
        # Without its length: a cast to varchar(200) would cut a longer value.
        kind = str(f.db_type(connection)).split("(")[0]
        if place is None:
            select.append(f"%s::{kind}")
            constants.append(value)
            continue
        # In binary form: psycopg writes a text array in Python, quoting and
        # escaping each element (bytes as hex), ~5 µs a string or date against
        # ~0.4 µs in binary; what the server reads is the same values.
        arrays.append(f"%b::{kind}[]")
        select.append(f"u.c{len(arrays)}")
        columns.append([value(row[place]) for row in batch])
    params = constants + columns  # as the statement names them: SELECT, then FROM
    names = ", ".join(f"c{n}" for n in range(1, len(arrays) + 1))
    sql = (
        f"{head}SELECT {', '.join(select)} "
        f"FROM unnest({', '.join(arrays)}) AS u({names}){tail}"
    )
    return _run(connection, sql, params, bool(tail))


# PostgreSQL column types (as Django declares them, without a length) that COPY's
# binary format writes from the values ``get_db_prep_save`` gives (psycopg's own
# binary dumpers: int, str, bool, bytes, aware datetime, None).
_COPY_TYPES = {
    "smallint": "int2",
    "integer": "int4",
    "bigint": "int8",
    "varchar": "varchar",
    "text": "text",
    "boolean": "bool",
    "bytea": "bytea",
    "timestamp with time zone": "timestamptz",
}


def _copy_types(
    fields: list[models.Field], connection: BaseDatabaseWrapper
) -> list[str] | None:
    """The COPY types of ``fields``, or None when one has another type."""
    kinds = [str(f.db_type(connection)).split("(")[0] for f in fields]
    if not all(kind in _COPY_TYPES for kind in kinds):
        return None
    return [_COPY_TYPES[kind] for kind in kinds]


def _copy(
    connection: BaseDatabaseWrapper,
    fields: list[models.Field],
    plan: Plan,
    batch: list[Sequence[Any]],
    head: str,
    tail: str,
) -> list[int]:
    """``COPY ... FROM STDIN (FORMAT BINARY)`` (PostgreSQL): each value sent in
    its binary form as it is, no arrays to build, and the server writes the rows
    through its multi-row insert path. Same constraints, triggers and foreign
    key checks as an INSERT; a value too long for its column is refused. With
    ``tail`` (ids wanted), the ids are taken from the table's sequence first, in
    row order, and written with the rows."""
    meta = fields[0].model._meta
    q = connection.ops.quote_name
    types = _copy_types(fields, connection)
    assert types is not None  # insert_rows chose COPY for these fields
    binary = {n for n, kind in enumerate(types) if kind == "bytea"}
    columns = [f.column for f in fields]
    ids: list[int] = []
    with _cursor(connection) as cursor:
        if tail:
            cursor.execute(
                "SELECT nextval((SELECT pg_get_serial_sequence(%s, %s))::regclass) "
                "FROM generate_series(1, %s)",
                [q(meta.db_table), meta.pk.column, len(batch)],
            )
            ids = [row[0] for row in cursor.fetchall()]
            columns.insert(0, meta.pk.column)
            types.insert(0, _COPY_TYPES[str(meta.pk.db_type(connection))])
        sql = (
            f"COPY {q(meta.db_table)} ({', '.join(q(c) for c in columns)}) "
            "FROM STDIN (FORMAT BINARY)"
        )
        started = time.monotonic()
        with connection.wrap_database_errors, cursor.cursor.copy(sql) as copy:
            copy.set_types(types)
            for n, values in enumerate(_converted(plan, batch)):
                for at in binary:  # Django's psycopg Binary wrapper: its bytes
                    values[at] = getattr(values[at], "obj", values[at])
                copy.write_row([ids[n], *values] if tail else values)
        if connection.queries_logged:  # logged as Django logs a statement
            connection.queries_log.append(
                {"sql": sql, "time": f"{time.monotonic() - started:.3f}"}
            )
    return ids


def insert_instances(objs: Sequence[M], *, using: str = "default") -> list[M]:
    """``type(objs[0]).objects.bulk_create(objs)`` for new instances of one model
    (see the module docstring); returns them, saved, with their ids."""
    objs = list(objs)
    if not objs:
        return objs
    model = type(objs[0])
    connection = connections[using]
    if not _is_plain(model, connection) or any(
        type(obj) is not model or obj.pk is not None for obj in objs
    ):
        return model._default_manager.using(using).bulk_create(objs)
    meta = model._meta
    fields = [f for f in meta.concrete_fields if f is not meta.pk]
    # Per field: its attribute; whether the descriptor reads it from the instance's
    # __dict__, where __init__ put it (read there directly: a foreign key's id
    # attribute is a descriptor, ~0.5 µs a read); whether its pre_save is more than
    # reading the attribute (auto_now...).
    spec = [
        (
            f,
            f.attname,
            _reads_dict(f),
            type(f).pre_save is not models.Field.pre_save,
        )
        for f in fields
    ]
    rows: list[list[Any]] = []
    for obj in objs:
        # What bulk_create checks (unsaved related objects, late ids).
        obj._prepare_related_fields_for_save(  # type: ignore[attr-defined]
            operation_name="bulk_create"
        )
        stored = obj.__dict__
        row = [
            f.pre_save(obj, True)
            if special
            else stored[name]
            if in_dict and name in stored
            else getattr(obj, name)
            for f, name, in_dict, special in spec
        ]
        if any(
            type(value) not in _PLAIN and hasattr(value, "resolve_expression")
            for value in row
        ):
            return model._default_manager.using(using).bulk_create(objs)
        rows.append(row)
    ids = insert_rows(
        model,
        columns=[f.attname for f in fields],
        rows=rows,
        returning=True,
        using=using,
    )
    if len(ids) != len(objs):  # never: RETURNING gives a row per row
        raise RuntimeError("insert_instances: ids missing")
    for obj, pk in zip(objs, ids, strict=True):
        obj.pk = pk
        obj._state.adding = False
        obj._state.db = using
    return objs


def _is_plain(model: type[models.Model], connection: BaseDatabaseWrapper) -> bool:
    meta = model._meta
    return (
        connection.features.can_return_rows_from_bulk_insert
        and not meta.parents
        and isinstance(meta.pk, models.AutoField | models.BigAutoField)
        and not any(
            f.generated
            or f.has_db_default()  # type: ignore[attr-defined]  # Django 5
            or not _plain_placeholder(f, connection)
            for f in meta.concrete_fields
        )
    )


def _plain_placeholder(field: models.Field, connection: BaseDatabaseWrapper) -> bool:
    """The field's values are written as a plain ``%s``."""
    if not hasattr(field, "get_placeholder"):
        return True
    return isinstance(field, models.BinaryField) and all(
        connection.ops.binary_placeholder_sql(v) == "%s"  # type: ignore[arg-type]
        for v in (b"", None)
    )
