"""Backups of a ForecastModel's prediction log and model files, and their restore.

Modules, one concern each:

- ``layout``, ``manifest``, ``retention``, ``catalog``: pure decisions (key names, what a
  complete backup is, what to delete, which backup to restore);
- ``storage`` (S3), ``database`` (PostgreSQL, pg_dump, pg_restore), ``artifacts`` (model
  sources): the only modules that talk to the outside;
- ``backup``, ``restore``: orchestration; ``cli``: the command line; ``settings``: config.

Nothing runs at import time.
"""
