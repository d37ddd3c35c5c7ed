"""PostgreSQL targets: parsing a postgresql:// URL, and keeping its password out of sight.

Passwords never leave this module: `mask` hides every password eventstore was
given (and any `user:password@` or `password=` it meets) in text meant for
people, and a URL that does not parse is reported through a copy of it with
the password replaced, so no part of the password reaches a message whatever
is wrong with the URL.
"""

from __future__ import annotations

import re
import threading
from typing import Final
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import psycopg

from ...errors import TargetError

__all__ = ["describe", "mask", "parse_target"]

_IDENTIFIER: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")  # used with fullmatch
_QUERY_PASSWORD: Final = re.compile(r"([?&]password=)([^&#]*)", re.I)
_SECRETS: list[str] = []
_SECRETS_LOCK = threading.Lock()


def mask(text: str) -> str:
    """`text` with every password we were given, and URL/keyword passwords, hidden."""
    for secret in _SECRETS:
        text = text.replace(secret, "***")
    text = re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1***@", text)
    return re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", text, flags=re.I)


def _remember(secrets: list[str]) -> None:
    with _SECRETS_LOCK:
        for secret in secrets:
            if secret and secret not in _SECRETS:
                _SECRETS.append(secret)


def _password_span(target: str) -> tuple[int, int] | None:
    """Where the URL's password is, found without parsing the URL (which may be broken).

    From the first ':' of the user info to the last '@': a password holding
    '/', '?', '#' or spaces (all invalid unencoded) is still covered whole;
    an '@' later in the URL only widens what is hidden.
    """
    scheme_end = target.find("://")
    if scheme_end < 0:
        return None
    start = scheme_end + 3
    at = target.rfind("@")
    colon = target.find(":", start)
    if at < 0 or colon < 0 or colon > at:
        return None
    return colon + 1, at


def _candidates(target: str) -> set[str]:
    """What the password may be, as written: up to the last '@', or the last before a '?'."""
    found = set()
    for end in (len(target), target.find("?")):
        span = _password_span(target[:end] if end >= 0 else target)
        if span is not None:
            found.add(target[span[0] : span[1]])
    return found


def _hide_password(target: str) -> tuple[str, list[str]]:
    """(the URL with its passwords replaced by ***, the passwords as written and decoded)."""
    secrets: list[str] = []
    span = _password_span(target)
    if span is not None and span[1] > span[0]:
        secrets.append(target[span[0] : span[1]])
        target = target[: span[0]] + "***" + target[span[1] :]
    for found in _QUERY_PASSWORD.finditer(target):
        secrets.append(found.group(2))
    target = _QUERY_PASSWORD.sub(r"\1***", target)
    secrets += [unquote(s) for s in secrets]
    return target, [s for s in secrets if s and s != "***"]


def _invalid(target: str, exc: Exception) -> TargetError:
    """The error for a URL that does not parse, naming the fault but no part of the password."""
    shown, secrets = _hide_password(target)
    if not secrets:
        reason = " ".join(str(exc).split())
    else:
        # Parse the copy without the password: if that fails too, its message
        # names the real fault and cannot hold the password; if it parses,
        # the fault is in the password itself.
        try:
            urlsplit(shown)
            psycopg.conninfo.conninfo_to_dict(shown)
        except (ValueError, psycopg.Error) as other:
            reason = " ".join(str(other).split())
        else:
            reason = (
                "the password is not valid in a URL (percent-encode spaces and"
                " the characters : / ? # @ % as %XX)"
            )
    return TargetError(f"not a valid PostgreSQL URL ({mask(shown)}): {mask(reason)}")


def parse_target(target: str, schema: str | None) -> tuple[str, str, dict[str, str]]:
    """(conninfo without our options, schema, libpq parameters) of a postgresql:// URL."""
    _remember(_hide_password(target)[1])
    try:
        parts = urlsplit(target)
        query = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError as exc:
        raise _invalid(target, exc) from None
    kept = [(k, v) for k, v in query if k != "schema"]
    from_url = [v for k, v in query if k == "schema"]
    if from_url and schema is not None and from_url[-1] != schema:
        raise TargetError("the schema is given twice, differently (URL and option)")
    chosen = schema if schema is not None else (from_url[-1] if from_url else "public")
    if not isinstance(chosen, str) or not _IDENTIFIER.fullmatch(chosen):
        raise TargetError(
            f"schema must be a plain identifier (letters, digits, _; at most 63), not {chosen!r}"
        )
    try:
        conninfo = urlunsplit(parts._replace(query=urlencode(kept)))
        params = psycopg.conninfo.conninfo_to_dict(conninfo)
    except (ValueError, psycopg.Error) as exc:
        raise _invalid(target, exc) from None
    password = params.get("password")
    if isinstance(password, str) and password:
        _remember([password])
    written = _candidates(target) - {""}
    if written and not any(unquote(c) == (password or "") for c in written):
        # libpq read the user info differently (an unencoded '/', '?' or '#'
        # in the password ends it early): the pieces would land in the host,
        # port or database and be printed from there.
        raise _invalid(target, ValueError("the password is not valid in a URL"))
    return conninfo, chosen, {k: str(v) for k, v in params.items() if v is not None}


def describe(params: dict[str, str], schema: str) -> str:
    """Where the store is, safe to print: user, host, port, database and schema only."""
    user = params.get("user", "")
    host = params.get("host", "")
    port = params.get("port", "")
    where = f"{user}@" if user else ""
    where += host or "localhost"
    where += f":{port}" if port else ""
    return f"postgresql://{where}/{params.get('dbname', '')} (schema {schema})"
