"""Ingestion: landing partitions into ``raw.<source>``, rows that break a row rule into
``quarantine.<source>``."""
