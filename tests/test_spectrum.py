import os

import numpy as np
import pytest
from scipy.optimize import fmin

from forensics.spectral import reference
from forensics.spectral import spectrum as S


def power_law_images(n: int, alpha: float, count: int = 2, seed: int = 0) -> np.ndarray:
    """Real images whose magnitude spectrum is exactly f^(-alpha/2) (power ∝ f^-alpha)."""
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(n)[:, None]
    fx = np.fft.fftfreq(n)[None, :]
    f = np.sqrt(fx ** 2 + fy ** 2)
    f[0, 0] = 1.0
    amp = f ** (-alpha / 2)
    amp[0, 0] = 0.0
    out = []
    for _ in range(count):
        phase = np.angle(np.fft.fft2(rng.standard_normal((n, n))))  # Hermitian phase of real noise
        out.append(np.real(np.fft.ifft2(amp * np.exp(1j * phase))))
    return np.stack(out)


@pytest.mark.parametrize("alpha", [1.0, 2.0, 3.0])
def test_power_law_exponent_is_recovered_fixed(alpha):
    b = S.dzanic_fixed(power_law_images(128, alpha))[:, 0]
    assert np.allclose(-2 * b, alpha, rtol=0.05), -2 * b


@pytest.mark.parametrize("alpha", [1.0, 1.5, 2.0])
def test_power_law_exponent_is_recovered_faithful(alpha):
    # (steeper spectra sink below the uint8 rounding floor the faithful port inherits)
    b = S.dzanic_faithful(_to_rgb_uint8_free(power_law_images(256, alpha, count=1)))[:, 0]
    assert np.allclose(-2 * b, alpha, rtol=0.05), -2 * b


def _to_rgb_uint8_free(gray):
    """Faithful features round grey to uint8: scale so the high frequencies survive it."""
    g = gray - gray.min(axis=(1, 2), keepdims=True)
    return np.repeat((g / g.max(axis=(1, 2), keepdims=True) * 255.0)[..., None], 3, axis=-1)


@pytest.mark.parametrize("alpha", [1.0, 2.0])
def test_power_law_on_uint8_images(alpha):
    g = power_law_images(128, alpha, count=3, seed=1)
    g = (g - g.min()) / (g.max() - g.min()) * 255
    rgb = np.clip(np.rint(np.repeat(g[..., None], 3, -1)), 0, 255).astype(np.uint8)
    b = S.dzanic_fixed(rgb)[:, 0]
    assert np.allclose(-2 * b, alpha, rtol=0.05), -2 * b


def test_gaussian_blob_profile_matches_analytic():
    n, sigma = 128, 3.0
    yy, xx = np.mgrid[0:n, 0:n]
    g = np.exp(-((yy - n // 2) ** 2 + (xx - n // 2) ** 2) / (2 * sigma ** 2))
    prof = S.azimuthal_profile(g[None], kind="magnitude")[0]
    # continuous Fourier transform of the blob (ortho-scaled), averaged over each ring
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(n), np.fft.fftfreq(n)))
    analytic = 2 * np.pi * sigma ** 2 * np.exp(-2 * np.pi ** 2 * sigma ** 2 * f ** 2) / n
    ring = np.rint(f * n).astype(int)
    expect = np.array([analytic[ring == k].mean() for k in range(len(prof))])
    sel = expect > 1e-3 * expect[0]
    assert sel.sum() > 10
    assert np.allclose(prof[sel], expect[sel], rtol=0.01)
    assert np.all(np.diff(prof[sel]) < 0)  # monotone decay, as a Gaussian's spectrum


def test_ring_pattern_peaks_at_its_frequency():
    n, f0 = 128, 0.2
    yy, xx = np.mgrid[0:n, 0:n] - n // 2
    r = np.hypot(yy, xx)
    img = np.cos(2 * np.pi * f0 * r) * np.exp(-(r / 40) ** 2)
    prof = S.azimuthal_profile(img[None], kind="magnitude")[0]
    assert np.argmax(prof[2:]) + 2 == round(f0 * n)


def test_non_square_rings_are_circles_in_frequency():
    h, w = 48, 80
    yy, xx = np.mgrid[0:h, 0:w]
    horiz = np.cos(2 * np.pi * 8 / w * xx)  # f = 0.100
    vert = np.cos(2 * np.pi * 5 / h * yy)  # f = 0.104
    p = S.azimuthal_profile(np.stack([horiz, vert]), kind="magnitude")
    assert np.argmax(p[0][1:]) + 1 == np.argmax(p[1][1:]) + 1 == 5
    rgb = np.random.default_rng(0).integers(0, 256, (3, h, w, 3), dtype=np.uint8)
    ref = np.stack([reference.azimuthal_profile_one(im) for im in rgb])
    assert np.allclose(S.azimuthal_profile(rgb), ref, atol=1e-3)
    assert np.isfinite(S.dzanic_fixed(rgb)).all() and np.isfinite(S.durall_fixed(rgb)).all()


def test_half_plane_rings_equal_full_plane():
    for h, w in [(64, 64), (33, 50), (50, 33)]:
        x = np.random.default_rng(h).standard_normal((2, h, w))
        full = S.azimuthal_average(S.spectrum(x, "magnitude"))
        assert np.allclose(S.azimuthal_profile(x, "magnitude"), full, rtol=1e-5)


def test_mixed_sizes_keep_input_order():
    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 256, (s, s, 3), dtype=np.uint8) for s in (32, 64, 32, 48)]
    batch = S.dzanic_fixed(imgs)
    for i, im in enumerate(imgs):
        assert np.allclose(batch[i], S.dzanic_fixed(im[None])[0])


