"""The benchmark harness (`python -m bench.run`) and the synthetic data it runs on."""
