"""The local cluster's server log (deploy/local/postgres.sh), and what a test session added to it."""

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
POSTGRES_SH = ROOT / "deploy" / "local" / "postgres.sh"


def local_cluster_paths() -> tuple[Path, Path]:
    """Where deploy/local/postgres.sh keeps the local cluster's data and writes its log (`paths`)."""
    out = subprocess.run([str(POSTGRES_SH), "paths"], check=True, capture_output=True, text=True).stdout
    paths = dict(line.split(" ", 1) for line in out.splitlines())
    return Path(paths["data"]), Path(paths["log"])


# How long the log was when the session began: the scan reads what this session's tests made the
# server write (a cluster that ran an older configuration may hold older lines).
_size_at_start = 0


def remember_where_the_session_began() -> None:
    global _size_at_start
    _, log = local_cluster_paths()
    _size_at_start = log.stat().st_size if log.is_file() else 0


def written_since_session_began(log: Path) -> str:
    with log.open("rb") as f:
        start = _size_at_start if log.stat().st_size >= _size_at_start else 0  # replaced meanwhile
        f.seek(start)
        return f.read().decode("utf-8", errors="replace")
