"""Stopping on request: SIGTERM (a preempted VM, Slurm's time limit), SIGINT (Ctrl-C) and JAX's
preemption notice become one agreed step on every process of a job.

A signal only sets a flag on the process that got it. With several processes, every step each
process adds its flag to a one-number all-reduce over the mesh (launched at step N, read at step
N+1, so it never waits on the step in flight); its sum is the same on every process, so all of
them stop at the same step, save one checkpoint together and exit. A decision taken from the
local flag alone would leave the others waiting in a collective the stopped one never joins.
"""
import signal
import threading

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding, PartitionSpec

from jaxnet import JaxnetError

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Preempted(JaxnetError):
    """SIGTERM or SIGINT: the run saved a checkpoint at the step it was on and stopped."""


class StopSignals:
    """Within `with StopSignals(mesh) as stop:`, SIGTERM and SIGINT only set a flag; `stop.at(step)`
    says, identically on every process, whether to stop at `step` (the reason, else None).

    `raise_now`: the handler raises Preempted at once instead (work that is only read, such as
    an evaluation pass, is dropped); inside `with stop.deferred():` a signal waits until the block
    has finished (files being written are written in full) and then raises."""

    def __init__(self, mesh=None, raise_now: bool = False):
        self.mesh, self.raise_now = mesh, raise_now
        self.signal, self.reason, self._previous = None, None, {}
        self._deferring, self._vote, self._sum = False, None, None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.signal is not None:
            return  # already stopping: a second signal changes nothing
        self.signal = signal.Signals(signum).name
        if self.raise_now and not self._deferring:
            raise Preempted(f"{self.signal}: stopped before anything was written; run the same"
                            " command again")

    def deferred(self):
        """A block a signal does not interrupt (raise_now): it raises once the block is done."""
        stop = self

        class _Deferred:
            def __enter__(self):
                stop._deferring = True

            def __exit__(self, kind, *rest):
                stop._deferring = False
                if kind is None and stop.signal is not None and stop.raise_now:
                    raise Preempted(f"{stop.signal}: stopped after the results were written in full")

        return _Deferred()

    def at(self, step: int):
        """The reason to stop at `step`, the same on every process; None to go on."""
        if self.reason is not None:
            return self.reason
        if jax.process_count() == 1 or self.mesh is None:
            self.reason = self.signal
            return self.reason
        if _preemption_notice(step):
            self.reason = "JAX's preemption notice"
            return self.reason
        agreed = self._vote is not None and int(self._vote.addressable_data(0)) > 0
        if agreed:  # every process read the same sum: all stop here
            self.reason = self.signal or "a stop requested on another process"
            return self.reason
        self._vote = self._launch_vote(self.signal is not None)
        return None

    def _launch_vote(self, flag: bool):
        """The sum over the mesh of every process's flag (one entry per device), not waited for."""
        mesh = self.mesh
        axes = tuple(mesh.axis_names)
        if self._sum is None:
            self._sum = jax.jit(jnp.sum, out_shardings=NamedSharding(mesh, PartitionSpec()))
        flags = jax.make_array_from_callback(
            (mesh.size,), NamedSharding(mesh, PartitionSpec(axes)),
            lambda index: np.full((1,), int(flag), np.int32))
        return self._sum(flags)

    def __exit__(self, *exc):
        stopping = self.reason is not None
        for sig, handler in self._previous.items():
            # after a stop, a second signal while the process saves and exits is ignored
            signal.signal(sig, signal.SIG_IGN if stopping and not self.raise_now else handler)


def _preemption_notice(step: int) -> bool:
    """JAX's own agreed preemption sync point (a multi-host job's preemption notice)."""
    try:
        return multihost_utils.reached_preemption_sync_point(step)
    except RuntimeError:  # the preemption service is off (jax_enable_preemption_service)
        return False
