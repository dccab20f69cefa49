"""The study's central finding at toy scale, checked on real training runs (~1.5 min on 2 cores).

Three tiny DCGANs (width 8, 600 steps, 32 px) on the built-in real patches, identical but for
the last upsampling layer. Detectors trained on real vs baseline must catch the baseline
while keeping real images real, and must miss most nearest- and bilinear-upsampling fakes.
"""
import pytest

from forensics.study.config import StudyConfig
from forensics.study.stages import run_study


@pytest.mark.slow
def test_last_layer_swap_walks_past_spectral_detectors(tmp_path):
    cfg = StudyConfig.demo(setups=("baseline", "N.1.5", "B.1.5"), steps=600, n_fake=500, seed=0,
                           detectors=("dzanic+-svm", "durall+-lr"), reps=5, gan_overrides={"ngf": 8, "ndf": 8},
                           extra=())  # the DCGAN setups only: the demo's SSGAN-MS family is not under test
    res = run_study(cfg, tmp_path, progress=False)["results"]["detectors"]
    for det, r in res.items():
        base = r["baseline"]["detection_rate"]["mean"]
        assert base >= 0.90, (det, r)
        assert r["baseline"]["real_accuracy"]["mean"] >= 0.85, (det, r)
        for s in ("N.1.5", "B.1.5"):
            assert r[s]["detection_rate"]["mean"] <= 0.5 * base, (det, s, r)
