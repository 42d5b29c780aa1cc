"""The process-wide state one in-process step could leave to the next, saved before it and restored after.

The sweep runs its steps in one process (``oltr/sweep.py``); each step must behave as if it had a
fresh process, so its results are bit-identical to its command run alone. A step reseeds the global
generators before it draws anything (``build_run``), but anything it sets and never resets would reach
the steps after it: the generators' states, torch's thread count and backend flags, the default dtype
and grad mode, environment variables, the working directory, ``sys.argv``, warning filters and
"shown once" registries, logging handlers and levels, the current CUDA device and a process group
left behind by ``init_distributed``. All of those are put back afterwards.
"""
import contextlib
import logging
import os
import random
import sys
import warnings

import numpy as np
import torch


def _backend_flags():
    """(getter, setter) pairs of the torch flags that change which kernels run, hence results."""
    cudnn, matmul, mkldnn = torch.backends.cudnn, torch.backends.cuda.matmul, torch.backends.mkldnn

    def attribute(owner, name):
        return (lambda: getattr(owner, name)), (lambda value: setattr(owner, name, value))

    flags = [attribute(cudnn, name) for name in ("enabled", "benchmark", "deterministic", "allow_tf32")]
    flags += [attribute(matmul, name) for name in ("allow_tf32", "allow_fp16_reduced_precision_reduction",
                                                   "allow_bf16_reduced_precision_reduction")]
    flags.append(attribute(mkldnn, "enabled"))
    flags.append((torch.get_float32_matmul_precision, torch.set_float32_matmul_precision))
    flags.append(((lambda: (torch.are_deterministic_algorithms_enabled(),
                            torch.is_deterministic_algorithms_warn_only_enabled())),
                  (lambda value: torch.use_deterministic_algorithms(value[0], warn_only=value[1]))))
    flags.append((torch.get_default_dtype, torch.set_default_dtype))
    flags.append((torch.is_grad_enabled, torch.set_grad_enabled))
    flags.append((torch.get_num_threads, torch.set_num_threads))
    return flags


def _loggers():
    manager = logging.Logger.manager
    return [logging.root] + [logger for logger in manager.loggerDict.values() if isinstance(logger, logging.Logger)]


def _logger_state(logger):
    return logger.level, list(logger.handlers), logger.propagate, logger.disabled


def _cuda_state():
    if not torch.cuda.is_initialized():
        return None
    return torch.cuda.current_device(), torch.cuda.get_rng_state_all()


@contextlib.contextmanager
def preserved_process_state():
    """Restore, after the block, the process-wide state listed in the module docstring."""
    flags = _backend_flags()
    saved_flags = [get() for get, _ in flags]
    rng = random.getstate(), np.random.get_state(), torch.get_rng_state()
    cuda = _cuda_state()
    environ, cwd, argv = dict(os.environ), os.getcwd(), list(sys.argv)
    loggers = {logger: _logger_state(logger) for logger in _loggers()}
    logging_disabled = logging.root.manager.disable
    try:
        # catch_warnings restores the filters and showwarning, and invalidates every module's
        # "already shown" registry, so a step prints its warnings as a fresh process would.
        with warnings.catch_warnings():
            warnings.onceregistry.clear()
            yield
    finally:
        _leave_process_group()
        for (_, set_flag), value in zip(flags, saved_flags):
            with contextlib.suppress(RuntimeError):  # a flag this build of torch cannot change
                set_flag(value)
        random.setstate(rng[0])
        np.random.set_state(rng[1])
        torch.set_rng_state(rng[2])
        if cuda is not None:
            torch.cuda.set_device(cuda[0])
            torch.cuda.set_rng_state_all(cuda[1])
        # (A step that first initialises CUDA seeds every device itself: seed_everything's torch.manual_seed.)
        _restore_environ(environ)
        os.chdir(cwd)
        sys.argv[:] = argv
        logging.disable(logging_disabled)
        for logger in _loggers():
            level, handlers, propagate, disabled = loggers.get(logger, (logging.NOTSET, [], True, False))
            logger.setLevel(level)
            logger.handlers[:] = handlers
            logger.propagate, logger.disabled = propagate, disabled
        warnings.onceregistry.clear()


def _restore_environ(saved):
    for name in set(os.environ) - set(saved):
        del os.environ[name]
    for name, value in saved.items():
        if os.environ.get(name) != value:
            os.environ[name] = value


def _leave_process_group():
    """shutdown_distributed destroys the group it joined; a step that failed before it must not leave one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
