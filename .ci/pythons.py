"""Print the fast lanes' Pythons, one "3.N PATH" a line: the oldest and the newest of the
Pythons the package supports (3.10 to 3.13, the noxfile's) present on this machine
(``python3.N`` on the PATH, else pyenv's build of it), less the Python running this script
(the default lane's). Each candidate must run and report its
own version; a pyenv shim that answers for another version does not count."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys


def candidates(minor: int) -> list[str]:
    found = [shutil.which(f"python3.{minor}") or ""]
    found += sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/3.{minor}.*/bin/python3")))
    return [f for f in found if f]


def works(exe: str, minor: int) -> bool:
    try:
        out = subprocess.run([exe, "-c", "import sys, venv, ensurepip; print(sys.version_info[1])"],
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and out.stdout.strip() == str(minor)


def main() -> None:
    present: dict[int, str] = {}
    for minor in range(10, 14):
        for exe in candidates(minor):
            if works(exe, minor):
                present[minor] = exe
                break
    present[sys.version_info[1]] = sys.executable
    for minor in sorted({min(present), max(present)} - {sys.version_info[1]}):
        print(f"3.{minor} {present[minor]}")


if __name__ == "__main__":
    main()
