"""Small English helpers for messages: `plural(1, "batch")`, `a("OrchestrationStarted")`."""

from __future__ import annotations

__all__ = ["a", "plural"]

_IRREGULAR = {"batch": "batches", "execution(s)": "executions", "entry": "entries"}


def plural(count: int, noun: str) -> str:
    """`1 batch`, `2 batches`, `0 problems`: the count with the noun agreeing."""
    if count == 1:
        return f"{count} {noun}"
    return f"{count} {_IRREGULAR.get(noun, noun + 's')}"


def a(word: str) -> str:
    """The word with its indefinite article: `an OrchestrationStarted`, `a TimerFired`."""
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"
