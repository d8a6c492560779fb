"""Fupin: event-sourced platform for poverty alleviation and return-to-poverty monitoring."""

from pathlib import Path

__version__ = "0.1.0"

#: Root of the source tree: schemas/, dbt_project/ and shipped reference data live here.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