@pytest.mark.parametrize("n,empty", [(128, 17), (256, 4)])
def test_faithful_empty_bins_as_documented(n, empty):
    rgb = np.random.default_rng(1).integers(0, 256, (2, n, n, 3), dtype=np.uint8)
    smoothed, raw = S.dzanic_faithful_profile(rgb)
    assert raw.shape == (2, 200)
    assert np.isnan(raw[0]).sum() == empty  # empty bins are NaN ...
    assert np.isnan(raw[0, :140]).sum() == 0  # ... and all of them lie in the 0.85 band
    assert not np.isnan(smoothed).any()  # the NaN-aware smoothing fills them from neighbours
    assert np.isfinite(S.dzanic_faithful(rgb)).all()


def test_matlab_smooth_end_windows_and_nans():
    y = np.array([1.0, np.nan, 3.0, 4.0, 10.0, np.nan, np.nan])
    got = S.matlab_smooth(y, 5)
    expect = [1.0, (1 + 3) / 2, (1 + 3 + 4 + 10) / 4, (3 + 4 + 10) / 3, (3 + 4 + 10) / 3, 10.0, np.nan]
    assert np.allclose(got, expect, equal_nan=True)


def test_batched_nelder_mead_equals_scipy():
    rng = np.random.default_rng(2)
    x = np.linspace(0.8, 1.0, 30)
    ys = np.stack([(2 + rng.random()) * (x / x[0]) ** rng.uniform(-6, 3) + rng.normal(0, 0.05, 30) for _ in range(20)])
    b = S.fit_decay(x, ys)
    for y, bb in zip(ys, b):
        ref = fmin(lambda p: np.sqrt(np.sum((y[0] * (x / x[0]) ** p[0] - y) ** 2)), [-2.0],
                   xtol=1e-4, ftol=1e-4, disp=False)[0]
        assert bb == pytest.approx(ref, abs=1e-9)


def test_durall_is_contrast_invariant_and_fixed_length():
    rgb = np.random.default_rng(3).integers(0, 128, (2, 64, 64, 3)).astype(np.float64)
    a, b = S.durall_fixed(rgb), S.durall_fixed(rgb * 2)
    assert a.shape == (2, 80) and np.allclose(a, b, atol=1e-4) and np.allclose(a[:, 0], 0)
    assert S.durall_fixed(np.random.default_rng(4).integers(0, 256, (1, 100, 100, 3), dtype=np.uint8)).shape == (1, 80)


def test_unknown_feature_name():
    with pytest.raises(ValueError, match="unknown feature set"):
        S.features(np.zeros((1, 32, 32)), "nope")


