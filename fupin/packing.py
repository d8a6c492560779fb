"""Values the platform stores compressed: a marker byte, then an lz4 block that knows its size.

The stream workers' household states are stored so (in their table and its changelog topic, which
the embedded broker keeps in memory). One home for the format, because ``fupin privacy scan``
must read what such a value holds, not its compressed bytes: a compressed raw identifier would be
hidden, and compressed digits and separators look like identifiers that are not there.
"""

from __future__ import annotations

import lz4.block

#: First byte of a packed value (a JSON document starts with ``{`` or ``[``).
PACKED = b"\x04"


def pack(data: bytes) -> bytes:
    return PACKED + lz4.block.compress(data, store_size=True)


def unpack(value: bytes) -> bytes:
    """The bytes a packed value holds; any other value as it is (also one that only looks packed)."""
    if value[:1] != PACKED:
        return value
    try:
        return lz4.block.decompress(value[1:])
    except (lz4.block.LZ4BlockError, ValueError):
        return value
