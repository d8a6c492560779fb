"""Streams: the Faust application folding events into live household status and risk alerts."""
