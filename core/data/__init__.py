"""Data: reading task splits (files, GLUE folders, the hub, the demo suite), batching, metrics."""
