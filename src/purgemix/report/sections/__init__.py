"""The run report's sections, one module each (``report/run.py`` calls them in order)."""
