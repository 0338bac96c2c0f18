"""Runs `python -m keras_dpnp.train` with a fault injected at one of the epoch-end writes.

    python crashing_train.py POINT EPOCH FAULT [train flags...]

POINT is where, during the writes that end epoch EPOCH (1-based), the fault strikes:

    unit_file     while the backup unit's variables are being written (a partial unit)
    after_unit    once the unit is committed, before history.csv and the checkpoints
    in_last       while last.keras is being written (a partial temporary file)

FAULT is `sigkill` (the process kills itself: no handler, no cleanup runs) or `enospc` (the
write raises OSError ENOSPC, as a full disk does). A helper of tests/training/test_resume.py:
the library has no test hooks, so the faults are patched in from outside. keras_dpnp's start-up
does not take this script for an entry point, so the test sets TF_ENABLE_ONEDNN_OPTS itself.
"""

import errno
import os
import signal
import sys


def _strike(fault):
    if fault == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    raise OSError(errno.ENOSPC, "No space left on device")


def _patch(point, epoch, fault):
    from keras_dpnp import files
    from keras_dpnp.model import AdvDPNP
    from keras_dpnp.training.run_dir import RunDir

    write_durably, commit_epoch, save = files.write_durably, RunDir.commit_epoch, AdvDPNP.save
    committed = [0]

    def partial_write(path, payload):
        if point == "unit_file" and f"epoch-{epoch:04d}" in path:
            with open(path, "wb") as f:
                f.write(payload[: len(payload) // 2])
            _strike(fault)
        write_durably(path, payload)

    def commit_then_strike(run, state):
        size = commit_epoch(run, state)
        committed[0] = state.epoch
        if point == "after_unit" and state.epoch == epoch:
            _strike(fault)
        return size

    def partial_save(model, path, *args, **kwargs):
        if point == "in_last" and ".last.keras." in path and committed[0] == epoch:
            with open(path, "wb") as f:
                f.write(b"PK\x03\x04 partial")
            _strike(fault)
        save(model, path, *args, **kwargs)

    files.write_durably = partial_write
    RunDir.commit_epoch = commit_then_strike
    AdvDPNP.save = partial_save


def main():
    point, epoch, fault = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    sys.argv = ["keras_dpnp.train", *sys.argv[4:]]
    _patch(point, epoch, fault)
    from keras_dpnp.train import run

    run()


if __name__ == "__main__":
    main()
