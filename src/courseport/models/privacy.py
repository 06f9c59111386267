"""Course Builder's privacy transform for exports (spec §3.1, §3.2, §6.9).

With ``--privacy`` every exported row gets its kind's *safe key* (user ids
in key names replaced by their HMAC), loses its blacklisted fields, has its
user-id fields hashed, and has key references replaced by the referents'
safe keys. The same secret gives the same pseudonyms as Course Builder.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from typing import Any

from ..datastore import Key
from .kinds import schema_for
from .schema import KindSchema, Transform


def hmac_sha256_hex(secret: Any, value: Any) -> str:
    """``crypto.hmac_sha_2_256_transform``: lowercase hex HMAC-SHA256."""
    return hmac.new(str(secret).encode("utf-8"), str(value).encode("utf-8"), hashlib.sha256).hexdigest()


def make_transform(secret: Any | None) -> Transform:
    """The HMAC transform for ``secret``, or for a fresh random 128-bit one."""
    if secret is None:
        secret = secrets.randbits(128)
    key = str(secret).encode("utf-8")
    # a learner's rows come together (events are written learner by learner),
    # so a small cache, emptied when full, catches most repeats
    cache: dict[Any, str] = {}

    def transform(value: Any) -> str:
        try:
            return cache[value]
        except (KeyError, TypeError):
            digest = hmac.digest(key, str(value).encode("utf-8"), "sha256").hex()
            if len(cache) >= 65_536:
                cache.clear()
            try:
                cache[value] = digest
            except TypeError:
                pass
            return digest

    return transform


def safe_key(key: Key, transform: Transform) -> Key:
    """A key as it may leave the store under ``--privacy``."""
    schema = schema_for(key.kind)
    return schema.safe_key(key, transform) if schema else key


def _remove_subfield(value: Any, sub: str) -> Any:
    """Drop ``sub`` from a dict, or from a JSON list of [name, value] pairs."""
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k != sub}
    if isinstance(value, str):
        try:
            pairs = json.loads(value)
        except ValueError:
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


def export_private(
    schema: KindSchema, key: Key, props: dict[str, Any], transform: Transform
) -> tuple[Key, dict[str, Any]]:
    """``for_export``: the safe key and the properties a privacy export keeps."""
    out = {
        name: (safe_key(value, transform) if isinstance(value, Key) else value)
        for name, value in props.items()
    }
    apply_blacklist(out, schema.blacklist)
    for name in schema.hashed:
        if name in out:
            out[name] = transform(out[name])
    if schema.key_by_user_id and "user_id" in props:
        out["key_by_user_id"] = Key(schema.kind, transform(props["user_id"]), namespace=key.namespace)
    return schema.safe_key(key, transform), out

