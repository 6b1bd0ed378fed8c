"""Configuration (contract section 11): every `CONNREG_` variable of the README's configuration
table is also a flag of `connreg serve` (or of `connreg` itself, for the store and the master key,
which every subcommand needs), as the binary's own help says."""
from __future__ import annotations

import re
import subprocess

from conftest import BIN, REPO


def readme_variables() -> set[str]:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"`(CONNREG_[A-Z_]+)`", section))


def flags_by_variable() -> dict[str, str]:
    """Variable -> flag, from the help of `connreg` and `connreg serve` (CLI11: `--flag ... (Env:X)`)."""
    out: dict[str, str] = {}
    for args in ([BIN, "--help"], [BIN, "serve", "--help"]):
        text = subprocess.run(args, capture_output=True, text=True, timeout=10, check=True).stdout
        for flag, variable in re.findall(r"^\s+(--[a-z-]+)\b.*\(Env:(CONNREG_[A-Z_]+)\)", text, re.M):
            out[variable] = flag
    return out


def test_every_readme_variable_has_a_serve_flag():
    variables = readme_variables()
    assert {"CONNREG_DATABASE", "CONNREG_TLS_CA_FILE", "CONNREG_BIGQUERY_API_URL"} <= variables
    flags = flags_by_variable()
    missing = sorted(variables - set(flags))
    assert not missing, f"README variables without a flag: {missing}"
    # And no flag reads a variable that the README does not document.
    undocumented = sorted(set(flags) - variables)
    assert not undocumented, f"variables read by a flag but missing from the README: {undocumented}"
