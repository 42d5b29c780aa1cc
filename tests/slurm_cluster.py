"""A real one-node SLURM cluster in a temporary folder: munged, slurmctld and slurmd of this host.

Debian's ``slurm-wlm`` and ``munge`` (``.ci/run`` installs them). ``start(folder)`` writes a
``slurm.conf`` for this host (its CPUs and memory, ``proctrack/linuxproc``, ``task/none``, no
accounting, state and logs in ``folder``), starts the three daemons as root, waits until ``sinfo``
shows the node idle and returns the environment (``SLURM_CONF``) that points the clients at it.
``stop(folder)`` ends them. The tests use it through the ``slurm_cluster`` fixture (``conftest.py``);
by hand: ``python tests/slurm_cluster.py start /tmp/slurm`` prints the ``export`` line, ``stop`` ends it.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
PARTITION = "debug"


class ClusterUnavailable(RuntimeError):
    """What is missing to start the cluster on this machine, as one sentence."""


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _memory_mb():
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return 1024


def _conf(folder, host):
    ctld_port, slurmd_port = _free_port(), _free_port()
    # SLURM keeps a little memory back; CPUs as the kernel counts them (one thread per core here).
    memory = max(_memory_mb() - 512, 256)
    return f"""\
ClusterName=oltrtest
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
AuthInfo=socket={folder}/munge.socket,cred_expire=10
CredType=cred/munge
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/slurmctld.log
SlurmdLogFile={folder}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
JobRequeue=1
KillWait=5
MinJobAge=600
SchedulerParameters=kill_invalid_depend,bf_interval=1,sched_min_interval=100000
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
NodeName={host} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} RealMemory={memory} State=UNKNOWN
PartitionName={PARTITION} Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


def missing_programs():
    return [name for name in (*DAEMONS, "sbatch", "sinfo", "squeue", "scontrol") if shutil.which(name) is None]


def environment(folder):
    return dict(os.environ, SLURM_CONF=str(Path(folder) / "slurm.conf"))


def start(folder, timeout=60):
    """Start the cluster in ``folder``; returns the environment of its clients. ClusterUnavailable if it cannot."""
    missing = missing_programs()
    if missing:
        raise ClusterUnavailable(f"{', '.join(missing)} not installed (apt-get install slurm-wlm munge)")
    if os.geteuid() != 0:
        raise ClusterUnavailable("the SLURM daemons of the test cluster start as root; this process is not root")
    folder = Path(folder).resolve()
    for sub in ("state", "spool", "munge"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    host = socket.gethostname().split(".")[0]
    key = folder / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    (folder / "munge").chmod(0o700)
    (folder / "slurm.conf").write_text(_conf(folder, host))
    env = environment(folder)
    _daemon(
        [
            "munged",
            "--force",
            f"--socket={folder}/munge.socket",
            f"--key-file={key}",
            f"--pid-file={folder}/munged.pid",
            f"--log-file={folder}/munged.log",
            f"--seed-file={folder}/munge/munged.seed",
        ],
        env,
        folder,
    )
    _daemon(["slurmctld", "-c", "-f", str(folder / "slurm.conf")], env, folder)
    _daemon(["slurmd", "-f", str(folder / "slurm.conf"), "-N", host], env, folder)
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        probe = subprocess.run(["sinfo", "-h", "-N", "-o", "%t"], env=env, capture_output=True, text=True)
        state = (probe.stdout or probe.stderr).strip()
        if probe.returncode == 0 and state.rstrip("*") == "idle":
            return env
        time.sleep(0.3)
    logs = " | ".join(_tail(folder / f"{name}.log") for name in DAEMONS)
    stop(folder)
    raise ClusterUnavailable(f"the node did not come up idle within {timeout}s (sinfo: {state!r}); logs: {logs}")


def _daemon(command, env, folder):
    result = subprocess.run(command, env=env, capture_output=True, text=True, cwd=folder)
    if result.returncode != 0:
        stop(folder)
        raise ClusterUnavailable(f"{command[0]} did not start: {(result.stderr or result.stdout).strip()[-300:]}")


def _tail(path):
    try:
        return f"{path.name}: " + " / ".join(path.read_text(errors="replace").strip().splitlines()[-3:])
    except OSError:
        return f"{path.name}: none"


def stop(folder):
    """End the daemons started in ``folder`` (slurmd, slurmctld, then munged) and wait for them to go."""
    folder = Path(folder)
    for name in ("slurmd", "slurmctld", "munged"):
        pid_file = folder / f"{name}.pid"
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            continue
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A daemon's zombie (its parent is init here) counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("start", "stop"):
        sys.exit("usage: python tests/slurm_cluster.py {start|stop} FOLDER")
    if sys.argv[1] == "start":
        try:
            start(sys.argv[2])
        except ClusterUnavailable as error:
            sys.exit(f"error: {error}")
        print(f"export SLURM_CONF={Path(sys.argv[2]).resolve() / 'slurm.conf'}")
    else:
        stop(sys.argv[2])
