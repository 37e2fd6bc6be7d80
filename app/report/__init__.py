"""Coverage and reports: the ``coverage``/``report``/``sessions verdict`` commands, the
coverage report page, its inline charts and audio clips (docs/coverage.md)."""
