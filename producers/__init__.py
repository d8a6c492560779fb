"""Producers: the departments' side. Publishing SDK, identity pseudonyms, file import, simulator."""
