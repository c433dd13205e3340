"""Run folders: the one module that reads and writes them, their configuration, restore, export, predict."""
