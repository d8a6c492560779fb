"""Validation throughput over a mix of every event type (target: 100k/s, one core).

The mix: every valid example under schemas/ (all 33 types, both versions where there are two),
repeated with fresh event ids to N envelopes, shuffled. Measures ``fupin.contract.validate`` on
decoded dicts, ``decode`` on the raw bytes (JSON + validate), and ``fupin.validity.judge``: what
every reader of the input topics now pays per message (decode, validate, and the judgement's
checks: repeated keys, control characters, key, dates, raw identifiers).
Run: ``python bench/validate.py [N]``.
"""

from __future__ import annotations

import json
import random
import sys
import time
import uuid

import orjson

from fupin import contract, validity

TARGET_PER_S = 100_000


def mix(n: int) -> list[dict]:
    examples = [
        json.loads(path.read_text())
        for path in sorted(contract.SCHEMAS_DIR.glob("*/*/examples/*/valid-*.json"))
    ]
    rng = random.Random(7)
    out = []
    for i in range(n):
        envelope = json.loads(json.dumps(examples[i % len(examples)]))
        envelope["event_id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        out.append(envelope)
    rng.shuffle(out)
    return out, len(examples), len({e["event_type"] for e in examples})


def rate(fn, items) -> float:
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        for item in items:
            fn(item)
        best = max(best, len(items) / (time.perf_counter() - start))
    return best


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    envelopes, n_examples, n_types = mix(n)
    raws = [orjson.dumps(e) for e in envelopes]
    for e in envelopes[:1000]:  # compile every type's validator before timing
        contract.validate(e)
    validate_rate = rate(contract.validate, envelopes)
    decode_rate = rate(contract.decode, raws)
    keyed = [(raw, e["household_id"].encode(), e["department"]) for raw, e in zip(raws, envelopes, strict=True)]
    judge_rate = rate(lambda item: validity.judge(*item), keyed)
    print(f"mix: {n:,} envelopes from {n_examples} valid examples of {n_types} event types")
    print(
        f"validate(dict): {validate_rate:,.0f} envelopes/s  (target {TARGET_PER_S:,}/s: "
        f"{validate_rate / TARGET_PER_S:.2f}x)"
    )
    print(
        f"decode(bytes):  {decode_rate:,.0f} envelopes/s  (JSON decode + validate, "
        f"{decode_rate / TARGET_PER_S:.2f}x)"
    )
    print(
        f"judge(bytes):   {judge_rate:,.0f} envelopes/s  (the whole validity judgement, target "
        f"{TARGET_PER_S:,}/s: {'met' if judge_rate >= TARGET_PER_S else 'NOT met'})"
    )
    return 0 if min(validate_rate, judge_rate) >= TARGET_PER_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
