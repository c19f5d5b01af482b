"""Synthetic TMS-EEG recordings with planted truth (demo, tests, benchmarks).

The generator builds a continuous recording (an :class:`mne.io.RawArray` with a
standard 10-05 montage and ``TMS`` annotations at the pulses) whose parts are
all known:

* **TEP**: six dipolar components (N15, P30, N45, P60, N100, P180 by default)
  with known latency, width, sign and peak amplitude, each a radial dipole
  under a 10-05 position, projected onto the electrodes through a 3-shell
  sphere head model (:func:`mne.make_sphere_model` +
  :func:`mne.make_forward_solution` on a discrete source space). Each
  component's time course is a Gaussian bump; trial-to-trial amplitude varies
  by ``tep_jitter`` (relative SD).
* **background EEG**: random dipoles with 1/f (pink) activity, two occipital
  alpha (10 Hz) dipoles, and white sensor noise.
* **artifacts** (sensor space): the TMS pulse (a 600 Hz damped ringing of
  several mV during the first 6 ms), an exponential decay artifact (or a double
  exponential), a TMS-evoked cranial muscle response (biphasic, 2-35 ms, a
  bipolar left temporal topography), blinks (frontal), lateral eye movements
  (opposite signs at F7/F8), persistent right temporal muscle activity (white
  noise above 20 Hz) and line noise.

Every topography and time course is returned in :class:`SimulatedTmsEeg`
(``truth``), so tests can check what a cleaning step removed and what it kept.
The planted TEP (``truth.tep``, average reference, the epoch time axis), the
planted component latencies (``truth.latencies_ms``) and the GMFP maxima that
these components produce (``truth.gmfp_peaks_ms``, computed here with numpy
from the waveform definitions, not with :mod:`tmsnet.eeg`) are the reference of
the planted-truth tests. The simulator imports nothing of :mod:`tmsnet.eeg`: a
simulator that measured its truth with the code under test would only compare
that code with itself.

Units: data in volts in the Raw object (MNE's convention), amplitudes of the
parameters in microvolts, times in seconds, positions in metres (MNE head
coordinates).

References
----------
Rogasch N.C. et al. (2017) Analysing concurrent transcranial magnetic
stimulation and electroencephalographic data: a review and introduction to the
open-source TESA software. NeuroImage 147:934 (artifact types and their time
ranges; ``../shared/REFERENCES.md`` section 2).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tmsnet.exceptions import InvalidParameterError
from tmsnet.utils.params import Parameters, param

__all__ = [
    "CHANNELS_32",
    "CHANNELS_64",
    "EegSimulationParameters",
    "PlantedComponent",
    "SimulatedTmsEeg",
    "TepTruth",
    "simulate_tms_eeg",
    "standard_montage",
]

#: Step (s) of the fine time grid on which the expected GMFP maxima are located.
_FINE_STEP_S = 1e-5

#: Random background (pink-noise) dipoles of the simulated head.
N_BACKGROUND_DIPOLES = 40

#: A common 32-channel 10-20 cap (Brain Products actiCAP layout).
CHANNELS_32: tuple[str, ...] = tuple(
    "Fp1 Fp2 F7 F3 Fz F4 F8 FC5 FC1 FC2 FC6 T7 C3 Cz C4 T8 TP9 CP5 CP1 CP2 CP6 TP10 "
    "P7 P3 Pz P4 P8 PO9 O1 Oz O2 PO10".split()
)

#: A 64-channel 10-10 cap.
CHANNELS_64: tuple[str, ...] = tuple(
    "Fp1 Fpz Fp2 AF7 AF3 AFz AF4 AF8 F9 F7 F5 F3 F1 Fz F2 F4 F6 F8 F10 FT7 FC5 FC3 FC1 FCz "
    "FC2 FC4 FC6 FT8 T7 C5 C3 C1 Cz C2 C4 C6 T8 TP7 CP5 CP3 CP1 CPz CP2 CP4 CP6 TP8 P7 P5 P3 "
    "P1 Pz P2 P4 P6 P8 PO7 PO3 POz PO4 PO8 O1 Oz O2 Iz".split()
)


@dataclass(frozen=True)
class PlantedComponent:
    """One dipolar TEP component.

    Attributes
    ----------
    name : str
        Label (``"N100"``...).
    latency_s : float
        Centre of the Gaussian time course (s after the pulse).
    width_s : float
        Standard deviation of the Gaussian (s).
    peak_uv : float
        Signed amplitude at the channel of largest |amplitude|, average
        reference (microvolts); the sign is the polarity there.
    site : str
        10-05 label of the scalp position above the dipole.
    depth_m : float
        Distance of the dipole below the scalp along the radius (m).
    """

    name: str
    latency_s: float
    width_s: float
    peak_uv: float
    site: str
    depth_m: float = 0.025


#: Default TEP: latencies of the standard components, dipoles around left M1.
DEFAULT_COMPONENTS: tuple[PlantedComponent, ...] = (
    PlantedComponent("N15", 0.015, 0.0025, -4.0, "C3", 0.022),
    PlantedComponent("P30", 0.030, 0.0040, 10.0, "FC1", 0.025),
    PlantedComponent("N45", 0.045, 0.0045, -12.0, "CP3", 0.025),
    PlantedComponent("P60", 0.060, 0.0050, 10.0, "P3", 0.025),
    PlantedComponent("N100", 0.100, 0.0120, -18.0, "C3", 0.030),
    PlantedComponent("P180", 0.180, 0.0200, 15.0, "Cz", 0.030),
)


@dataclass
class TepTruth:
    """Everything planted in a simulated recording.

    Attributes
    ----------
    components : list of PlantedComponent
        The TEP components.
    topographies : ndarray, shape (n_components, n_channels)
        Sensor pattern of each component (average reference, unit peak |value|
        times ``peak_uv``; microvolts).
    times : ndarray
        Epoch time axis of ``tep`` (s), -1 s to 1 s at the recording's rate.
    tep : ndarray, shape (n_channels, n_times)
        Noise-free trial-average TEP, average reference (volts).
    gmfp_peaks_ms : dict of str to float
        Expected GMFP peak (ms) of each component: the local maximum of the
        noise-free GMFP (SD across channels, ddof 1, average reference) nearest
        the component's planted latency, located on a 0.01 ms grid from the
        waveform definitions (so it includes the shift that overlapping
        components and the natural-frequency oscillation cause); NaN when no
        local maximum lies within two widths of the latency (a masked component).
    latencies_ms : dict of str to float
        Planted latency (ms) of each component (``PlantedComponent.latency_s``).
    artifact_topographies : dict of str to ndarray
        Sensor patterns (unit norm) of ``"tms_muscle"``, ``"blink"``,
        ``"eye_movement"``, ``"persistent_muscle"`` and ``"decay"``.
    pulse_samples : ndarray of int
        Sample index of each TMS pulse in the Raw data.
    blink_samples : ndarray of int
        Onset sample of each blink.
    line_freq : float
        Line-noise frequency (Hz).
    natural_frequency_hz : float or None
        Frequency of the planted damped oscillation at the stimulated site
        (None if none was planted).
    """

    components: list[PlantedComponent]
    topographies: np.ndarray
    times: np.ndarray
    tep: np.ndarray
    gmfp_peaks_ms: dict[str, float]
    latencies_ms: dict[str, float]
    artifact_topographies: dict[str, np.ndarray]
    pulse_samples: np.ndarray
    blink_samples: np.ndarray
    line_freq: float
    natural_frequency_hz: float | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class SimulatedTmsEeg:
    """A simulated recording and its truth.

    Attributes
    ----------
    raw : mne.io.RawArray
        Continuous EEG (volts) with a montage and ``TMS`` annotations.
    events : ndarray, shape (n_pulses, 3)
        MNE events of the pulses (event id 1).
    truth : TepTruth
        The planted answer.
    """

    raw: object
    events: np.ndarray
    truth: TepTruth


def _shaped_noise(rng: np.random.Generator, n_series: int, n_times: int, sfreq: float,
                  gain_of_freq) -> np.ndarray:
    """Unit-variance Gaussian noise with amplitude spectrum ``gain_of_freq(f)``."""
    from scipy import fft

    n_fft = fft.next_fast_len(n_times, real=True)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sfreq)
    gain = gain_of_freq(freqs)
    spectrum = (rng.standard_normal((n_series, freqs.size))
                + 1j * rng.standard_normal((n_series, freqs.size))) * gain
    series = fft.irfft(spectrum, n=n_fft, axis=1)[:, :n_times]
    series /= series.std(axis=1, keepdims=True)
    return series


def _pink_noise(rng: np.random.Generator, n_series: int, n_times: int, sfreq: float,
                *, exponent: float = 1.0, f_min: float = 0.5) -> np.ndarray:
    """Unit-variance noise with power ~ 1/f**exponent above ``f_min`` Hz."""

    def gain(freqs: np.ndarray) -> np.ndarray:
        out = np.zeros_like(freqs)
        keep = freqs >= f_min
        out[keep] = freqs[keep] ** (-exponent / 2.0)
        return out

    return _shaped_noise(rng, n_series, n_times, sfreq, gain)


def _band_noise(rng: np.random.Generator, n_series: int, n_times: int, sfreq: float,
                band: tuple[float, float]) -> np.ndarray:
    """Unit-variance noise with a flat spectrum inside ``band`` (Hz), none outside."""
    return _shaped_noise(rng, n_series, n_times, sfreq,
                         lambda f: ((f >= band[0]) & (f <= band[1])).astype(float))


def _unit(v: np.ndarray) -> np.ndarray:
    """``v`` scaled to unit Euclidean norm."""
    return v / np.linalg.norm(v)


#: Upper bound of every amplitude setting (microvolts; 1 V, far above any EEG artifact).
_MAX_UV = 1e6


@dataclass(frozen=True)
class EegSimulationParameters(Parameters):
    """Settings of a simulated TMS-EEG recording (:func:`simulate_tms_eeg`).

    Frozen and validated at construction (:class:`tmsnet.utils.params.Parameters`);
    the defaults are declared here once. Amplitudes in microvolts (0 disables
    an artifact or a noise source), times in seconds, frequencies in Hz.

    Attributes
    ----------
    n_channels : {32, 64}
        Cap size (:data:`CHANNELS_32` or :data:`CHANNELS_64`).
    sfreq : float
        Sampling rate (Hz); at least 1000.
    n_trials : int
        Number of TMS pulses (>= 2).
    isi_s : (float, float)
        Range of the uniform inter-pulse interval (s); >= 2.05 so that -1..1 s
        epochs do not overlap.
    tep_jitter : float
        Relative SD of the per-trial TEP amplitude.
    background_uv, alpha_uv, sensor_noise_uv : float
        Median channel RMS of the pink-noise dipoles, of the occipital alpha
        dipoles, and SD of the white sensor noise (microvolts).
    pulse_uv, decay_uv, muscle_uv, blink_uv, eye_movement_uv, persistent_muscle_uv, line_uv : float
        Peak amplitudes of the artifacts at their largest channel
        (microvolts); the persistent muscle and line noise as RMS. 0 disables one.
    decay_tau_s : tuple of float
        Time constant(s) of the decay artifact (s): one gives an exponential,
        two a double exponential (second term half the amplitude).
    blink_interval_s, eye_movement_interval_s : float
        Mean interval between blinks / eye movements (s).
    line_freq : float
        Line frequency (Hz).
    natural_frequency_hz, natural_frequency_uv : float, optional
        If a frequency (Hz) is given, a damped oscillation at it (time
        constant 80 ms, peak ``natural_frequency_uv`` microvolts) is added at
        the first component's dipole, phase-locked to the pulse.
    annotate : bool
        Add ``TMS`` annotations at the pulses (False leaves them to be
        detected from the artifact).
    """

    n_channels: int = param(32, help="cap size (channels)", choices=(32, 64), low=32, high=64, cli=False)
    sfreq: float = param(2000.0, help="sampling rate", units="Hz", low=1000, high=50_000, cli=False)
    n_trials: int = param(60, help="number of TMS pulses", low=2, high=10_000, cli=False)
    isi_s: tuple[float, float] = param((2.1, 2.6), help="range of the uniform inter-pulse interval",
                                       units="s", item_kind="float", low=2.05, high=60, cli=False)
    tep_jitter: float = param(0.1, help="relative SD of the per-trial TEP amplitude", low=0, high=1,
                              cli=False)
    background_uv: float = param(4.0, help="median channel RMS of the pink-noise dipoles", units="uV",
                                 low=0, high=_MAX_UV, cli=False)
    alpha_uv: float = param(2.0, help="median channel RMS of the occipital alpha dipoles", units="uV",
                            low=0, high=_MAX_UV, cli=False)
    sensor_noise_uv: float = param(1.0, help="SD of the white sensor noise", units="uV", low=0,
                                   high=_MAX_UV, cli=False)
    pulse_uv: float = param(5000.0, help="peak of the TMS pulse ringing", units="uV", low=0,
                            high=_MAX_UV, cli=False)
    decay_uv: float = param(60.0, help="peak of the decay artifact", units="uV", low=0, high=_MAX_UV,
                            cli=False)
    decay_tau_s: tuple[float, ...] = param((0.020,), help="time constant(s) of the decay artifact",
                                           units="s", item_kind="float", low=0, low_inclusive=False,
                                           high=10, cli=False)
    muscle_uv: float = param(200.0, help="peak of the TMS-evoked cranial muscle response", units="uV",
                             low=0, high=_MAX_UV, cli=False)
    blink_uv: float = param(150.0, help="peak of a blink", units="uV", low=0, high=_MAX_UV, cli=False)
    blink_interval_s: float = param(4.0, help="mean interval between blinks", units="s", low=0.5,
                                    high=3600, cli=False)
    eye_movement_uv: float = param(60.0, help="peak of a lateral eye movement", units="uV", low=0,
                                   high=_MAX_UV, cli=False)
    eye_movement_interval_s: float = param(7.0, help="mean interval between eye movements", units="s",
                                           low=1.0, high=3600, cli=False)
    persistent_muscle_uv: float = param(12.0, help="RMS of the persistent right temporal muscle activity",
                                        units="uV", low=0, high=_MAX_UV, cli=False)
    line_uv: float = param(4.0, help="RMS of the line noise", units="uV", low=0, high=_MAX_UV, cli=False)
    line_freq: float = param(50.0, help="line frequency", units="Hz", low=0, low_inclusive=False,
                             high=1000, cli=False)
    natural_frequency_hz: float | None = param(None, help="frequency of the planted damped oscillation",
                                               units="Hz", low=0, low_inclusive=False, high=1000,
                                               cli=False)
    natural_frequency_uv: float = param(3.0, help="peak of the planted damped oscillation", units="uV",
                                        low=0, high=_MAX_UV, cli=False)
    annotate: bool = param(True, help="add TMS annotations at the pulses", cli=False)

    def check(self) -> None:
        """Cross-field rules: an increasing ``isi_s`` pair, one or two decay time constants."""
        if len(self.isi_s) != 2 or self.isi_s[0] > self.isi_s[1]:
            raise InvalidParameterError(f"isi_s must be an increasing pair >= 2.05 s, got {self.isi_s}.")
        if len(self.decay_tau_s) not in (1, 2):
            raise InvalidParameterError("decay_tau_s takes one (exponential) or two time constants.")


def simulate_tms_eeg(
    params: EegSimulationParameters | None = None,
    *,
    seed: int = 0,
    components: Sequence[PlantedComponent] | None = None,
) -> SimulatedTmsEeg:
    """Simulate a single-pulse TMS-EEG recording with planted truth.

    Parameters
    ----------
    params : EegSimulationParameters, optional
        Settings of the recording (cap, rate, pulses, noise and artifact
        amplitudes in microvolts); default ``EegSimulationParameters()``.
    seed : int
        Seed of every random draw.
    components : sequence of PlantedComponent, optional
        TEP components (default :data:`DEFAULT_COMPONENTS`).

    Returns
    -------
    SimulatedTmsEeg

    Raises
    ------
    InvalidParameterError
        If ``params`` is not an :class:`EegSimulationParameters` (its own
        construction refuses an out-of-range setting).

    Examples
    --------
    >>> from tmsnet.simulate.eeg import EegSimulationParameters, simulate_tms_eeg
    >>> sim = simulate_tms_eeg(EegSimulationParameters(n_trials=12, sfreq=1000.0), seed=5)
    >>> sim.events.shape
    (12, 3)
    """
    import mne

    p = EegSimulationParameters() if params is None else params
    if not isinstance(p, EegSimulationParameters):
        raise InvalidParameterError(f"params must be an EegSimulationParameters, got {type(p).__name__}.")
    components = DEFAULT_COMPONENTS if components is None else components
    rng = np.random.default_rng(seed)
    names = list(CHANNELS_32 if p.n_channels == 32 else CHANNELS_64)
    info = mne.create_info(names, p.sfreq, "eeg")
    head = _head_model(rng, info, names, components)
    pulse_samples, n_times = _pulse_timing(rng, p.isi_s, p.n_trials, p.sfreq)
    data, bg_scale = _background(rng, head, len(components), n_times, p)
    tep = _planted_tep(head, components, p.sfreq, p.natural_frequency_hz, p.natural_frequency_uv)
    topo = _artifact_topographies(rng, head)
    _add_time_locked(rng, data, pulse_samples, tep, topo, p)
    blink_samples = _add_ongoing(rng, data, topo, p)
    raw = _raw_array(data, info, p.sfreq, pulse_samples, p.annotate)
    events = np.column_stack([pulse_samples, np.zeros(p.n_trials, int), np.ones(p.n_trials, int)])
    truth = _truth(components, tep, topo, pulse_samples, blink_samples, line_freq=p.line_freq,
                   natural_frequency_hz=p.natural_frequency_hz, bg_scale=bg_scale)
    return SimulatedTmsEeg(raw=raw, events=events, truth=truth)


def _pulse_timing(rng: np.random.Generator, isi_s: tuple[float, float], n_trials: int,
                  sfreq: float) -> tuple[np.ndarray, int]:
    """Pulse samples (first pulse at 2 s, uniform intervals) and the recording length (samples)."""
    isis = rng.uniform(isi_s[0], isi_s[1], size=n_trials - 1)
    onsets_s = 2.0 + np.concatenate([[0.0], np.cumsum(isis)])
    n_times = int(np.ceil((onsets_s[-1] + 2.0) * sfreq))
    pulse_samples = np.round(onsets_s * sfreq).astype(int)
    return pulse_samples, n_times


def _raw_array(data: np.ndarray, info, sfreq: float, pulse_samples: np.ndarray, annotate: bool):
    """The recording as an ``mne.io.RawArray`` (data in microvolts, scaled in place to volts)."""
    import mne

    data *= 1e-6
    raw = mne.io.RawArray(data, info, verbose=False)
    if annotate:
        n_trials = len(pulse_samples)
        raw.set_annotations(mne.Annotations(onset=pulse_samples / sfreq, duration=0.0,
                                            description=["TMS"] * n_trials))
    return raw


def standard_montage():
    """The standard 10-05 montage (``colin27_1005``, formerly ``standard_1005``) of the demo cap.

    The simulator's own copy (MNE's template positions), so that it imports
    nothing of the :mod:`tmsnet.eeg` code it is used to test.

    Returns
    -------
    mne.channels.DigMontage
        Positions in metres (MNE head coordinates).
    """
    import mne

    name = "colin27_1005" if "colin27_1005" in mne.channels.get_builtin_montages() else "standard_1005"
    return mne.channels.make_standard_montage(name)


def _component_waves(times: np.ndarray, components: Sequence[PlantedComponent]) -> np.ndarray:
    """Gaussian time course (unit peak) of each component at ``times`` (s), shape (n_comp, n_times)."""
    return np.array([np.exp(-0.5 * ((times - c.latency_s) / c.width_s) ** 2) for c in components])


def _oscillation_wave(times: np.ndarray, frequency_hz: float) -> np.ndarray:
    """Damped sine (time constant 80 ms, unit envelope) starting at the pulse."""
    post = times >= 0
    return np.where(post, np.sin(2 * np.pi * frequency_hz * times)
                    * np.exp(-np.where(post, times, 0) / 0.08), 0.0)


def _expected_gmfp_peaks_ms(components: Sequence[PlantedComponent], tep: dict[str, Any],
                            natural_frequency_hz: float | None) -> dict[str, float]:
    """Local maximum of the noise-free GMFP nearest each planted latency (ms; see TepTruth).

    The GMFP (SD across channels, ddof 1, of the average-referenced TEP) is
    evaluated on a ``_FINE_STEP_S`` grid from the waveform definitions; where
    components overlap, the maximum moves away from the planted latency, and
    this is that moved position.
    """
    last = max(c.latency_s + 4 * c.width_s for c in components)
    fine = np.arange(0.0, last + _FINE_STEP_S, _FINE_STEP_S)
    tep_fine = tep["topos"].T @ _component_waves(fine, components)
    if natural_frequency_hz is not None:
        tep_fine += np.outer(tep["osc_topo"], _oscillation_wave(fine, natural_frequency_hz))
    power = tep_fine.std(axis=0, ddof=1)
    inner = np.arange(1, power.size - 1)
    maxima = inner[(power[inner] > power[inner - 1]) & (power[inner] >= power[inner + 1])]
    out = {}
    for c in components:
        near = maxima[np.abs(fine[maxima] - c.latency_s) <= 2 * c.width_s]
        best = near[np.argmin(np.abs(fine[near] - c.latency_s))] if near.size else None
        out[c.name] = float("nan") if best is None else round(float(fine[best]) * 1000.0, 3)
    return out


def _truth(components: Sequence[PlantedComponent], tep: dict[str, Any],
           topo: dict[str, np.ndarray], pulse_samples: np.ndarray, blink_samples: list[int], *,
           line_freq: float, natural_frequency_hz: float | None, bg_scale: float) -> TepTruth:
    """The planted truth: TEP (volts), its latencies and GMFP maxima, artifact topographies, events."""
    return TepTruth(
        components=list(components),
        topographies=tep["topos"],
        times=tep["times"],
        tep=tep["tep_uv"] * 1e-6,
        gmfp_peaks_ms=_expected_gmfp_peaks_ms(components, tep, natural_frequency_hz),
        latencies_ms={c.name: float(c.latency_s) * 1000.0 for c in components},
        artifact_topographies={
            "tms_muscle": _unit(topo["muscle"]),
            "blink": _unit(topo["blink"]),
            "eye_movement": _unit(topo["move"]),
            "persistent_muscle": _unit(topo["pmus"]),
            "decay": _unit(topo["decay"]),
        },
        pulse_samples=pulse_samples,
        blink_samples=np.asarray(blink_samples, dtype=int),
        line_freq=line_freq,
        natural_frequency_hz=natural_frequency_hz,
        extra={"background_scale": bg_scale, "n_background_dipoles": N_BACKGROUND_DIPOLES},
    )


@dataclass
class _Head:
    """Channel positions and the lead field of the simulated dipoles (sphere model)."""

    pos: np.ndarray
    site_pos: Callable[[str], np.ndarray]
    lead: np.ndarray  # (n_channels, n_sources), V per A*m: TEP, background, alpha dipoles
    lead_avg: np.ndarray  # the same, average-referenced


def _head_model(rng: np.random.Generator, info, names: list[str],
                components: Sequence[PlantedComponent]) -> _Head:
    """Set the standard montage and compute the sphere-model lead field of all dipoles."""
    import mne

    montage = standard_montage()
    info.set_montage(montage)
    n_channels = len(names)
    sfreq = info["sfreq"]
    pos = np.array([info["chs"][i]["loc"][:3] for i in range(n_channels)])
    sphere = mne.make_sphere_model("auto", "auto", info, verbose=False)
    r0 = np.asarray(sphere["r0"])
    radius = float(sphere.radius)

    def site_pos(label: str) -> np.ndarray:
        # Channel positions in head coordinates; other labels are placed through
        # the same montage (and so the same fiducial transform).
        if label in names:
            return pos[names.index(label)]
        raw_tmp = mne.create_info([label], sfreq, "eeg")
        raw_tmp.set_montage(montage)
        return np.asarray(raw_tmp["chs"][0]["loc"][:3])

    # ---- dipoles: TEP components + background + alpha -------------------------------------
    comp_rr = []
    comp_nn = []
    for comp in components:
        p = site_pos(comp.site)
        u = _unit(p - r0)
        comp_rr.append(r0 + u * (radius - comp.depth_m))
        comp_nn.append(u)
    n_bg = N_BACKGROUND_DIPOLES
    bg_dir = rng.standard_normal((n_bg, 3))
    bg_dir[:, 2] = np.abs(bg_dir[:, 2])  # upper hemisphere of the sphere
    bg_dir /= np.linalg.norm(bg_dir, axis=1, keepdims=True)
    bg_rr = r0 + bg_dir * rng.uniform(0.045, 0.070, size=(n_bg, 1))
    bg_nn = rng.standard_normal((n_bg, 3))
    bg_nn /= np.linalg.norm(bg_nn, axis=1, keepdims=True)
    alpha_sites = [site_pos("O1"), site_pos("O2")]
    al_rr = np.array([r0 + _unit(p - r0) * (radius - 0.03) for p in alpha_sites])
    al_nn = np.array([_unit(p - r0) for p in alpha_sites])
    rr = np.vstack([np.array(comp_rr), bg_rr, al_rr])
    nn = np.vstack([np.array(comp_nn), bg_nn, al_nn])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        src = mne.setup_volume_source_space(pos=dict(rr=rr, nn=nn), sphere=sphere, verbose=False)
        fwd = mne.make_forward_solution(info, None, src, sphere, eeg=True, meg=False, verbose=False)
    if fwd["nsource"] != len(rr):
        raise RuntimeError("The sphere model dropped simulated dipoles; this is a bug.")
    gain = fwd["sol"]["data"].reshape(n_channels, len(rr), 3)
    lead = np.einsum("csk,sk->cs", gain, nn)
    return _Head(pos=pos, site_pos=site_pos, lead=lead,
                 lead_avg=lead - lead.mean(axis=0, keepdims=True))


def _background(rng: np.random.Generator, head: _Head, n_comp: int, n_times: int,
                p: EegSimulationParameters) -> tuple[np.ndarray, float]:
    """Pink-noise dipoles, occipital alpha and white sensor noise (microvolts), and the scale."""
    lead, n_bg, sfreq = head.lead, N_BACKGROUND_DIPOLES, p.sfreq
    background_uv, alpha_uv, sensor_noise_uv = p.background_uv, p.alpha_uv, p.sensor_noise_uv
    n_channels = lead.shape[0]
    data = np.zeros((n_channels, n_times))  # microvolts
    block = 8
    bg_total = np.zeros(n_channels)
    for start in range(0, n_bg, block):
        idx = np.arange(start, min(start + block, n_bg))
        series = _pink_noise(rng, idx.size, n_times, sfreq)
        contrib = lead[:, n_comp + idx] @ series
        data += contrib
        bg_total += contrib.var(axis=1)
    bg_scale = background_uv / np.sqrt(np.median(bg_total))
    data *= bg_scale
    if alpha_uv > 0:
        alpha = _band_noise(rng, 2, n_times, sfreq, (8.5, 11.5))
        contrib = lead[:, n_comp + n_bg:] @ alpha
        data += contrib * (alpha_uv / np.median(contrib.std(axis=1)))
    data += sensor_noise_uv * rng.standard_normal((n_channels, n_times))
    return data, bg_scale


def _planted_tep(head: _Head, components: Sequence[PlantedComponent], sfreq: float,
                 natural_frequency_hz: float | None, natural_frequency_uv: float) -> dict[str, Any]:
    """The planted TEP: topographies, epoch times, average-referenced and raw TEP (microvolts)."""
    lead, lead_avg = head.lead, head.lead_avg
    n_comp = len(components)
    topos = np.zeros((n_comp, lead.shape[0]))
    for i, comp in enumerate(components):
        col = lead_avg[:, i]
        k = np.argmax(np.abs(col))
        topos[i] = col / col[k] * comp.peak_uv  # signed so the extreme channel has peak_uv
    half = int(round(1.0 * sfreq))
    ep_times = np.arange(-half, half + 1) / sfreq
    waves = _component_waves(ep_times, components)
    osc_topo = None
    osc_wave = None
    if natural_frequency_hz is not None:
        osc_wave = _oscillation_wave(ep_times, natural_frequency_hz)
        col = lead_avg[:, 0]
        osc_topo = col / np.max(np.abs(col)) * natural_frequency_uv
    tep_uv = topos.T @ waves
    if osc_topo is not None:
        tep_uv = tep_uv + np.outer(osc_topo, osc_wave)
    # The raw data carry the reference-free potentials of the same dipoles,
    # scaled like the average-referenced truth (the common mode is a reference choice).
    scale = np.array([components[i].peak_uv / lead_avg[np.argmax(np.abs(lead_avg[:, i])), i]
                      for i in range(n_comp)])
    raw_topos = (lead[:, :n_comp] * scale).T
    tep_raw = raw_topos.T @ waves
    if osc_topo is not None:
        tep_raw = tep_raw + np.outer(lead[:, 0] / np.max(np.abs(lead_avg[:, 0]))
                                     * natural_frequency_uv, osc_wave)
    return {"topos": topos, "times": ep_times, "half": half, "tep_uv": tep_uv, "tep_raw": tep_raw,
            "osc_topo": osc_topo}


def _artifact_topographies(rng: np.random.Generator, head: _Head) -> dict[str, np.ndarray]:
    """Sensor topographies of the pulse, decay, muscle, blink, eye-movement and EMG artifacts."""
    pos, site_pos = head.pos, head.site_pos
    n_channels = pos.shape[0]

    def gauss_topo(center: np.ndarray, width: float) -> np.ndarray:
        d = np.linalg.norm(pos - center, axis=1)
        return np.exp(-0.5 * (d / width) ** 2)

    coil = site_pos("C3")
    pulse_topo = 0.3 + gauss_topo(coil, 0.05)
    pulse_topo *= rng.choice([-1.0, 1.0], size=n_channels)
    decay_topo = gauss_topo(coil, 0.045) * rng.uniform(0.6, 1.0, n_channels)
    decay_topo *= np.where(rng.random(n_channels) < 0.5, -1.0, 1.0)
    muscle_topo = gauss_topo(site_pos("FT7"), 0.03) - 0.7 * gauss_topo(site_pos("TP7"), 0.03)
    muscle_topo /= np.max(np.abs(muscle_topo))
    fp_mid = 0.5 * (site_pos("Fp1") + site_pos("Fp2"))
    eye = fp_mid + np.array([0.0, 0.02, -0.03])
    blink_topo = gauss_topo(eye, 0.06)
    blink_topo /= blink_topo.max()
    move_topo = gauss_topo(site_pos("F9") + np.array([0, 0.01, -0.02]), 0.05) - gauss_topo(
        site_pos("F10") + np.array([0, 0.01, -0.02]), 0.05)
    move_topo /= np.max(np.abs(move_topo))
    pmus_topo = gauss_topo(site_pos("T8"), 0.03)
    pmus_topo /= pmus_topo.max()
    return {"pulse": pulse_topo, "decay": decay_topo, "muscle": muscle_topo, "blink": blink_topo,
            "move": move_topo, "pmus": pmus_topo}


def _add_time_locked(rng: np.random.Generator, data: np.ndarray, pulse_samples: np.ndarray,
                     tep: dict[str, Any], topo: dict[str, np.ndarray], p: EegSimulationParameters) -> None:
    """Add, at every pulse, the TEP, the pulse ringing, the decay and the cranial muscle (in place)."""
    tep_jitter, pulse_uv, decay_uv, muscle_uv = p.tep_jitter, p.pulse_uv, p.decay_uv, p.muscle_uv
    decay_tau_s = p.decay_tau_s
    ep_times, half, tep_raw = tep["times"], tep["half"], tep["tep_raw"]
    n_ep = ep_times.size
    post = ep_times >= 0
    tpos = np.where(post, ep_times, 0.0)
    pulse_wave = np.where(post & (ep_times < 0.006),
                          np.cos(2 * np.pi * 600.0 * tpos) * np.exp(-tpos / 0.0015), 0.0)
    if len(decay_tau_s) == 1:
        decay_wave = np.where(post, np.exp(-tpos / decay_tau_s[0]), 0.0)
    else:
        decay_wave = np.where(post, np.exp(-tpos / decay_tau_s[0])
                              + 0.5 * np.exp(-tpos / decay_tau_s[1]), 0.0)
    muscle_wave = (np.exp(-0.5 * ((ep_times - 0.008) / 0.003) ** 2)
                   - 0.6 * np.exp(-0.5 * ((ep_times - 0.018) / 0.005) ** 2))
    for s in pulse_samples:
        a = s - half
        sl = slice(a, a + n_ep)
        amp = 1.0 + tep_jitter * rng.standard_normal()
        data[:, sl] += amp * tep_raw
        data[:, sl] += np.outer(topo["pulse"] * pulse_uv * rng.uniform(0.9, 1.1), pulse_wave)
        if decay_uv > 0:
            data[:, sl] += np.outer(topo["decay"] * decay_uv * rng.uniform(0.85, 1.15), decay_wave)
        if muscle_uv > 0:
            data[:, sl] += np.outer(topo["muscle"] * muscle_uv * (1 + 0.15 * rng.standard_normal()),
                                    muscle_wave)


def _add_ongoing(rng: np.random.Generator, data: np.ndarray, topo: dict[str, np.ndarray],
                 p: EegSimulationParameters) -> list[int]:
    """Add blinks, eye movements, persistent muscle and line noise (in place); blink onsets."""
    n_channels, n_times = data.shape
    sfreq, blink_uv, blink_interval_s = p.sfreq, p.blink_uv, p.blink_interval_s
    eye_movement_uv, eye_movement_interval_s = p.eye_movement_uv, p.eye_movement_interval_s
    persistent_muscle_uv, line_uv, line_freq = p.persistent_muscle_uv, p.line_uv, p.line_freq
    blink_samples = []
    if blink_uv > 0:
        t = rng.uniform(0.5, blink_interval_s)
        blink_len = int(0.3 * sfreq)
        hann = np.hanning(blink_len)
        while t < n_times / sfreq - 1.0:
            b = int(t * sfreq)
            data[:, b:b + blink_len] += np.outer(topo["blink"] * blink_uv * rng.uniform(0.8, 1.2), hann)
            blink_samples.append(b)
            t += rng.uniform(0.5, 1.5) * blink_interval_s
    if eye_movement_uv > 0:
        t = rng.uniform(1.0, eye_movement_interval_s)
        edge = int(0.02 * sfreq)
        ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, edge))
        while t < n_times / sfreq - 2.0:
            dur = int(rng.uniform(0.4, 1.0) * sfreq)
            shape = np.concatenate([ramp, np.ones(dur), ramp[::-1]])
            b = int(t * sfreq)
            sign = rng.choice([-1.0, 1.0])
            data[:, b:b + shape.size] += np.outer(topo["move"] * eye_movement_uv * sign, shape)
            t += rng.uniform(0.5, 1.5) * eye_movement_interval_s
    if persistent_muscle_uv > 0:
        emg = _band_noise(rng, 1, n_times, sfreq, (20.0, min(300.0, sfreq / 2 - 1)))[0]
        data += np.outer(topo["pmus"] * persistent_muscle_uv, emg)
    if line_uv > 0:
        tt = np.arange(n_times) / sfreq
        phases = rng.uniform(0, 2 * np.pi, n_channels)
        amps = line_uv * rng.uniform(0.5, 1.5, n_channels)
        data += amps[:, None] * np.sin(2 * np.pi * line_freq * tt[None, :] + phases[:, None])
    return blink_samples
