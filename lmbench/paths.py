"""Where the files that ship inside the package live.

Every path to a packaged file starts here, inside the installed ``lmbench`` package, so it
resolves the same in a checkout (where ``conf/`` at the repository root links to
``lmbench/conf``) and in an installed wheel, from any working directory.
"""

from __future__ import annotations

from pathlib import Path

#: The ``lmbench`` package folder (a checkout's ``lmbench/`` or ``site-packages/lmbench``).
PACKAGE_DIR: Path = Path(__file__).resolve().parent
#: The Hydra config tree (``config.yaml`` and one folder per config group) in the package.
CONF_DIR: Path = PACKAGE_DIR / "conf"
