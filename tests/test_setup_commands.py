"""The README's two set-up commands: CI runs exactly the test one, and both stop at once, in one line
that says what to do, on any Python but 3.11 (TensorFlow 2.15 and TF Addons have no wheels past it, and
the pinned pandas, scikit-learn, matplotlib and av need it); setup.py accepts the same."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def readme_commands() -> list:
    blocks = re.findall(r"```bash\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)
    return [line for block in blocks[:2] for line in block.splitlines() if line.strip()]


def test_ci_runs_exactly_the_readme_test_command():
    install, tests = readme_commands()
    assert "requirements.txt" in install and "pytest" in tests
    ci = [line for line in (REPO / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert ci[-1] == tests


def test_every_python_guard_is_the_same_and_agrees_with_setup_py():
    install, tests = readme_commands()
    assert guard_code(install) == guard_code(tests)
    assert 'python_requires="==3.11.*"' in (REPO / "setup.py").read_text()


def guard_code(command: str) -> str:
    match = re.match(r"python3 -c '(.*?)' && ", command)
    assert match, "the command does not start with the Python version check"
    return match.group(1)


@pytest.mark.parametrize("which", [0, 1])
@pytest.mark.parametrize("version, ok", [((3, 12, 4), False), ((3, 13, 0), False), ((3, 8, 10), False),
                                         ((3, 9, 0), False), ((3, 10, 14), False), ((3, 11, 0), True),
                                         ((3, 11, 7), True)])
def test_the_version_check_fails_early_in_one_line(which, version, ok):
    code = guard_code(readme_commands()[which])
    fake = (f"import sys; sys.version_info = {version + ('final', 0)!r}; "
            f"sys.version = '{'.'.join(map(str, version))} (main)'; ")
    done = subprocess.run([sys.executable, "-c", fake + code], capture_output=True, text=True)
    if ok:
        assert done.returncode == 0 and done.stderr == ""
    else:
        assert done.returncode == 1
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "needs Python 3.11, not " + ".".join(map(str, version)) in lines[0]
        assert "TensorFlow Addons have no wheels past 3.11" in lines[0] and "pandas" in lines[0]
        assert "python3.11 in place of python3" in lines[0] and "uv python install 3.11" in lines[0]
