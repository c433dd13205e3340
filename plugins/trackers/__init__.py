"""Built-in experiment trackers (``--report-to``), one module per tracker; each imports its package only when used."""
