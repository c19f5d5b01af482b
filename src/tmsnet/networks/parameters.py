"""Parameter objects of the network jobs: atlas, connectome, group comparison, propagation.

Each is a frozen :class:`~tmsnet.utils.params.Parameters` dataclass: every
default is declared here once, every value is checked at construction, and the
``tmsnet connectome / compare / propagate`` options are generated from the
fields (:func:`~tmsnet.utils.params.add_parameter_arguments`). The fMRI
cleaning of ``tmsnet connectome`` is the targeting pipeline's own cleaning
(:mod:`tmsnet.fmri.cleaning`), not declared again here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tmsnet.exceptions import InvalidParameterError
from tmsnet.utils.params import Parameters, param

__all__ = [
    "DEFAULT_TARGET_MM",
    "SGACC_MM",
    "AtlasParameters",
    "ComparisonParameters",
    "ConnectomeParameters",
    "PropagationParameters",
]

#: Fox et al. 2012 group-optimal left-DLPFC target (MNI, mm; REFERENCES.md section 1).
DEFAULT_TARGET_MM: tuple[float, float, float] = (-38.0, 44.0, 26.0)
#: sgACC seed (Fox et al. 2012, MNI, mm): a second row of the target's network profile.
SGACC_MM: tuple[float, float, float] = (6.0, 16.0, -10.0)
#: Connectivity measures offered (``partial`` is short for ``partial correlation``).
KIND_CHOICES: tuple[str, ...] = ("correlation", "partial", "tangent")


@dataclass(frozen=True)
class AtlasParameters(Parameters):
    """Which parcellation: the bundled Schaefer 2018 100-parcel 7-network atlas, or your own.

    Load it with :func:`tmsnet.networks.atlases.atlas_from_parameters`.
    """

    atlas_image: Path | None = param(None, help="3D label image", kind="path")
    atlas_labels: Path | None = param(None, help="TSV: label_value, name, network", kind="path")
    atlas_space: str | None = param(None, help="template space of --atlas-image", kind="str")

    def check(self) -> None:
        """An own atlas needs its labels table."""
        if self.atlas_image is not None and self.atlas_labels is None:
            raise InvalidParameterError(
                "--atlas-image needs --atlas-labels (TSV: label_value, name, network).")


@dataclass(frozen=True)
class ConnectomeParameters(Parameters):
    """How connectomes are computed and summarised (``tmsnet connectome``)."""

    kinds: tuple[str, ...] = param(("correlation",), help="connectivity measure(s)", flag="--kind",
                                   kind="tuple", item_kind="str", choices=KIND_CHOICES, nargs="+")
    cov_estimator: str = param("ledoit-wolf", help="covariance estimator",
                               choices=("ledoit-wolf", "empirical"))
    confound_columns: tuple[str, ...] | None = param(
        None, help="regress exactly these columns (ROI tables with non-fMRIPrep confounds)",
        kind="tuple", item_kind="str", nargs="+")
    target_coords: tuple[float, ...] = param(
        DEFAULT_TARGET_MM, help="stimulation target for the network profile", units="mm",
        kind="tuple", item_kind="float", nargs=3, metavar=("X", "Y", "Z"))
    random_seed: int = param(0, help="seed of the Louvain partition (graph measures)", low=0,
                             deprecated_flags=("--seed",), high=2**32 - 1)

    def check(self) -> None:
        """Three target coordinates."""
        if len(self.target_coords) != 3:
            raise InvalidParameterError(
                f"--target-coords (target_coords) needs 3 values (x, y, z in mm), got {self.target_coords}.")

    @property
    def measures(self) -> list[str]:
        """The kinds with ``partial`` spelled out (nilearn's names, used in file names)."""
        return ["partial correlation" if k == "partial" else k for k in self.kinds]


@dataclass(frozen=True)
class ComparisonParameters(Parameters):
    """Group statistics on connectomes (``tmsnet compare``)."""

    kind: str = param("correlation", help="connectivity measure to compare (file meas- entity)")
    group_column: str = param("group", help="participants.tsv column holding the group")
    contrast: tuple[str, ...] | None = param(None, help="two-sample effect A - B", kind="tuple",
                                             item_kind="str", nargs=2, metavar=("A", "B"))
    sessions: tuple[str, ...] | None = param(
        None, help="paired design: effect POST - PRE (ses- entities)", kind="tuple", item_kind="str",
        nargs=2, metavar=("PRE", "POST"))
    covariates: tuple[str, ...] = param((), help="participants.tsv columns (age sex mean_fd)",
                                        kind="tuple", item_kind="str", nargs="+")
    threshold: float = param(3.0, help="NBS primary t threshold", low=0, low_inclusive=False, high=100)
    tail: str = param("both", help="effect direction(s) tested", choices=("both", "positive", "negative"))
    n_permutations: int = param(5000, help="permutations (sign flips for paired designs)", low=1,
                                high=10_000_000)
    alpha: float = param(0.05, help="significance level (FWER for NBS, FDR for edges and blocks)",
                         low=0, high=1, low_inclusive=False)
    random_seed: int = param(0, help="seed of the permutations", low=0, high=2**32 - 1,
                             deprecated_flags=("--seed",))
    n_jobs: int = param(1, help="parallel workers over permutation batches (-1 = all CPUs)",
                        flag="--jobs", deprecated_flags=("--n-jobs",), high=1024)

    def check(self) -> None:
        """One design, two levels each, a non-zero worker count."""
        if self.contrast is not None and self.sessions is not None:
            raise InvalidParameterError(
                "use --contrast for two groups or --sessions for pre/post, not both")
        for name in ("contrast", "sessions"):
            value = getattr(self, name)
            if value is not None and len(value) != 2:
                raise InvalidParameterError(f"--{name} ({name}) needs two values, got {value}.")
        if self.n_jobs == 0:
            raise InvalidParameterError("--jobs (n_jobs) must be >= 1 or negative (all CPUs), got 0.")

    @property
    def paired(self) -> bool:
        """Pre/post design (``sessions`` given)."""
        return self.sessions is not None


@dataclass(frozen=True)
class PropagationParameters(Parameters):
    """The linear delayed network model of ``tmsnet propagate`` and what it reports."""

    clip_negative: bool = param(False, help="set negative weights to 0 (functional input)")
    tau_ms: float = param(10.0, help="local time constant", units="ms", flag="--tau", low=0,
                          low_inclusive=False, high=10_000)
    gain: float = param(0.9, help="g * tau * spectral radius; below 1 for a stable model", low=0,
                        high=1, low_inclusive=False, high_inclusive=False)
    velocity_m_per_s: float = param(7.0, help="conduction velocity", units="m/s", flag="--velocity",
                                    low=0, low_inclusive=False, high=1000)
    duration_ms: float = param(200.0, help="impulse response length", units="ms", flag="--duration",
                               low=0, low_inclusive=False, high=600_000)
    dt_ms: float = param(0.1, help="integration step", units="ms", flag="--dt", low=0,
                         low_inclusive=False, high=100)
    top: int = param(10, help="regions listed", low=0, high=100_000)

    @property
    def coupling_per_ms(self) -> float:
        """Global coupling ``g = gain / tau`` (1/ms)."""
        return self.gain / self.tau_ms
