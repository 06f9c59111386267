"""Course Builder's privacy transform for exports (spec §3.1, §3.2, §3.9, §6.9).

With ``--privacy`` every exported row gets its kind's *safe key* (user ids
and emails in key names replaced by their HMAC), loses its blacklisted
fields, has its user-id fields hashed, has key references replaced by the
referents' safe keys, and gets its kind's own rewrites. The same secret
gives the same pseudonyms as Course Builder. docs/privacy.md has the rules
kind by kind, and where courseport goes further than Course Builder.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from typing import Any, Mapping

from ..datastore import Key
from .kinds import schema_for
from .schema import ExportContext, KindSchema, Transform


def _utf8(value: Any) -> bytes:
    """``str(value)`` as UTF-8; a lone surrogate (JSON can carry one) as its own bytes, not an error."""
    return str(value).encode("utf-8", "surrogatepass")


def hmac_sha256_hex(secret: Any, value: Any) -> str:
    """``crypto.hmac_sha_2_256_transform``: lowercase hex HMAC-SHA256."""
    return hmac.new(_utf8(secret), _utf8(value), hashlib.sha256).hexdigest()


def make_transform(secret: Any | None) -> Transform:
    """The HMAC transform for ``secret``, or for a fresh random 128-bit one."""
    if secret is None:
        secret = secrets.randbits(128)
    key = _utf8(secret)
    # a learner's rows come together (events are written learner by learner),
    # so a small cache, emptied when full, catches most repeats
    cache: dict[Any, str] = {}

    def transform(value: Any) -> str:
        try:
            return cache[value]
        except (KeyError, TypeError):
            digest = hmac.digest(key, _utf8(value), "sha256").hex()
            if len(cache) >= 65_536:
                cache.clear()
            try:
                cache[value] = digest
            except TypeError:
                pass
            return digest

    return transform


def safe_key(key: Key, ctx: ExportContext, row: Mapping[str, Any] | None = None) -> Key:
    """A key as it may leave the store under ``--privacy``.

    ``row`` is the row the key is exported in: some kinds find the user id
    in their key name from it (the ``name`` of a StudentPropertyEntity, the
    ``reviewee_key`` of a submission).
    """
    schema = schema_for(key.kind)
    return schema.safe_key(key, row, ctx) if schema else key


def private_reference(value: Any, ctx: ExportContext, row: Mapping[str, Any] | None) -> Any:
    """A reference property's value under ``--privacy``.

    A key becomes its safe key; a key string (a reference stored before its
    kind was typed) is decoded, made safe and encoded again; anything else
    in a reference property is hashed whole, since what it names is unknown.
    """
    if value is None:
        return None
    if type(value) is Key:
        return safe_key(value, ctx, row)
    if type(value) is list:
        return [private_reference(item, ctx, row) for item in value]
    if isinstance(value, str):
        try:
            _, key = Key.from_urlsafe(value)
        except ValueError:
            return ctx.transform(value)
        if key.id_or_name is None:
            return ctx.transform(value)
        return ctx.key_string(safe_key(key, ctx, row))
    return ctx.transform(value)


def _remove_subfield(value: Any, sub: str) -> Any:
    """Drop ``sub`` from a dict, or from a JSON list of [name, value] pairs."""
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k != sub}
    if isinstance(value, str):
        try:
            pairs = json.loads(value)
        except (ValueError, RecursionError):
            return value
        if isinstance(pairs, list):
            kept = [p for p in pairs if not (isinstance(p, list) and p and p[0] == sub)]
            return type(value)(json.dumps(kept))
    return value


def apply_blacklist(props: dict[str, Any], blacklist: tuple[str, ...]) -> None:
    for name in blacklist:
        field, _, sub = name.partition(".")
        if not sub:
            props.pop(field, None)
        elif field in props:
            props[field] = _remove_subfield(props[field], sub)


_SPECIAL = frozenset({Key, list})


def _keys_made_safe(value: Any, ctx: ExportContext, row: Mapping[str, Any]) -> Any:
    """Key values (alone or in a list) as their safe keys; other values as they are."""
    if type(value) is Key:
        return safe_key(value, ctx, row)
    return [safe_key(item, ctx, row) if type(item) is Key else item for item in value]


def export_private(
    schema: KindSchema, key: Key, props: dict[str, Any], ctx: ExportContext
) -> tuple[Key, dict[str, Any]]:
    """``for_export``: the safe key and the properties a privacy export keeps.

    ``props`` may be typed values or their JSON form (a download splices
    stored JSON): every rule works on either.
    """
    out = {
        name: (value if type(value) not in _SPECIAL else _keys_made_safe(value, ctx, props))
        for name, value in props.items()
    }
    for name in schema.key_props:  # references stored as key strings (or worse)
        value = out.get(name)
        if value is None or type(value) is Key:
            continue
        if type(value) is list:
            out[name] = [item if type(item) is Key else private_reference(item, ctx, props) for item in value]
        else:
            out[name] = private_reference(value, ctx, props)
    apply_blacklist(out, schema.blacklist)
    for name in schema.hashed:
        if name in out:
            out[name] = ctx.transform(out[name])
    if schema.key_by_user_id and "user_id" in props:
        out["key_by_user_id"] = Key(schema.kind, ctx.transform(props["user_id"]), namespace=ctx.namespace)
    if schema.rewrite is not None:
        schema.rewrite(out, key, ctx)
    return schema.safe_key(key, props, ctx), out
