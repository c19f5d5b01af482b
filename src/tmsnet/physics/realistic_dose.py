"""Dose from the realistic field (issue 17 item 4): E-field-matched intensity, depth and Stokes beside it.

The motor threshold ``MT`` (% of maximum stimulator output) is measured with
the coil over the M1 hotspot; the E-field-matched output at the target is
``MT * E_M1 / E_target`` (:func:`tmsnet.physics.dose.efield_matched_dose`),
where ``E`` is the patch-mean |E| per A/µs from a direct solve in the voxel
head, each site with its own placement (:class:`~tmsnet.physics.realistic_placement.RealisticPlacement`,
e.g. from :func:`~tmsnet.physics.realistic_placement.search_placement`; at M1
the placement that maximises the field there, the model of the hotspot hunt).
Beside it, the Stokes et al. 2005 depth-adjusted threshold from the
scalp-to-cortex distances of the two placements (the distance from the scalp
point under the coil centre to the nearest grey-matter voxel centre) with the
same threshold, as :func:`tmsnet.physics.dose.compute_dose` computes it.
"""

from __future__ import annotations

from typing import Any

from tmsnet.physics.dose import STOKES_SLOPE_2005, compute_dose
from tmsnet.physics.realistic_placement import RealisticPlacement

__all__ = ["realistic_dose"]


def realistic_dose(mt_percent: float, target: RealisticPlacement, m1: RealisticPlacement, *,
                   stokes_slope: float = STOKES_SLOPE_2005,
                   didt_max_a_per_us: float | None = None) -> dict[str, Any]:
    """E-field-matched and Stokes-adjusted dose at a target from the motor threshold (module docstring).

    Parameters
    ----------
    mt_percent : float
        Resting motor threshold over M1 (%MSO).
    target, m1 : RealisticPlacement
        The placements at the target and at the M1 hotspot, in the same head.
    stokes_slope : float
        %MSO per mm of extra scalp-to-cortex distance (3.0 Stokes 2005, 2.8 Stokes 2007).
    didt_max_a_per_us : float, optional
        The coil's dI/dt at 100 %MSO (A/µs), for the field at threshold in V/m.

    Returns
    -------
    dict
        :meth:`tmsnet.physics.dose.DoseResult.as_dict` (``efield_matched_percent``,
        ``stokes_percent``, depths in mm, fields per A/µs) plus ``head_model``
        (``"realistic"``), ``field_measure`` and, when ``didt_max_a_per_us`` is
        given, ``e_target_at_dose_v_per_m`` (the target field at the matched output).
    """
    e_target = float(target.field["magnitude"])
    e_m1 = float(m1.field["magnitude"])
    dose = compute_dose(mt_percent, depth_target_mm=target.scalp_to_cortex_mm,
                        depth_m1_mm=m1.scalp_to_cortex_mm,
                        e_target=e_target, e_m1=e_m1, stokes_slope=stokes_slope,
                        didt_max_a_per_us=didt_max_a_per_us)
    out = {**dose.as_dict(), "head_model": "realistic",
           "field_measure": "patch-mean |E| from a direct solve, V/m per A/us"}
    if didt_max_a_per_us:
        out["e_target_at_dose_v_per_m"] = e_target * didt_max_a_per_us * dose.efield_matched_percent / 100.0
    return out
