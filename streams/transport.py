"""Delivery of a batch's outputs: aiokafka record batches built per topic and partition."""

from __future__ import annotations

import asyncio
from typing import Any


class Outbox:
    """A batch's outgoing records, grouped per topic and partition into aiokafka record batches.

    One ``send_batch`` per partition instead of one ``send`` per record: no partitioner, future and
    accumulator call per record. ``flush`` returns each sent batch's metadata (the base offset).
    """

    def __init__(self, producer: Any) -> None:
        self.producer = producer
        self.open: dict[tuple[str, int], Any] = {}
        self.sent: list[Any] = []

    async def add(
        self, topic: str, partition: int, key: bytes | None, value: bytes | None, headers: list | None = None
    ) -> None:
        batch = self.open.get((topic, partition))
        if batch is None:
            batch = self.open[(topic, partition)] = self.producer.create_batch()
        if batch.append(key=key, value=value, timestamp=None, headers=headers or []) is None:
            # full: send it and start another (a single record always fits an empty batch)
            self.sent.append(await self.producer.send_batch(batch, topic, partition=partition))
            batch = self.open[(topic, partition)] = self.producer.create_batch()
            batch.append(key=key, value=value, timestamp=None, headers=headers or [])

    async def flush(self) -> list[Any]:
        """Send what is open and wait until everything is delivered; the batches' metadata."""
        for (topic, partition), batch in self.open.items():
            self.sent.append(await self.producer.send_batch(batch, topic, partition=partition))
        self.open = {}
        sent, self.sent = self.sent, []
        return list(await asyncio.gather(*sent)) if sent else []
