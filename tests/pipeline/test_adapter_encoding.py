"""Every adapter reads through pipeline/io.py: a raw file that is not UTF-8 is exit 2 with advice
(through the real CLI), not a UnicodeDecodeError, and nothing is written."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest

from closeprob.pipeline.adapters.bank_marketing import CONTACTS_FILE
from closeprob.pipeline.adapters.bpi2012 import EVENTS_FILE
from closeprob.pipeline.adapters.crm_sales import (
    ACCOUNTS_FILE,
    PIPELINE_FILE,
    PRODUCTS_FILE,
    TEAMS_FILE,
)
from closeprob.pipeline.adapters.olist import LEADS_FILE, WON_FILE
from closeprob.pipeline.cli import main

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "default.yaml"

FILES = {
    "bpi2012": [EVENTS_FILE],
    "olist": [LEADS_FILE, WON_FILE],
    "crm_sales": [ACCOUNTS_FILE, PIPELINE_FILE, PRODUCTS_FILE, TEAMS_FILE],
    "bank_marketing": [CONTACTS_FILE],
}
# A header, then a Latin-1 'ü' (byte 0xfc) in the first data row.
LATIN1 = "name,city\nA1,Zürich\n".encode("latin-1")


@pytest.mark.parametrize("name", sorted(FILES))
def test_a_latin1_source_file_is_exit_2_with_the_byte_and_an_iconv_command(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for file in FILES[name]:
        raw = gzip.compress(LATIN1) if file.endswith(".gz") else LATIN1
        (source / file).write_bytes(raw)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main(["import", name, "--source", str(source), "--config", str(CONFIG)]) == 2
    err = capsys.readouterr().err
    assert re.search(
        r"error: .*source/[^:]+: not UTF-8 text \(byte b'\\xfc' at offset 14\); it looks like "
        r"Latin-1 or Windows-1252\. Re-save it as UTF-8, e\.g\. `(gunzip -c \S+ \| )?iconv -f "
        r"WINDOWS-1252 -t UTF-8",
        err,
    ), err
    assert list(work.iterdir()) == []
