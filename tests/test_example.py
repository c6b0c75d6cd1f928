"""Smoke runs of the QAT example (python -m fakequant.examples.qat) on a subset, and its --data loader."""
import numpy as np
import pytest

from fakequant.examples import qat

FAST = ["--float-epochs", "1", "--qat-epochs", "3", "--freeze-bn-after", "1", "--freeze-observer-after", "2",
        "--subset", "160", "--no-progress", "--threads", "1"]


@pytest.mark.parametrize("bits,extra", [("8", []), ("4", []), ("4", ["--no-lsq"]), ("8", ["--lsq"])])
def test_digits_workflow_runs_and_reports(bits, extra, capsys):
    result = qat.main(FAST + ["--bits", bits] + extra)
    for key in ("float", "ptq", "qat"):
        assert 0.0 <= result[key] <= 100.0
    assert len(result["qat_history"]) == 3
    out = capsys.readouterr().out
    assert f"QAT {bits}-bit (fake quant)" in out and "| int8 (converted QAT) |" in out
    assert "observers frozen" in out and "BN frozen" in out


def write_pgm(path, img):
    h, w = img.shape
    path.write_bytes(f"P5\n# test\n{w} {h}\n255\n".encode() + img.astype(np.uint8).tobytes())


def test_image_folder_data(tmp_path):
    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        folder = tmp_path / label
        folder.mkdir()
        for i in range(6):
            base = np.full((12, 12), 40 if label == "a" else 200)
            write_pgm(folder / f"{i}.pgm", base + rng.integers(0, 40, (12, 12)))
        np.save(folder / "extra.npy", rng.random((12, 12)).astype(np.float32))
    result = qat.main(FAST + ["--data", str(tmp_path), "--image-size", "8"])
    assert 0.0 <= result["qat"] <= 100.0


def test_image_folder_needs_class_subfolders(tmp_path):
    with pytest.raises(ValueError, match="subfolder per class"):
        qat.main(FAST + ["--data", str(tmp_path)])
