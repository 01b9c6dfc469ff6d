"""Evaluation: how well a run did, measured (the demo's noise detection today; the fine-tune-and-evaluate harness lands here)."""
