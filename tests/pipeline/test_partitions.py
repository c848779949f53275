"""A predict's outputs as one partition of its as_of day: another day adds one, a rerun replaces
it whole, the stable path holds the latest day, the previous queue is the previous partition
(at full precision)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from closeprob.pipeline import partitions
from closeprob.pipeline.io import OutputError, write_table
from closeprob.pipeline.partitions import (
    check_partitions_folder,
    partition_days,
    previous_queue,
    read_partition,
    replace_folder,
    staged_partition,
)
from tests.conftest import utc


def make_queue(as_of: str, p_close: list[float]) -> pd.DataFrame:
    n = len(p_close)
    return pd.DataFrame(
        {
            "rank": range(1, n + 1),
            "deal_id": [f"D{i}" for i in range(1, n + 1)],
            "p_close": p_close,
            "expected_value": [p * 1000 for p in p_close],
            "tier": ["A"] + ["B"] * (n - 1),
            "as_of": utc(as_of),
        }
    )


def publish(out: Path, queue: pd.DataFrame, report: str | None = "<html/>") -> None:
    """What predict does: stage the day's partition, then publish it."""

    def write_report(path: Path) -> None:
        assert report is not None
        path.write_text(report)

    as_of = pd.Timestamp(queue["as_of"].iloc[0])
    shown = queue.assign(p_close=queue["p_close"].round(3))
    with staged_partition(out, as_of, queue, shown, write_report if report else None) as staged:
        staged.write_summary({"as_of": as_of.isoformat()})
        staged.publish()


def test_days_add_partitions_a_rerun_replaces_its_day_and_the_stable_path_holds_the_latest(
    tmp_path: Path,
) -> None:
    out = tmp_path / "outputs" / "queue.csv"
    publish(out, make_queue("2024-06-01T08:00", [0.5]))
    publish(out, make_queue("2024-06-08T08:00", [0.6, 0.2]), report="<html>8 June</html>")
    day = tmp_path / "outputs" / "queue" / "as_of_date=2024-06-08"
    (day / "left-by-hand.txt").write_text("x")
    publish(out, make_queue("2024-06-08T09:30", [0.7, 0.1, 0.05]), report=None)  # rerun

    assert partition_days(out) == ["2024-06-01", "2024-06-08"]
    assert sorted(p.name for p in day.iterdir()) == ["queue.csv", "scores.parquet", "summary.json"]
    assert len(pd.read_csv(out)) == 3  # the stable path: the latest day's queue
    assert (tmp_path / "outputs" / "queue.html").read_text() == "<html>8 June</html>"
    assert sorted(p.name for p in (tmp_path / "outputs").iterdir()) == [
        "queue",
        "queue.csv",
        "queue.html",
    ]  # no temporary file or folder is left


def test_a_backfilled_earlier_day_adds_its_partition_and_leaves_the_stable_path_alone(
    tmp_path: Path,
) -> None:
    out = tmp_path / "queue.csv"
    publish(out, make_queue("2024-06-08", [0.6, 0.2]))
    before = out.read_bytes()
    publish(out, make_queue("2024-06-01", [0.5]))
    assert partition_days(out) == ["2024-06-01", "2024-06-08"]
    assert out.read_bytes() == before


def test_the_previous_queue_is_the_latest_earlier_partition_at_full_precision(
    tmp_path: Path,
) -> None:
    out = tmp_path / "queue.csv"
    publish(out, make_queue("2024-06-01", [0.123456789]))
    publish(out, make_queue("2024-06-08", [0.987654321]))

    assert previous_queue(out, utc("2024-06-01")) is None
    rerun = previous_queue(out, utc("2024-06-08T12:00"))  # a rerun compares with the day before
    assert rerun is not None and rerun["p_close"].tolist() == [0.123456789]
    later = previous_queue(out, utc("2024-06-20"))
    assert later is not None and later["p_close"].tolist() == [0.987654321]
    assert pd.read_csv(out)["p_close"].tolist() == [0.988]  # people read it rounded


def test_a_partition_without_its_full_precision_copy_is_read_from_its_queue_file(
    tmp_path: Path,
) -> None:
    out = tmp_path / "queue.csv"
    publish(out, make_queue("2024-06-01", [0.123456789]))
    (tmp_path / "queue" / "as_of_date=2024-06-01" / "scores.parquet").unlink()
    found = read_partition(out, "2024-06-01")
    assert found is not None and found["p_close"].tolist() == [0.123]


