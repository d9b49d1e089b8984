# The antsibull-nox sessions this collection uses (configured in antsibull-nox.toml).
# scripts/lint.sh runs them offline with the tools of its lint venv.

import sys

import nox

try:
    import antsibull_nox
except ImportError:
    print("You need to install antsibull-nox in the same Python environment as nox.")
    sys.exit(1)


antsibull_nox.load_antsibull_nox_toml()


if __name__ == "__main__":
    nox.main()
