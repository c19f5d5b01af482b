"""Dose: depth-adjusted motor threshold (Stokes) and E-field-matched output.

* Stokes et al. 2005 (J Neurophysiol 94:4520): the threshold at another site
  is ``MT_site = MT_M1 + k (D_site - D_M1)`` in % of maximum stimulator
  output (%MSO), with ``D`` the scalp-to-cortex distance (mm) and
  ``k = 3 %MSO/mm``; Stokes et al. 2007 (Clin Neurophysiol 118:1617) found
  2.8 %MSO/mm. The slope is a parameter (:data:`STOKES_SLOPE_2005`).
* E-field matched: the % output that gives the target the field motor
  cortex receives at threshold, from the sphere model:
  ``%MSO_target = MT_M1 * E_M1 / E_target`` with ``E`` the field per unit
  dI/dt at each site for its own placement (REFERENCES.md section 3).

Both are decision support: the treating operator checks them against the
patient's measured threshold and the local safety rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tmsnet.exceptions import InvalidParameterError
from tmsnet.utils.params import Parameters, param

__all__ = [
    "DEFAULT_M1_MNI",
    "STOKES_SLOPE_2005",
    "STOKES_SLOPE_2007",
    "DoseParameters",
    "DoseResult",
    "compute_dose",
    "efield_matched_dose",
    "stokes_adjusted_threshold",
]

#: Stokes et al. 2005: 3 %MSO per mm of extra scalp-to-cortex distance.
STOKES_SLOPE_2005 = 3.0
#: Stokes et al. 2007: 2.8 %MSO per mm.
STOKES_SLOPE_2007 = 2.8
#: Left M1 hand area, MNI (Mayka et al. 2006, NeuroImage 31:1453, M1 centroid).
DEFAULT_M1_MNI = (-37.0, -21.0, 58.0)


def _check_percent(value: float, name: str) -> float:
    value = float(value)
    if not 0 < value <= 100:
        raise InvalidParameterError(f"{name} must be in (0, 100] % of stimulator output, got {value}.")
    return value


def stokes_adjusted_threshold(
    mt_percent: float, depth_site_mm: float, depth_m1_mm: float, *, slope: float = STOKES_SLOPE_2005
) -> float:
    """Depth-adjusted threshold (Stokes et al. 2005/2007).

    Parameters
    ----------
    mt_percent : float
        Resting motor threshold over M1 (%MSO).
    depth_site_mm, depth_m1_mm : float
        Scalp-to-cortex distance at the target site and at M1 (mm).
    slope : float
        %MSO per mm (3.0, Stokes 2005; 2.8, Stokes 2007).

    Returns
    -------
    float
        Adjusted threshold at the site (%MSO); may exceed 100 (then the
        stimulator cannot deliver it, which the plan reports).
    """
    mt = _check_percent(mt_percent, "mt_percent")
    if depth_site_mm < 0 or depth_m1_mm < 0:
        raise InvalidParameterError("Scalp-to-cortex distances must be >= 0 mm.")
    if slope < 0:
        raise InvalidParameterError("slope must be >= 0 %MSO per mm.")
    return mt + slope * (float(depth_site_mm) - float(depth_m1_mm))


def efield_matched_dose(mt_percent: float, e_m1: float, e_target: float) -> float:
    """% output giving the target the field M1 receives at threshold.

    Parameters
    ----------
    mt_percent : float
        Motor threshold (%MSO).
    e_m1, e_target : float
        |E| at the M1 and target sites per unit dI/dt (same units, e.g.
        V/m per A/µs), each for its own coil placement.

    Returns
    -------
    float
        ``mt_percent * e_m1 / e_target`` (%MSO).
    """
    mt = _check_percent(mt_percent, "mt_percent")
    if e_m1 <= 0 or e_target <= 0:
        raise InvalidParameterError("Field strengths must be > 0.")
    return mt * float(e_m1) / float(e_target)


@dataclass(frozen=True)
class DoseParameters(Parameters):
    """How the dose is set from the motor threshold (Stokes and E-field matched).

    Attributes
    ----------
    mt_percent : float or None
        Resting motor threshold over M1 (% of maximum stimulator output);
        None: no dose is computed.
    stokes_slope : float
        Stokes depth slope (%MSO per mm; 3.0 Stokes 2005, 2.8 Stokes 2007).
    m1_mm : tuple of 3 float
        Motor hotspot (mm) whose depth and field the threshold was measured at
        (default: the MNI hand area, Mayka 2006).
    m1_space : str or None
        Space of ``m1_mm``; default MNI152NLin2009cAsym for the default hotspot,
        else the target's space.
    """

    mt_percent: float | None = param(None, help="resting motor threshold", flag="--mt",
                                     units="% of maximum stimulator output", low=0, low_inclusive=False,
                                     high=100)
    stokes_slope: float = param(STOKES_SLOPE_2005, units="%MSO per mm", low=0,
                                help="Stokes depth slope (3.0 Stokes 2005, 2.8 Stokes 2007)", high=100)
    m1_mm: tuple = param(DEFAULT_M1_MNI, kind="tuple", item_kind="float", nargs=3, flag="--m1",
                         metavar=("X", "Y", "Z"), units="mm",
                         help="motor hotspot of the threshold (the MNI hand area of Mayka 2006 by default)")
    m1_space: str | None = param(None, kind="str",
                                 help="space of --m1; none: MNI152NLin2009cAsym for the default hotspot, "
                                      "else the target's space")

    def check(self) -> None:
        """``m1_mm`` holds three coordinates."""
        if len(self.m1_mm) != 3:
            raise InvalidParameterError(
                f"--m1 (m1_mm) must be three numbers (x, y, z in mm), got {self.m1_mm}.")

    @property
    def m1_is_default(self) -> bool:
        """Whether the hotspot is the default MNI one (then its space is MNI152NLin2009cAsym)."""
        return self.m1_space is None and tuple(self.m1_mm) == DEFAULT_M1_MNI


@dataclass
class DoseResult:
    """Dose figures for a plan.

    Attributes
    ----------
    mt_percent : float
        Motor threshold (%MSO).
    depth_target_mm, depth_m1_mm : float
        Scalp-to-cortex distances (mm).
    stokes_slope : float
        %MSO per mm.
    stokes_percent : float
        Stokes-adjusted threshold (%MSO).
    efield_matched_percent : float
        E-field-matched output (%MSO).
    e_target, e_m1 : float
        |E| per A/µs at the target and at M1.
    e_m1_at_threshold_v_per_m : float or None
        Field at M1 at threshold (V/m) when the coil's dI/dt max is known.
    """

    mt_percent: float
    depth_target_mm: float
    depth_m1_mm: float
    stokes_slope: float
    stokes_percent: float
    efield_matched_percent: float
    e_target: float
    e_m1: float
    e_m1_at_threshold_v_per_m: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return dict(self.__dict__)


def compute_dose(
    mt_percent: float,
    *,
    depth_target_mm: float,
    depth_m1_mm: float,
    e_target: float,
    e_m1: float,
    stokes_slope: float = STOKES_SLOPE_2005,
    didt_max_a_per_us: float | None = None,
) -> DoseResult:
    """Stokes-adjusted and E-field-matched dose at a target from the motor threshold.

    Parameters
    ----------
    mt_percent : float
        Resting motor threshold (%MSO).
    depth_target_mm, depth_m1_mm : float
        Scalp-to-cortex distances at the target and at M1 (mm).
    e_target, e_m1 : float
        |E| per A/µs at the target and at M1, each for its own placement.
    stokes_slope : float
        %MSO per mm.
    didt_max_a_per_us : float, optional
        The coil's dI/dt at 100 %MSO (A/µs), for the field at M1 at threshold.

    Returns
    -------
    DoseResult
    """
    stokes = stokes_adjusted_threshold(mt_percent, depth_target_mm, depth_m1_mm, slope=stokes_slope)
    matched = efield_matched_dose(mt_percent, e_m1, e_target)
    at_threshold = e_m1 * didt_max_a_per_us * mt_percent / 100.0 if didt_max_a_per_us else None
    return DoseResult(mt_percent=float(mt_percent), depth_target_mm=float(depth_target_mm),
                      depth_m1_mm=float(depth_m1_mm), stokes_slope=stokes_slope, stokes_percent=stokes,
                      efield_matched_percent=matched, e_target=e_target, e_m1=e_m1,
                      e_m1_at_threshold_v_per_m=at_threshold)
