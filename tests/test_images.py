"""Image tags follow the vendor folder's content (and the base), so unchanged vendors never rebuild."""
from harness.images import folder_digest


def test_digest_changes_with_content_names_and_base(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM x\n")
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "a.conf").write_text("a=1\n")
    before = folder_digest(tmp_path, "base1")
    assert folder_digest(tmp_path, "base1") == before
    assert folder_digest(tmp_path, "base2") != before
    (tmp_path / "templates" / "a.conf").write_text("a=2\n")
    changed = folder_digest(tmp_path, "base1")
    assert changed != before
    (tmp_path / "templates" / "a.conf").rename(tmp_path / "templates" / "b.conf")
    assert folder_digest(tmp_path, "base1") not in (before, changed)


def test_bytecode_caches_do_not_count(tmp_path):
    (tmp_path / "adapter.py").write_text("x = 1\n")
    before = folder_digest(tmp_path)
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "adapter.cpython-311.pyc").write_bytes(b"\0junk")
    assert folder_digest(tmp_path) == before


def test_files_left_out_by_dockerignore_do_not_count(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM x\n")
    (tmp_path / ".dockerignore").write_text("# run-time files\nadapter.py\ntemplates\n")
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "a.conf.j2").write_text("a\n")
    (tmp_path / "adapter.py").write_text("x = 1\n")
    before = folder_digest(tmp_path)
    (tmp_path / "adapter.py").write_text("x = 2\n")
    (tmp_path / "templates" / "a.conf.j2").write_text("b\n")
    assert folder_digest(tmp_path) == before
    (tmp_path / "Dockerfile").write_text("FROM y\n")
    assert folder_digest(tmp_path) != before


def test_a_failed_build_names_the_vendor_and_the_step(tmp_path):
    """Against the real engine: no Docker traceback, the vendor, the failing step and its last output."""
    import docker
    import pytest
    from harness.images import ImageBuildError, Images

    (tmp_path / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo about to fail && false\n")
    with pytest.raises(ImageBuildError) as caught:
        Images(docker.from_env()).ensure("brokenvendor", tmp_path)
    first, *rest = str(caught.value).splitlines()
    assert first.startswith("brokenvendor: image build failed at Step 3/") and ": RUN echo about to fail && false: " in first
    assert "returned a non-zero code: 1" in first and any("about to fail" in line for line in rest)
