"""How a perturbation at a stimulated region spreads over a connectome.

Model
-----
A linear network model with conduction delays (a linearised neural-mass /
Ornstein-Uhlenbeck network; Galan 2008, PLoS One 3:e2148; Abdelnour et al.
2014, NeuroImage 90:335; Honey et al. 2009, PNAS 106:2035 for the
structure-function comparison)::

    dx_i/dt = -x_i / tau + g * sum_j C_ij x_j(t - D_ij) + u_i(t) (+ sigma * dW_i/dt)

``x`` is the activity of each region (arbitrary units), ``tau`` (ms) the
local decay time constant, ``C`` the normalised connectome (``C / rho(C)``,
spectral radius 1, so the coupling ``g`` is expressed in units of the
stability limit: ``g * tau < 1`` is required), ``D_ij = L_ij / v`` the
conduction delay from tract length ``L`` (mm) and velocity ``v`` (m/s = mm/ms),
and ``u`` the stimulation input.

* **Steady-state response** to a constant input ``u = e_k`` at the stimulated
  region ``k``: delays do not change fixed points of a linear system, so
  ``x* = (I / tau - g C)^-1 e_k = tau (I - g tau C)^-1 e_k`` (the resolvent,
  summing walks of every length weighted by ``(g tau)^length``).
* **Impulse response** to ``u = delta(t) e_k``: ``x(0) = e_k``, integrated
  with the exponential Euler scheme
  ``x(t + dt) = e^{-dt/tau} x(t) + tau (1 - e^{-dt/tau}) g [C x(t - D)]``
  (delays rounded to the step). Without delays it equals
  ``expm((-I/tau + g C) t) e_k``. Reported per region: peak amplitude,
  latency of the peak and of the first crossing of a fraction of the peak
  (arrival time).
* **Stationary functional connectivity** of the noise-driven model without
  delays: the covariance ``P`` solves the Lyapunov equation
  ``A P + P A' + sigma^2 I = 0`` with ``A = -I/tau + g C``
  (``scipy.linalg.solve_continuous_lyapunov``); predicted FC is
  ``P_ij / sqrt(P_ii P_jj)``.

For a non-negative connectome the model is stable for any delays if and only
if ``g tau rho(C) < 1`` (delay-independent stability of positive linear
systems), so the same limit applies with and without delays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import linalg

from tmsnet.exceptions import InvalidParameterError

__all__ = [
    "PropagationModel",
    "impulse_response",
    "normalize_connectome",
    "predicted_fc",
    "rank_response",
    "steady_state_response",
]


def normalize_connectome(sc: np.ndarray) -> np.ndarray:
    """Scale a non-negative connectome to spectral radius 1 (zero diagonal).

    Parameters
    ----------
    sc : ndarray, shape (n, n)
        Structural (streamline counts, densities) or functional weights.
        Negative weights are not allowed (take ``np.clip(fc, 0, None)`` for a
        functional connectome).

    Returns
    -------
    ndarray, shape (n, n)
    """
    c = np.array(sc, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] != c.shape[1]:
        raise InvalidParameterError(f"The connectome must be square, got shape {c.shape}.")
    if not np.isfinite(c).all():
        raise InvalidParameterError("The connectome holds NaN or infinite values.")
    if (c < 0).any():
        raise InvalidParameterError(
            "The connectome has negative weights; the propagation model needs non-negative coupling "
            "(clip a functional connectome at 0 first)."
        )
    np.fill_diagonal(c, 0.0)
    rho = float(np.max(np.abs(np.linalg.eigvals(c))))
    if rho <= 0:
        raise InvalidParameterError("The connectome has no edge (all weights are 0).")
    return c / rho


@dataclass
class PropagationModel:
    """Parameters of the linear delayed network model (see the module docstring).

    Attributes
    ----------
    connectome : ndarray, shape (n, n)
        Coupling ``C`` (used as given: normalise with :func:`normalize_connectome`).
    tau_ms : float
        Local decay time constant (ms).
    coupling : float
        Global coupling ``g`` (1/ms); stability needs ``g tau rho(C) < 1``.
    lengths_mm : ndarray, shape (n, n), optional
        Tract lengths (mm); None = no delays.
    velocity_m_per_s : float
        Conduction velocity (m/s = mm/ms); typical 5-10 m/s.
    """

    connectome: np.ndarray
    tau_ms: float = 10.0
    coupling: float = 0.09
    lengths_mm: np.ndarray | None = None
    velocity_m_per_s: float = 7.0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        c = np.asarray(self.connectome, dtype=np.float64)
        if c.ndim != 2 or c.shape[0] != c.shape[1]:
            raise InvalidParameterError(f"The connectome must be square, got shape {c.shape}.")
        self.connectome = c
        if not self.tau_ms > 0:
            raise InvalidParameterError(f"tau_ms must be > 0 ms, got {self.tau_ms!r}.")
        if self.lengths_mm is not None:
            lengths = np.asarray(self.lengths_mm, dtype=np.float64)
            if lengths.shape != c.shape or (lengths < 0).any() or not np.isfinite(lengths).all():
                raise InvalidParameterError(
                    "lengths_mm must be a non-negative finite matrix of the connectome's shape (mm)."
                )
            self.lengths_mm = lengths
        if not self.velocity_m_per_s > 0:
            raise InvalidParameterError(f"velocity_m_per_s must be > 0, got {self.velocity_m_per_s!r}.")
        rho = float(np.max(np.abs(np.linalg.eigvals(c)))) if c.any() else 0.0
        self.gain = self.coupling * self.tau_ms * rho
        if self.gain >= 1.0:
            raise InvalidParameterError(
                f"coupling * tau * spectral radius = {self.gain:.3f} >= 1: the model is unstable. Lower "
                f"the coupling below {1.0 / (self.tau_ms * rho):.4g} per ms."
            )

    @property
    def n_regions(self) -> int:
        """Number of regions."""
        return int(self.connectome.shape[0])

    @property
    def system_matrix(self) -> np.ndarray:
        """``A = -I / tau + g C`` (1/ms)."""
        return -np.eye(self.n_regions) / self.tau_ms + self.coupling * self.connectome

    @property
    def delays_ms(self) -> np.ndarray | None:
        """``D = L / v`` (ms), or None."""
        return None if self.lengths_mm is None else self.lengths_mm / self.velocity_m_per_s

    def as_dict(self) -> dict[str, Any]:
        """Parameters for sidecars."""
        return {
            "tau_ms": self.tau_ms,
            "coupling_per_ms": self.coupling,
            "gain_g_tau_rho": round(self.gain, 6),
            "velocity_m_per_s": self.velocity_m_per_s,
            "delays": self.lengths_mm is not None,
            **self.extra,
        }


def _input_vector(model: PropagationModel, region: int | np.ndarray) -> np.ndarray:
    if isinstance(region, int | np.integer):
        if not 0 <= int(region) < model.n_regions:
            raise InvalidParameterError(f"region {region} outside 0..{model.n_regions - 1}.")
        u = np.zeros(model.n_regions)
        u[int(region)] = 1.0
        return u
    u = np.asarray(region, dtype=np.float64)
    if u.shape != (model.n_regions,):
        raise InvalidParameterError(f"An input vector needs shape ({model.n_regions},), got {u.shape}.")
    return u


def steady_state_response(model: PropagationModel, region: int | np.ndarray) -> np.ndarray:
    """Fixed point under constant unit input at ``region``: ``tau (I - g tau C)^-1 e_k``.

    Parameters
    ----------
    model : PropagationModel
        The model.
    region : int or ndarray, shape (n,)
        Stimulated region (unit input) or an input vector.

    Returns
    -------
    ndarray, shape (n,)
        Steady-state activity of each region (input units x ms).
    """
    u = _input_vector(model, region)
    return linalg.solve(-model.system_matrix, u)


def impulse_response(
    model: PropagationModel,
    region: int | np.ndarray,
    *,
    duration_ms: float = 200.0,
    dt_ms: float = 0.1,
) -> tuple[np.ndarray, np.ndarray]:
    """Response to a unit impulse at ``region`` (``x(0) = e_k``), with delays.

    Parameters
    ----------
    model : PropagationModel
        The model.
    region : int or ndarray, shape (n,)
        Stimulated region or initial state.
    duration_ms : float
        Simulated time (ms).
    dt_ms : float
        Integration step (ms); delays are rounded to multiples of it.

    Returns
    -------
    times_ms : ndarray, shape (n_steps + 1,)
    x : ndarray, shape (n_steps + 1, n)
        Activity of each region over time.
    """
    if not (dt_ms > 0 and duration_ms > dt_ms):
        raise InvalidParameterError("Need 0 < dt_ms < duration_ms.")
    x0 = _input_vector(model, region)
    n = model.n_regions
    n_steps = int(round(duration_ms / dt_ms))
    decay = np.exp(-dt_ms / model.tau_ms)
    gain = model.tau_ms * (1.0 - decay) * model.coupling
    x = np.zeros((n_steps + 1, n))
    x[0] = x0
    c = model.connectome
    delays = model.delays_ms
    if delays is None:
        for s in range(n_steps):
            x[s + 1] = decay * x[s] + gain * (c @ x[s])
    else:
        lag = np.rint(delays / dt_ms).astype(np.int64)
        rows, cols = np.nonzero(c)
        w = c[rows, cols]
        edge_lag = lag[rows, cols]
        for s in range(n_steps):
            src = s - edge_lag
            ok = src >= 0
            drive = np.bincount(rows[ok], weights=w[ok] * x[src[ok], cols[ok]], minlength=n)
            x[s + 1] = decay * x[s] + gain * drive
    return np.arange(n_steps + 1) * dt_ms, x


def predicted_fc(model: PropagationModel, *, noise_sd: float = 1.0) -> np.ndarray:
    """Stationary correlation of the noise-driven model (no delays; Lyapunov equation).

    Parameters
    ----------
    model : PropagationModel
        The model (delays ignored).
    noise_sd : float
        Noise amplitude ``sigma`` (the correlation does not depend on it).

    Returns
    -------
    ndarray, shape (n, n)
        Predicted functional connectivity (correlation).
    """
    a = model.system_matrix
    cov = linalg.solve_continuous_lyapunov(a, -(noise_sd**2) * np.eye(model.n_regions))
    d = np.sqrt(np.diag(cov))
    return cov / np.outer(d, d)


def rank_response(
    steady: np.ndarray,
    times_ms: np.ndarray,
    impulse: np.ndarray,
    *,
    stimulated: int,
    labels: list[str],
    networks: np.ndarray | None = None,
    arrival_fraction: float = 0.5,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rank regions and networks by how strongly the stimulation reaches them.

    Parameters
    ----------
    steady : ndarray, shape (n,)
        Steady-state response.
    times_ms, impulse : ndarrays
        From :func:`impulse_response`.
    stimulated : int
        The stimulated region (listed first with rank 0).
    labels : list of str
        Region names.
    networks : array of str, optional
        Network of each region.
    arrival_fraction : float
        Arrival time = first time the impulse response reaches this fraction
        of the region's peak.

    Returns
    -------
    regions : pandas.DataFrame
        Per region: ``rank`` (by steady-state response, stimulated region
        excluded), ``name``, ``network``, ``steady_state``,
        ``steady_state_relative`` (to the stimulated region), ``peak``,
        ``peak_latency_ms``, ``arrival_ms``.
    networks : pandas.DataFrame
        Per network: mean and max relative steady-state response over its
        regions (stimulated region excluded), earliest arrival, ranked.
    """
    n = steady.size
    peak_idx = np.argmax(impulse, axis=0)
    peak = impulse[peak_idx, np.arange(n)]
    reached = impulse >= arrival_fraction * peak[None, :]
    arrival = times_ms[np.argmax(reached, axis=0)]
    nets = np.asarray(networks).astype(str) if networks is not None else np.array(["all"] * n)
    table = pd.DataFrame(
        {
            "name": labels,
            "network": nets,
            "steady_state": steady,
            "steady_state_relative": steady / steady[stimulated],
            "peak": peak,
            "peak_latency_ms": times_ms[peak_idx],
            "arrival_ms": arrival,
        }
    )
    others = table.drop(index=stimulated).sort_values("steady_state", ascending=False)
    others.insert(0, "rank", np.arange(1, len(others) + 1))
    first = table.loc[[stimulated]].copy()
    first.insert(0, "rank", 0)
    regions = pd.concat([first, others]).reset_index().rename(columns={"index": "region"})
    grouped = (
        others.groupby("network")
        .agg(
            n_regions=("name", "size"),
            mean_relative=("steady_state_relative", "mean"),
            max_relative=("steady_state_relative", "max"),
            earliest_arrival_ms=("arrival_ms", "min"),
        )
        .sort_values("mean_relative", ascending=False)
        .reset_index()
    )
    grouped.insert(0, "rank", np.arange(1, len(grouped) + 1))
    return regions, grouped