def test_cubic_resampling_is_exact_on_quadratics_and_keeps_ends():
    x = np.linspace(0, 1, 86)
    y = 3 * x ** 2 - x + 2
    m = S.cubic_resample_matrix(86, 80)
    t = np.linspace(0, 1, 80)
    got = y @ m
    assert got[0] == pytest.approx(y[0]) and got[-1] == pytest.approx(y[-1])
    inner = slice(2, -2)  # Keys' kernel reproduces quadratics away from the replicated ends
    assert np.allclose(got[inner], (3 * t ** 2 - t + 2)[inner], atol=1e-9)
    assert np.allclose(m.sum(0), 1.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rings_equal_per_row_bincount(dtype):
    rng = np.random.default_rng(0)
    n_pos, n_bins = 50, 7
    positions = np.r_[np.arange(n_pos), rng.integers(0, n_pos, 20)]  # some positions twice
    bins = rng.choice([0, 1, 2, 4, 5, 6], len(positions))  # bin 3 stays empty
    weights = rng.uniform(0.5, 2.0, len(positions))
    values = rng.standard_normal((4, 5, 10)).astype(dtype)  # (N, ...) flattened per row
    got = S.Rings(positions, bins, weights, n_bins)(values)
    flat = values.reshape(4, -1).astype(np.float64)
    total = np.bincount(bins, weights, minlength=n_bins)
    for row, want in zip(got, flat):
        sums = np.bincount(bins, weights * want[positions], minlength=n_bins)
        assert np.isnan(row[3]) and total[3] == 0
        keep = total > 0
        assert np.allclose(row[keep], sums[keep] / total[keep], rtol=1e-6 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("norm", [None, "ortho", "forward"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rfft2_matches_numpy_and_inverts(norm, dtype):
    x = np.random.default_rng(1).standard_normal((3, 33, 50)).astype(dtype)
    F = S.rfft2(x, norm)
    assert F.dtype == (np.complex64 if dtype == np.float32 else np.complex128)
    want = np.fft.rfft2(x.astype(np.float64), norm=norm)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    assert np.allclose(F, want, rtol=tol, atol=tol * np.abs(want).max())
    assert np.allclose(S.irfft2(F, x.shape[1:], norm), x, atol=tol * 10)


def test_chunks_and_threads_do_not_change_features(monkeypatch):
    rng = np.random.default_rng(2)
    imgs = [rng.integers(0, 256, (s, s, 3), dtype=np.uint8) for s in (64, 32, 64, 64, 32) * 4]
    want = S.durall_fixed(imgs)
    monkeypatch.setattr(S, "CHUNK_PIXELS", 64 * 64 * 3)  # 3-image chunks
    with S.limit_threads(1):
        assert S.threads() == 1
        assert np.allclose(S.durall_fixed(imgs), want, rtol=1e-6, atol=1e-6)
        big = [i for i, im in enumerate(imgs) if len(im) == 64]
        assert np.allclose(S.durall_fixed(np.stack([imgs[i] for i in big])), want[big], rtol=1e-6, atol=1e-6)
        monkeypatch.setenv("FORENSICS_THREADS", "8")
        assert S.threads() == 1  # the block's limit wins over the setting
    assert S.threads() == 8  # and ends with the block


def test_threads_setting_is_validated(monkeypatch):
    from forensics.core.errors import UserError

    monkeypatch.setenv("FORENSICS_THREADS", "3")
    assert S.threads() == 3
    monkeypatch.setenv("FORENSICS_THREADS", "0")
    assert S.threads() == os.cpu_count()
    monkeypatch.setenv("FORENSICS_THREADS", "many")
    with pytest.raises(UserError, match="FORENSICS_THREADS"):
        S.threads()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_to_gray_in_row_blocks_equals_the_whole_image_product(monkeypatch, dtype):
    """Grey is computed a few rows at a time; the values are bit-identical to the product of
    the whole image's float copy with the weights (the formula it replaces), whatever the
    block size (one row, a remainder block, larger than the image)."""
    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, (2, 37, 23, 3), dtype=np.uint8)
    want = np.stack([a[i].astype(dtype) @ np.asarray(S.BT601, dtype=dtype) for i in range(len(a))])
    for block in (1, 23 * 3 * 8 * 5, 1 << 30):  # 1 row; 5 (or 10) rows: 37 leaves a remainder; everything
        monkeypatch.setattr(S, "GRAY_BLOCK_BYTES", block)
        got = S.to_gray(a, dtype=dtype)
        assert got.dtype == dtype and np.array_equal(got, want)
        r = S.to_gray(a, S.MATLAB_GRAY, round_uint8=True, dtype=dtype)
        assert np.array_equal(r, np.clip(np.rint(a.astype(np.float64) @ np.asarray(S.MATLAB_GRAY)), 0, 255))


def test_to_gray_peak_memory_is_the_grey_image_plus_a_block():
    """A 6 MP photo: the allocations peak at the float32 grey image plus about one block, not
    at a float32 copy of all three colour planes (3x the grey image more)."""
    import tracemalloc

    a = np.random.default_rng(4).integers(0, 256, (1, 2000, 3000, 3), dtype=np.uint8)
    grey = 2000 * 3000 * 4
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        S.to_gray(a, dtype=np.float32)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert grey <= peak <= grey + 2 * S.GRAY_BLOCK_BYTES + (1 << 16), peak / 2 ** 20


def test_geometry_caches_are_bounded_by_bytes_and_keep_values(monkeypatch):
    """The per-size geometry caches hold at most GEOMETRY_CACHE_BYTES of arrays (always the
    latest entry): a scan of photos in many sizes does not keep every size's geometry (about
    0.4 GB each at 24 MP) alive, while small sizes all stay cached. Evicted geometry is rebuilt
    with the same values."""
    S.half_geometry.cache_clear()
    first = S.half_geometry(64, 48)
    assert S.half_geometry(64, 48) is first  # cached
    one = S.half_geometry.cache_bytes()
    assert one == sum(a.nbytes for a in first)
    monkeypatch.setattr(S, "GEOMETRY_CACHE_BYTES", 3 * one)
    for h in (65, 66, 67, 68):  # similar sizes: the oldest are evicted to stay within 3 entries' bytes
        S.half_geometry(h, 48)
    assert S.half_geometry.cache_bytes() <= 3 * one * 1.1
    again = S.half_geometry(64, 48)
    assert again is not first and all(np.array_equal(a, b) for a, b in zip(again, first))
    monkeypatch.setattr(S, "GEOMETRY_CACHE_BYTES", 1)
    big = S.half_geometry(400, 300)  # over the budget alone: kept as the only entry
    assert S.half_geometry(400, 300) is big and S.half_geometry.cache_bytes() == sum(a.nbytes for a in big)


# ----------------------------------------------------------------- fast paths against one-image references
SIZES = [(128, 128), (127, 127), (128, 160), (77, 96)]


@pytest.fixture(scope="module")
def photo():
    from forensics.io.sources import builtin_photos

    return builtin_photos()[0][1]  # astronaut.png, 512 x 512


def _batch(photo, h, w, seed=0):
    """Four crops of the photo and two uniform-noise images of ``h x w`` (uint8 RGB)."""
    rng = np.random.default_rng(seed + h * 1000 + w)
    crops = [photo[y:y + h, x:x + w] for y, x in zip(rng.integers(0, 512 - h, 4), rng.integers(0, 512 - w, 4))]
    return np.concatenate([np.stack(crops), rng.integers(0, 256, (2, h, w, 3), dtype=np.uint8)])


@pytest.mark.parametrize("hw", SIZES)
def test_variant_features_equal_one_image_references(photo, hw):
    """dzanic+ and durall+ (float32 FFTs, the fit's rings alone, float64 ring sums) against the
    float64 one-image references: the profile values to float32 rounding of the FFT, and the
    Nelder-Mead fit, which starts from the same point, takes the same steps (b equal to 1e-9)."""
    rgb = _batch(photo, *hw)
    got = S.features(rgb, "dzanic+")
    want = np.stack([reference.dzanic_fixed_one(im) for im in rgb])
    assert np.allclose(got[:, 0], want[:, 0], rtol=0, atol=1e-9)
    assert np.allclose(got[:, 1:], want[:, 1:], rtol=1e-5)
    got = S.features(rgb, "durall+")
    want = np.stack([reference.durall_fixed_one(im) for im in rgb])
    scale = np.abs(want).max(axis=1, keepdims=True)  # the log magnitudes carry the FFT's float32 error
    assert got.shape == (len(rgb), 80) and np.all(np.abs(got - want) <= 1e-5 * scale)


@pytest.mark.parametrize("hw", SIZES)
def test_profiles_equal_one_image_reference(photo, hw):
    rgb = _batch(photo, *hw)
    want_mag = np.stack([reference.ring_means_one(im) for im in rgb])
    got_mag = S.azimuthal_profile(rgb, "magnitude")
    # float32 FFT: absolute error about 1e-7 of the largest magnitude (DC), in every ring
    assert np.all(np.abs(got_mag - want_mag) <= 1e-6 * want_mag[:, :1])
    got = S.azimuthal_profile(rgb)
    want = np.stack([reference.azimuthal_profile_one(im) for im in rgb])
    big = want_mag > 1e-3 * want_mag[:, :1]  # rings whose mean is well above that error: 1e-3 dB
    assert big.mean() > 0.5 and np.abs(got - want)[big].max() <= 1e-3
    assert np.abs(got - want).max() <= 2e-2  # the rings holding nearly-zero coefficients too
    want_pow = np.stack([reference.ring_means_one(im, np.square) for im in rgb])
    assert np.allclose(S.azimuthal_profile(rgb, "power"), want_pow, rtol=1e-5, atol=1e-5 * want_mag[:, :1] ** 2)


@pytest.mark.parametrize("hw", SIZES)
def test_dzanic_band_path_equals_the_full_profile(photo, hw):
    """dzanic computes only the bins its smoothed band reads, from the half plane's columns that
    hold them; the same numbers as the whole 200-bin profile (dzanic_faithful_profile), smoothed
    and fitted, and as the one-image reference."""
    rgb = _batch(photo, *hw)
    got = S.dzanic_faithful(rgb)
    sm, _ = S.dzanic_faithful_profile(rgb)
    centres = S._dzanic_geometry(*hw, 200, 0.5)[1]
    x = centres[140:] / centres.max()
    want = np.stack([S.fit_decay_published(x, sm[:, 140:]), sm[:, 140], sm[:, -1]], axis=1)
    assert np.allclose(got, want, rtol=1e-12, atol=0)
    ref = np.stack([reference.dzanic_faithful_one(im) for im in rgb])
    assert np.allclose(got, ref, rtol=1e-6)


def test_dzanic_band_path_keeps_empty_bins_and_nan():
    rgb = np.random.default_rng(5).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    with pytest.warns(RuntimeWarning, match="not finite"):
        got = S.dzanic_faithful(rgb)
    sm, _ = S.dzanic_faithful_profile(rgb)
    assert np.isnan(got[:, 0]).all() and np.array_equal(got[:, 1:], sm[:, [140, -1]], equal_nan=True)


def test_matlab_smooth_equals_windowed_means():
    rng = np.random.default_rng(6)
    y = rng.standard_normal((3, 40))
    y[rng.random(y.shape) < 0.3] = np.nan
    y[1, 10:16] = np.nan  # a window of NaNs only
    for span in (1, 3, 5, 7):
        half = (span - 1) // 2
        want = np.empty_like(y)
        for i in range(y.shape[1]):
            hw = min(half, i, y.shape[1] - 1 - i)
            want[:, i] = [np.nanmean(r[i - hw:i + hw + 1]) if np.isfinite(r[i - hw:i + hw + 1]).any() else np.nan
                          for r in y]
        assert np.allclose(S.matlab_smooth(y, span), want, rtol=1e-14, equal_nan=True)


def test_durall_keeps_float64_where_the_spectrum_is_zero():
    """durall adds its 1e-8 to the float64 FFT and only then rounds |F + 1e-8| to float32: on
    smooth float images, whose high frequencies are far below float32's rounding of the
    transform, it still equals the float64 computation (a float32 FFT is up to 50% off here)."""
    yy, xx = np.mgrid[0:64, 0:64]
    g = np.stack([np.exp(-((yy - 30.0) ** 2 + (xx - 33.0) ** 2) / (2 * s ** 2)) * 200 for s in (3.0, 5.0)])
    F = np.fft.fft2(g) + 1e-8
    mag = 20 * np.log(np.abs(F))
    rings = S._durall_geometry(64, 64)
    yy2, xx2 = np.indices((64, 64))
    r = np.floor(np.hypot(xx2 - 31.5, yy2 - 31.5)).astype(int)
    full = np.fft.fftshift(mag, axes=(1, 2))
    prof = np.stack([[im[r == k].mean() for k in range(1, r.max())] for im in full])
    assert prof.shape[1] == rings.n_bins
    v = prof @ S.spline_resample_matrix(prof.shape[1], 80)
    assert np.allclose(S.durall_faithful(g), v / v[:, :1], rtol=1e-6)


def test_high_frequency_gap_of_a_blur_is_its_transfer_function():
    x = power_law_images(64, 2.0, count=4)
    sigma = 0.6
    f2 = np.fft.fftfreq(64)[:, None] ** 2 + np.fft.fftfreq(64)[None, :] ** 2
    blurred = np.real(np.fft.ifft2(np.fft.fft2(x) * np.exp(-2 * np.pi ** 2 * sigma ** 2 * f2)))
    f = S.profile_frequencies(64, 64)
    k = int(round(len(f) * 0.75))
    want = np.mean(20 * np.log10(np.exp(-2 * np.pi ** 2 * sigma ** 2 * f[k:] ** 2)))
    assert want < -10
    assert S.high_frequency_gap(blurred, x) == pytest.approx(want, rel=0.03)
    assert S.high_frequency_gap(x, blurred) == pytest.approx(-want, rel=0.03)
    assert S.high_frequency_gap(x, x) == 0.0
    with pytest.raises(ValueError, match="differ in size"):
        S.high_frequency_gap(x, x[:, :32, :32])
