"""Bounded input: a bundle past a size, ratio, entry, line or field limit is refused early, with a
message that names the setting, and before it costs the memory it would have taken."""
from __future__ import annotations

import csv
import tracemalloc
import zipfile

from bundles import small_district, write_bundle
from gateway.cli import cli
from gateway.config import build_settings
from gateway.oneroster.csv import binding
from gateway.oneroster.csv.importer import ImportOptions, import_bundle
from gateway.oneroster.csv.limits import ImportLimits

MIB = 1024 * 1024


def zip_of(folder, target, extra=None):
    """Zip a bundle folder, adding ``extra`` entries: name -> an iterable of byte chunks."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.iterdir()):
            archive.write(path, path.name)
        for name, chunks in (extra or {}).items():
            with archive.open(name, "w", force_zip64=True) as entry:
                for chunk in chunks:
                    entry.write(chunk)
    return target


def users_with_a_long_line(total_bytes, line_bytes):
    """users.csv: the header, one good row, then one line of ``line_bytes`` bytes."""
    yield (",".join(binding.USERS.header) + "\r\n").encode()
    yield b"u1,,,true,lisa,,Lisa,Simpson" + b"," * (len(binding.USERS.header) - 8) + b"\r\n"
    block = b"x" * MIB
    for _ in range(line_bytes // MIB):
        yield block
    yield b"\r\n"


def a_bundle_with_users(tmp_path, users_chunks, name="bundle.zip"):
    files = {k: v for k, v in small_district().items() if k in ("orgs",)}
    folder = write_bundle(tmp_path / "folder", files, modes={"users": "bulk"})
    return zip_of(folder, tmp_path / name, {"users.csv": users_chunks})


def test_the_limits_are_settings_with_defaults_that_admit_a_large_district():
    settings = build_settings(environ={"GATEWAY_IMPORT_MAX_LINE_LENGTH": "2048",
                                       "GATEWAY_IMPORT_MAX_COMPRESSION_RATIO": "12.5"})
    limits = ImportLimits.from_config(settings)
    assert limits == ImportLimits(max_bundle_bytes=4 * 1024 ** 3, max_compression_ratio=12.5,
                                  max_entries=1000, max_line_length=2048, max_field_length=128 * 1024)
    assert ImportLimits.from_config(build_settings(environ={})) == ImportLimits()


def test_a_zip_bomb_is_refused_from_its_directory_before_anything_is_extracted(runner, app, tmp_path):
    # 64 MB of one repeated byte: a few dozen kilobytes compressed.
    bomb = a_bundle_with_users(tmp_path, users_with_a_long_line(0, 64 * MIB))
    info = zipfile.ZipFile(bomb).getinfo("users.csv")
    result = runner.invoke(cli, ["import", str(bomb)])
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {bomb}: refused before reading: users.csv expands {info.file_size / info.compress_size:.0f} "
        f"times ({info.compress_size} bytes to {info.file_size}), over the limit of 100.0 "
        "(GATEWAY_IMPORT_MAX_COMPRESSION_RATIO)\n")
    runs = runner.invoke(cli, ["imports"]).output
    assert "rejected -" in runs and "GATEWAY_IMPORT_MAX_COMPRESSION_RATIO" in runs


def test_the_uncompressed_size_and_the_entry_count_are_limited(runner, app, tmp_path):
    folder = write_bundle(tmp_path / "folder", small_district())
    archive = zip_of(folder, tmp_path / "b.zip")
    total = sum(i.file_size for i in zipfile.ZipFile(archive).infolist())
    app.config["IMPORT_MAX_BUNDLE_BYTES"] = total - 1
    for path in (folder, archive):
        result = runner.invoke(cli, ["import", str(path)])
        assert result.exit_code == 1
        assert result.output == (f"Error: {path}: refused before reading: its files hold {total} bytes, "
                                 f"over the limit of {total - 1} (GATEWAY_IMPORT_MAX_BUNDLE_BYTES)\n")
    app.config["IMPORT_MAX_BUNDLE_BYTES"] = total
    app.config["IMPORT_MAX_ENTRIES"] = 9
    result = runner.invoke(cli, ["import", str(archive)])
    assert result.output == (f"Error: {archive}: refused before reading: 10 entries, over the limit of 9 "
                             "(GATEWAY_IMPORT_MAX_ENTRIES)\n")
    result = runner.invoke(cli, ["import", str(folder)])
    assert result.output == (f"Error: {folder}: refused before reading: 10 files, over the limit of 9 "
                             "(GATEWAY_IMPORT_MAX_ENTRIES)\n")
    app.config["IMPORT_MAX_ENTRIES"] = 10
    assert runner.invoke(cli, ["import", str(archive)]).exit_code == 0


def test_a_long_line_is_refused_after_reading_no_more_than_the_limit(database, tmp_path):
    # 256 MB in one line; the ratio limit is lifted so that the line limit is what refuses it.
    bundle = a_bundle_with_users(tmp_path, users_with_a_long_line(0, 256 * MIB))
    options = ImportOptions(limits=ImportLimits(max_compression_ratio=10 ** 6))
    tracemalloc.start()
    try:
        with database.session_scope() as session:
            report = import_bundle(session, bundle, options)
            session.rollback()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.outcome == "rejected"
    assert [str(p) for p in report.problems] == [
        "users.csv:3: expected lines of at most 1048576 (GATEWAY_IMPORT_MAX_LINE_LENGTH) characters; "
        "this one is longer, and the file was not read further"]
    # The line is never held whole: a few times the 1 MiB limit, not 256 MB.
    assert peak < 32 * MIB


def test_a_long_field_is_refused_and_the_csv_limit_restored(database, tmp_path):
    # A quoted field of many short lines: no line is long, the field is.
    def users():
        yield (",".join(binding.USERS.header) + "\r\n").encode()
        yield b'u1,,,true,lisa,,"' + b"x" * 100 + b"\r\n"
        for _ in range(20000):
            yield b"y" * 100 + b"\r\n"
        yield b'",Simpson' + b"," * (len(binding.USERS.header) - 8) + b"\r\n"

    bundle = a_bundle_with_users(tmp_path, users())
    before = csv.field_size_limit()
    with database.session_scope() as session:
        report = import_bundle(session, bundle, ImportOptions(limits=ImportLimits(
            max_field_length=500_000, max_compression_ratio=10 ** 6)))
        session.rollback()
    assert [str(p) for p in report.problems] == [
        "users.csv:2: expected fields of at most 500000 (GATEWAY_IMPORT_MAX_FIELD_LENGTH) characters; "
        "this record holds a longer one, and the file was not read further"]
    assert csv.field_size_limit() == before


def test_a_manifest_line_past_the_limit_is_refused(database, tmp_path):
    folder = write_bundle(tmp_path / "b", small_district())
    with open(folder / "manifest.csv", "a") as handle:
        handle.write("source.note," + "n" * 2000 + "\r\n")
    with database.session_scope() as session:
        report = import_bundle(session, folder, ImportOptions(limits=ImportLimits(max_line_length=1000)))
        session.rollback()
    assert [str(p) for p in report.problems] == [
        "manifest.csv:26: expected lines of at most 1000 (GATEWAY_IMPORT_MAX_LINE_LENGTH) characters; "
        "this one is longer, and the file was not read further"]


def test_a_manifest_of_endless_rows_is_not_read_to_its_end(database, tmp_path):
    folder = write_bundle(tmp_path / "b", small_district())
    with open(folder / "manifest.csv", "a") as handle:
        handle.writelines(f"source.note{n},x\r\n" for n in range(5000))
    with database.session_scope() as session:
        report = import_bundle(session, folder)
        session.rollback()
    assert [str(p) for p in report.problems] == ["manifest.csv:1001: expected at most 1000 rows in a manifest"]