def test_a_queue_written_before_partitions_is_the_previous_queue_of_a_later_day(
    tmp_path: Path,
) -> None:
    out = tmp_path / "queue.csv"
    write_table(make_queue("2024-06-01", [0.4]), out)
    found = previous_queue(out, utc("2024-06-08"))
    assert found is not None and found["p_close"].tolist() == [0.4]
    assert previous_queue(out, utc("2024-06-01T10:00")) is None  # the same day: a rerun


def test_an_unpublished_partition_leaves_nothing_and_the_earlier_outputs_as_they_were(
    tmp_path: Path,
) -> None:
    out = tmp_path / "outputs" / "queue.csv"
    queue = make_queue("2024-06-01", [0.5])
    with pytest.raises(RuntimeError), staged_partition(out, utc("2024-06-01"), queue, queue, None):
        raise RuntimeError("the score table failed")
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]
    assert not (tmp_path / "outputs" / "queue").exists()

    publish(out, queue)
    before = {p: p.read_bytes() for p in (tmp_path / "outputs").rglob("*") if p.is_file()}
    with pytest.raises(RuntimeError), staged_partition(out, utc("2024-06-01"), queue, queue, None):
        raise RuntimeError("killed")
    after = {p: p.read_bytes() for p in (tmp_path / "outputs").rglob("*") if p.is_file()}
    assert after == before


@pytest.mark.parametrize("swap", ["exchange", "rename aside"])
def test_replacing_a_folder_leaves_only_the_new_one(
    swap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    swapped: list[bool] = []
    real = partitions._exchange

    def exchange(first: Path, second: Path) -> bool:
        swapped.append(swap == "exchange" and real(first, second))
        return swapped[-1]  # False: a system without renameat2(RENAME_EXCHANGE)

    monkeypatch.setattr(partitions, "_exchange", exchange)
    (tmp_path / "day").mkdir()
    (tmp_path / "day" / "old.csv").write_text("old")
    (tmp_path / ".new").mkdir()
    (tmp_path / ".new" / "new.csv").write_text("new")
    replace_folder(tmp_path / ".new", tmp_path / "day")
    assert [p.name for p in tmp_path.iterdir()] == ["day"]
    assert [p.name for p in (tmp_path / "day").iterdir()] == ["new.csv"]
    assert swapped == [swap == "exchange"]


def test_a_file_where_the_partitions_go_is_refused_naming_it(tmp_path: Path) -> None:
    (tmp_path / "queue").write_text("notes")
    with pytest.raises(OutputError, match=r"queue: is a file; the day partitions of queue\.csv"):
        check_partitions_folder(tmp_path / "queue.csv")


def test_a_staging_folder_left_by_a_killed_run_is_removed_by_the_next_run(tmp_path: Path) -> None:
    out = tmp_path / "outputs" / "queue.csv"
    folder = tmp_path / "outputs" / "queue"
    folder.mkdir(parents=True)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    host = partitions._host()
    killed = folder / f".as_of_date=2024-06-01.{host}.{gone.pid}.k1ll3d"
    killed_aside = folder / f".as_of_date=2024-06-01.old.{host}.{gone.pid}.k1ll3d"
    running = folder / f".as_of_date=2024-06-01.{host}.{os.getpid()}.w0rk1n"
    elsewhere = folder / f".as_of_date=2024-06-01.other-host.{gone.pid}.w0rk1n"
    for staging in (killed, killed_aside, running, elsewhere):
        staging.mkdir()
        (staging / "queue.csv").write_text("rank,deal_id\n")

    publish(out, make_queue("2024-06-02", [0.5]))

    left = sorted(p.name for p in folder.iterdir())
    assert left == sorted(["as_of_date=2024-06-02", running.name, elsewhere.name])
    assert partition_days(out) == ["2024-06-02"]


def test_staging_folders_are_named_for_their_host_and_process(tmp_path: Path) -> None:
    out = tmp_path / "queue.csv"
    queue = make_queue("2024-06-01", [0.5])
    with staged_partition(out, utc("2024-06-01"), queue, queue, None) as staged:
        match = partitions.STAGING_FOLDER.match(staged.temporary.name)
        assert match is not None
        assert (match["host"], int(match["pid"])) == (partitions._host(), os.getpid())
