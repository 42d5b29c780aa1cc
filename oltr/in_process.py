"""Call a command's entry point (``oltr.cli.main``, ``oltr.report.cli.main``) as its own process would run.

The sweep calls each step this way instead of starting ``python main.py ...``: the same argv, the
same exit status, and the process-wide state put back afterwards (``process_state.py``), without
paying for torch's imports again at every step.
"""
import sys
import traceback

INTERRUPTED = 130  # what oltr.cli.main returns on Ctrl-C (and a shell reports for a process stopped by SIGINT)


def call_in_process(entry_point, argv, program):
    """``entry_point(argv)``'s exit status; ``program`` is the ``sys.argv[0]`` a process would have.

    A SystemExit gives its code, as at the end of a process; any other exception is printed with its
    traceback to stderr, as Python prints an uncaught one, and is status 1. Ctrl-C is not swallowed.
    """
    from .process_state import preserved_process_state  # imports torch: not for --help or --dry-run

    with preserved_process_state():
        sys.argv[:] = [program, *argv]
        try:
            return exit_status(entry_point(list(argv)))
        except SystemExit as exit_:
            return exit_status(exit_.code)
        except KeyboardInterrupt:
            raise
        except Exception:
            traceback.print_exc()
            return 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()


def exit_status(code):
    """The status a process exiting with ``sys.exit(code)`` has: None is 0, a non-integer is printed and 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1
