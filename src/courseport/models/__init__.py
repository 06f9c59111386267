"""Course Builder's kinds as declarative schemas, and their privacy rules."""

from .kinds import (
    ADDITIONAL_COURSE_IMPORT_KINDS,
    COURSE_CONTENT_KINDS,
    COURSE_KINDS,
    EXCLUDED_KINDS,
    REGISTRY,
    VFS_KINDS,
    is_internal_kind,
    schema_for,
)
from .privacy import export_private, hmac_sha256_hex, make_transform, private_reference, safe_key
from .schema import ID, NAME, ExportContext, KindSchema, Prop, SchemaError, new_entity

__all__ = [
    "ADDITIONAL_COURSE_IMPORT_KINDS", "COURSE_CONTENT_KINDS", "COURSE_KINDS", "EXCLUDED_KINDS",
    "REGISTRY", "VFS_KINDS", "is_internal_kind", "schema_for", "export_private",
    "hmac_sha256_hex", "make_transform", "private_reference", "safe_key", "ID", "NAME",
    "ExportContext", "KindSchema", "Prop", "SchemaError", "new_entity",
]
