"""A training run and what it leaves on disk.

`loop.train` (one run from a `TrainConfig`), `callbacks` (what runs around `fit`), `run_dir`
(the one reader and writer of a run directory), `comparison` (several runs, summarised over
seeds), `distribute` (strategy and precision set-up) and `console` (what a run prints).
"""
