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

__all__ = [
    "STOKES_SLOPE_2005",
    "STOKES_SLOPE_2007",
    "DoseResult",
    "efield_matched_dose",
    "stokes_adjusted_threshold",
]

#: Stokes et al. 2005: 3 %MSO per mm of extra scalp-to-cortex distance.
STOKES_SLOPE_2005 = 3.0
#: Stokes et al. 2007: 2.8 %MSO per mm.
STOKES_SLOPE_2007 = 2.8


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
