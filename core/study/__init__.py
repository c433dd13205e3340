"""Studies over runs: benches of strategies and seeds, their statistics, and figures."""
