"""The HTTP gateway (``fupin gateway``): contract envelopes over HTTP for departments without Kafka.

One module a job: :mod:`.app` (routes and answers), :mod:`.body` (a request body into events),
:mod:`.judging` (the judgement, stateless: in worker processes for large requests),
:mod:`.ingest` (duplicates, publishing and dead letters), :mod:`.index` (the
accepted events, for duplicates), :mod:`.openapi` (the document from ``schemas/``), :mod:`.auth`
(tokens), :mod:`.process` (the running service's record, for ``fupin up`` and ``status``).
"""
