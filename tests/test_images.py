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


def test_prepare_builds_what_is_missing_and_a_failed_build_is_not_tried_again(tmp_path):
    """Against the real engine: images made before the first case; one whose build fails is left to the cells
    that use it, which get the build's error at once (no second build in the same run), and the others are made."""
    import docker
    import pytest
    from harness.images import ImageBuildError, Images

    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir()
    bad.mkdir()
    (good / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo made > /made\n")
    (bad / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo about to fail && false\n")
    client = docker.from_env()
    images = Images(client)
    took = images.prepare({"prepgood": good, "prepbad": bad})
    assert set(took) == {"prepgood", "prepbad"}
    tag = images.tag_for("prepgood", good)
    try:
        assert client.images.get(tag)
        builds = []
        images._build = lambda *args: builds.append(args)  # a second build attempt would show here
        with pytest.raises(ImageBuildError, match="prepbad: image build failed"):
            images.ensure("prepbad", bad)
        assert builds == []
        assert images.prepare({"prepgood": good})["prepgood"] < 1  # there already: nothing built
    finally:
        client.images.remove(tag, force=True)


def test_a_vendor_runs_its_own_image_and_one_per_companion_folder(tmp_path):
    from harness.vendor import load_registry

    folder = tmp_path / "acme"
    (folder / "radius").mkdir(parents=True)
    (folder / "radius" / "Dockerfile").write_text("FROM x\n")
    (folder / "templates").mkdir()  # a folder without a Dockerfile is no image
    (folder / "Dockerfile").write_text("FROM x\n")
    (folder / "adapter.py").write_text("class A: pass\n")
    (folder / "vendor.toml").write_text('name = "acme"\ndescription = "d"\nadapter = "adapter:A"\n'
                                        '[protocols.vxlan]\nroles = ["vtep1", "vtep2"]\nfeatures = []\n')
    vendor = load_registry(tmp_path)["acme"]
    assert vendor.images() == {"acme": folder, "acme-radius": folder / "radius"}
