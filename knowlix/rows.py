"""Insert new model instances like ``bulk_create``, at a fraction of its CPU cost.

Django's ``bulk_create`` runs its SQL compiler over every value of every field
(about 60 us a row of twenty fields here), which costs more than the database's own
work on the paths that write many small rows at once (incoming mail writes about
ten a message). :func:`insert_instances` writes the same rows for new instances of
a plain model (automatic primary key, no parent table, no database default) and
falls back on ``bulk_create`` for anything else:

- each instance is checked as ``bulk_create`` checks it (related objects must be
  saved; a foreign key set before its object was saved takes that object's id);
- each value goes through its field's ``pre_save`` and ``get_db_prep_save``, the
  conversions ``bulk_create`` applies; for the core text, number and boolean
  fields a value of exactly ``str``/``int``/``bool``/``None`` is passed as it is
  once the field gave such a value back unchanged (their conversion of these
  types never depends on the value);
- each batch (``bulk_batch_size`` rows; on PostgreSQL all rows, one array a
  column through ``UNNEST`` as ``bulk_create`` does there) is one ``INSERT ...
  RETURNING`` the primary keys, in row order (the order ``bulk_create`` relies on
  too), which are set on the instances, marked saved.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from django.db import connections, models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

M = TypeVar("M", bound=models.Model)

# Field classes whose conversion of a str/int/bool/None value is the identity or
# never depends on the value (exact classes: a subclass may normalise).
_IDENTITY_FIELDS = (
    models.CharField,
    models.TextField,
    models.EmailField,
    models.SlugField,
    models.URLField,
    models.BooleanField,
    models.IntegerField,
    models.BigIntegerField,
    models.SmallIntegerField,
    models.PositiveIntegerField,
    models.PositiveBigIntegerField,
    models.PositiveSmallIntegerField,
    models.AutoField,
    models.BigAutoField,
    models.ForeignKey,
    models.OneToOneField,
)
_PLAIN = (str, int, bool, type(None))


def _converter(
    field: models.Field, connection: BaseDatabaseWrapper
) -> Callable[[Any], Any]:
    """``field.get_db_prep_save``, skipped for plain values where it is the
    identity."""
    prep = field.get_db_prep_save
    identical: set[type] = set()
    if type(field) not in _IDENTITY_FIELDS or (
        isinstance(field, models.ForeignKey)
        and type(field.target_field) not in _IDENTITY_FIELDS
    ):

        def convert_each(value: Any) -> Any:
            if hasattr(value, "resolve_expression"):
                raise _Unsupported
            return prep(value, connection)

        return convert_each

    def convert(value: Any) -> Any:
        kind = type(value)
        if kind in identical:
            return value
        if hasattr(value, "resolve_expression"):
            raise _Unsupported
        prepared = prep(value, connection)
        if prepared is value and kind in _PLAIN:
            identical.add(kind)
        return prepared

    return convert


class _Unsupported(Exception):
    """A value that ``bulk_create`` must compile (an expression)."""


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
    converters = [(f, _converter(f, connection)) for f in fields]
    # Fields whose pre_save is more than reading the attribute (auto_now...).
    special = {f for f in fields if type(f).pre_save is not models.Field.pre_save}
    q = connection.ops.quote_name
    head = (
        f"INSERT INTO {q(meta.db_table)} ({', '.join(q(f.column) for f in fields)})"
        " VALUES "
    )
    tail = f" RETURNING {q(meta.pk.column)}"
    one = "(" + ", ".join(["%s"] * len(fields)) + ")"
    size = max(connection.ops.bulk_batch_size(fields, objs), 1)
    unnest = connection.vendor == "postgresql" and len(objs) > 1
    if unnest:
        # As Django does on PostgreSQL: one array a column (a short statement to
        # parse and plan) instead of a placeholder a value; types without their
        # length, so that nothing is cut.
        arrays = ", ".join(
            "(%s)::" + f.db_type(connection).split("(")[0] + "[]"  # type: ignore[union-attr]
            for f in fields
        )
        head = head.removesuffix(" VALUES ") + f" SELECT * FROM UNNEST({arrays})"
        size = len(objs)
    rows: list[list[Any]] = []
    try:
        for obj in objs:
            # What bulk_create checks (unsaved related objects, late ids).
            obj._prepare_related_fields_for_save(  # type: ignore[attr-defined]
                operation_name="bulk_create"
            )
            rows.append(
                [
                    convert(
                        field.pre_save(obj, True)
                        if field in special
                        else getattr(obj, field.attname)
                    )
                    for field, convert in converters
                ]
            )
    except _Unsupported:  # nothing written yet
        return model._default_manager.using(using).bulk_create(objs)
    with transaction.atomic(using=using, savepoint=False):
        for start in range(0, len(objs), size):
            batch = objs[start : start + size]
            chunk = rows[start : start + size]
            if unnest:
                sql, params = (
                    head + tail,
                    [list(column) for column in zip(*chunk, strict=True)],
                )
            else:
                sql = head + ", ".join([one] * len(batch)) + tail
                params = [value for row in chunk for value in row]
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                ids = [row[0] for row in cursor.fetchall()]
            if len(ids) != len(batch):  # never: RETURNING gives a row per row
                raise RuntimeError("insert_instances: ids missing")
            for obj, pk in zip(batch, ids, strict=True):
                obj.pk = pk
                obj._state.adding = False
                obj._state.db = using
    return objs
