"""ErrorDetails variants: built by keyword, immutable, equal and hashed by value."""

from __future__ import annotations

import pytest

from eventstore import events as ev

VARIANTS = [
    (ev.ApplicationError, {"kind": "ActivityFailed", "message": "m", "retryable": True}),
    (ev.InfrastructureError, {"operation": "op", "message": "m", "retryable": False}),
    (ev.ConfigurationError, {"kind": "Nondeterminism", "resource": "r", "message": None}),
    (
        ev.PoisonError,
        {
            "attempt_count": 3,
            "max_attempts": 2,
            "message_type": ev.OrchestrationMessage(instance="i", execution_id=1),
            "message": "m",
        },
    ),
    (ev.UnknownErrorDetails, {"name": "Newer", "value": {"x": [1]}}),
]


@pytest.mark.parametrize(("cls", "fields"), VARIANTS, ids=[v[0].__name__ for v in VARIANTS])
def test_a_variant_is_its_fields(cls: type[ev.ErrorDetails], fields: dict[str, object]) -> None:
    details = cls(**fields)
    assert {name: getattr(details, name) for name in cls._fields} == fields
    assert details == cls(**fields)
    if cls is not ev.UnknownErrorDetails:  # its value may be unhashable JSON
        assert hash(details) == hash(cls(**fields))
    first = cls._fields[0]
    changed = {**fields, first: "other"}
    assert details != cls(**changed)
    assert repr(details).startswith(f"{cls.__name__}({first}=")
    with pytest.raises(AttributeError):
        details.message = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        cls(**{k: v for k, v in fields.items() if k != first})
    with pytest.raises(TypeError):
        cls(**fields, extra=1)


def test_variants_of_equal_values_differ_by_type() -> None:
    app = ev.ApplicationError(kind="k", message="m", retryable=False)
    infra = ev.InfrastructureError(operation="k", message="m", retryable=False)
    assert app != infra


def test_failure_summary_is_the_kind_and_the_last_line() -> None:
    from eventstore.error_details import failure_summary

    details = ev.ApplicationError(
        kind="ActivityFailed", message="trace\n  at x\nboom", retryable=True
    )
    assert failure_summary(details) == "ActivityFailed: boom"
    bare = ev.InfrastructureError(operation="op", message="", retryable=False)
    assert failure_summary(bare) == "InfrastructureError"
    cancelled = ev.ApplicationError(kind=ev.Cancelled(reason="user"), message="x", retryable=False)
    assert failure_summary(cancelled) == "cancelled: user"
