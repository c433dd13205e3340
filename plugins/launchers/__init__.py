"""Built-in launchers (``mtl bench --launcher``), one module per launcher: where a bench's runs execute."""
